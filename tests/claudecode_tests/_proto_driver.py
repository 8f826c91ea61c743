"""Test helper: run the real CLI with argv/env from ``Options`` and read it through ``CLIProtocol``.

Deliberately thin (no session logic): stdout bytes go straight into the sans-IO
machine, in whatever chunks the pipe delivers, and the tests look at the events.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import trio

from claudecode._install import install_cli
from claudecode._options import Options, to_cli_args, to_cli_env
from claudecode._protocol import CLIProtocol, Event
from claudecode.testing import FakeAnthropic


class ProtoCLI:
    """A running CLI whose stdout is parsed by a :class:`CLIProtocol`."""

    def __init__(self, process: trio.Process, proto: CLIProtocol, argv: list[str]) -> None:
        self.process = process
        self.proto = proto
        self.argv = argv
        self.events: list[Event] = []
        self.stderr = bytearray()
        self.eof = False
        self._cursor = 0
        self._changed = trio.Condition()

    async def _pump(self) -> None:
        assert self.process.stdout is not None
        async for chunk in self.process.stdout:
            new = self.proto.feed(chunk)
            if new:
                async with self._changed:
                    self.events.extend(new)
                    self._changed.notify_all()
        tail = self.proto.feed_eof()
        async with self._changed:
            self.events.extend(tail)
            self.eof = True
            self._changed.notify_all()

    async def _pump_stderr(self) -> None:
        assert self.process.stderr is not None
        async for chunk in self.process.stderr:
            self.stderr += chunk

    async def send(self, line: bytes) -> None:
        """Write one encoded line to the CLI's stdin."""
        assert self.process.stdin is not None
        await self.process.stdin.send_all(line)

    async def next_event(
        self, match: Callable[[Event], bool] = lambda e: True, timeout: float = 60.0
    ) -> Event:
        """The next event (after the previous one returned) that satisfies ``match``."""
        with trio.fail_after(timeout):
            async with self._changed:
                while True:
                    while self._cursor < len(self.events):
                        event = self.events[self._cursor]
                        self._cursor += 1
                        if match(event):
                            return event
                    if self.eof:
                        raise AssertionError(
                            f"CLI stdout ended; stderr: {bytes(self.stderr[-2000:])!r}"
                        )
                    await self._changed.wait()

    async def close_stdin(self) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.aclose()

    async def wait(self, timeout: float = 30.0) -> int:
        with trio.fail_after(timeout):
            return await self.process.wait()


def cli_path() -> str:
    """The pinned CLI (installed on first use)."""
    return install_cli().path


def base_env(fake: FakeAnthropic, home: Path) -> dict[str, str]:
    """A minimal environment: private HOME/config dir, the fake API, nothing else."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "LANG": "C.UTF-8",
        **fake.env(max_retries=0),
    }


@asynccontextmanager
async def open_cli(
    fake: FakeAnthropic, options: Options, home: Path, **proto_kw: Any
) -> AsyncIterator[ProtoCLI]:
    """Start the CLI with ``to_cli_args(options)`` and ``to_cli_env(options, ...)``."""
    argv = [cli_path(), *to_cli_args(options)]
    env = to_cli_env(options, base_env(fake, home))
    process = await trio.lowlevel.open_process(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=options.cwd or str(home),
    )
    cli = ProtoCLI(process, CLIProtocol(**proto_kw), argv)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cli._pump)
            nursery.start_soon(cli._pump_stderr)
            try:
                yield cli
            finally:
                with trio.CancelScope(shield=True):
                    if process.returncode is None:
                        with suppress(trio.ClosedResourceError, trio.BrokenResourceError):
                            await cli.close_stdin()
                        with trio.move_on_after(10):
                            await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
                nursery.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.kill()
