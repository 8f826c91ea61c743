"""Test helper: the real CLI (via ``_proto_driver``) with a ``CallbackHandler`` answering it.

It does what an adapter does: sends ``initialize`` with the handler's
payload, starts every CLI control request as its own task
(:meth:`CallbackHandler.start`), cancels on ``control_cancel_request``, and
writes the answers. The test drives turns and inspects what happened.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from _proto_driver import ProtoCLI, open_cli

from claudecode._callbacks import CallbackHandler, CallbackOutcome
from claudecode._messages import ResultMessage
from claudecode._options import Options
from claudecode._protocol import (
    ControlCancelRequest,
    ControlErrorResponse,
    ControlRequest,
    ControlResponse,
    Event,
    MalformedLine,
    OversizedLine,
)
from claudecode.testing import FakeAnthropic


class CallbackCLI:
    """A running CLI whose control requests are answered by a handler."""

    def __init__(self, cli: ProtoCLI, handler: CallbackHandler, nursery: trio.Nursery) -> None:
        self.cli = cli
        self.handler = handler
        self.nursery = nursery
        self.home: Path = Path()
        self.requests: list[ControlRequest] = []
        self.outcomes: list[CallbackOutcome] = []
        self.cancels: list[str] = []
        self.events: list[Event] = []
        self.initialize: ControlResponse | None = None
        self._init_id: str | None = None

    async def send_initialize(self) -> None:
        rid, line = self.cli.proto.control_request("initialize", self.handler.initialize_payload())
        self._init_id = rid
        await self.cli.send(line)

    async def _reply(self, outcome: CallbackOutcome) -> None:
        if self.cli.proto.is_incoming_pending(outcome.request_id):
            self.outcomes.append(outcome)
            await self.cli.send(outcome.encode(self.cli.proto))

    async def turn(self, prompt: str, timeout: float = 60.0) -> ResultMessage:
        """Send a prompt and serve control requests until its result."""
        await self.cli.send(self.cli.proto.user_message(prompt))
        with trio.fail_after(timeout):
            while True:
                event = await self.cli.next_event(timeout=timeout)
                self.events.append(event)
                if isinstance(event, ControlRequest):
                    self.requests.append(event)
                    self.handler.start(self.nursery, event, self._reply)
                elif isinstance(event, ControlCancelRequest):
                    self.cancels.append(event.request_id)
                    self.handler.cancel(event.request_id)
                elif isinstance(event, ControlResponse) and event.request_id == self._init_id:
                    self.initialize = event
                elif isinstance(event, ControlErrorResponse):
                    raise AssertionError(f"control request failed: {event}")
                elif isinstance(event, (MalformedLine, OversizedLine)):
                    raise AssertionError(f"bad line from the CLI: {event}")
                elif isinstance(event, ResultMessage):
                    return event

    def requests_of(self, subtype: str) -> list[ControlRequest]:
        return [r for r in self.requests if r.subtype == subtype]

    def tool_calls(self) -> list[dict[str, Any]]:
        """The JSON-RPC ``tools/call`` messages the CLI sent."""
        return [
            r.request["message"]
            for r in self.requests_of("mcp_message")
            if r.request["message"].get("method") == "tools/call"
        ]


@asynccontextmanager
async def callback_cli(
    fake: FakeAnthropic, options: Options, **handler_kw: Any
) -> AsyncIterator[CallbackCLI]:
    """Start the CLI in a temporary HOME/cwd with a handler built from ``options``."""
    handler = CallbackHandler(options, **handler_kw)
    with tempfile.TemporaryDirectory() as tmp:
        async with open_cli(fake, options, Path(tmp)) as cli, trio.open_nursery() as nursery:
            driver = CallbackCLI(cli, handler, nursery)
            driver.home = Path(tmp)
            await driver.send_initialize()
            try:
                yield driver
            finally:
                handler.cancel_all()
                nursery.cancel_scope.cancel()
