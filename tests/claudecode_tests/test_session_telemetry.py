"""claudecode's telemetry: turn and CLI events of a session running the real pinned CLI
against FakeAnthropic, their tokens and per-turn cost, and the session's totals shown
by ``format_status`` (what the observer reads)."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from _session_env import fake, no_orphans, opts
from pythonjsonlogger.json import JsonFormatter

import claudecode
import otpy
from claudecode import CLIExited, StreamError
from claudecode.testing import FakeAnthropic, Text, Turn
from otpy import telemetry

FIXTURES = (fake, no_orphans, opts)  # used by name by the tests below

Record = tuple[tuple[str, ...], dict[str, Any], dict[str, Any]]


@pytest.fixture
def events() -> Iterator[list[Record]]:
    got: list[Record] = []
    telemetry.attach("test-claudecode", [("claudecode",)],
                     lambda e, m, md: got.append((e, dict(m), dict(md))))
    yield got
    telemetry.detach("test-claudecode")


def kinds(events: list[Record]) -> list[str]:
    return [f"{e[1]}.{e[2]}" for e, _, _ in events]


async def test_turns_and_cli_lifecycle(opts: dict[str, Any], fake: FakeAnthropic,
                                       events: list[Record]) -> None:
    fake.script(Turn([Text("one")], input_tokens=1000, output_tokens=10),
                Turn([Text("two")], input_tokens=2000, output_tokens=20),
                when=lambda r: r.last_user_text in ("first", "second"))
    async with otpy.open_node():
        session = await claudecode.start_link(name="telemetry_s", model="claude-haiku-4-5",
                                              **opts)
        assert await claudecode.stream(session, "first").final_text() == "one"
        assert await claudecode.stream(session, "second").final_text() == "two"
        await claudecode.stop(session)
    assert kinds(events) == ["cli.start", "turn.start", "turn.stop", "turn.start", "turn.stop",
                             "cli.exit"]
    cli_start, _, stop1, _, stop2, cli_exit = events
    assert cli_start[1]["duration"] > 0 and isinstance(cli_start[2]["os_pid"], int)
    assert cli_exit[2]["os_pid"] == cli_start[2]["os_pid"]
    assert cli_exit[2]["reason"] == otpy.Shutdown()
    for record in events:
        md = record[2]
        assert md["session"] == session and md["name"] == "telemetry_s"
    assert stop1[1]["input_tokens"] == 1000 and stop1[1]["output_tokens"] == 10
    assert stop2[1]["input_tokens"] == 2000 and stop2[1]["output_tokens"] == 20
    assert 0 < stop1[1]["duration"] < 60 and 0 < stop2[1]["duration"] < 60
    # the CLI reports its running total: each turn's cost is the increase, so the two
    # costs are in the ratio of the tokens (haiku: $1/M in, $5/M out)
    assert stop1[1]["cost_usd"] == pytest.approx((1000 * 1 + 10 * 5) / 1e6)
    assert stop2[1]["cost_usd"] == pytest.approx((2000 * 1 + 20 * 5) / 1e6)
    assert stop2[2]["model"] == "claude-haiku-4-5"
    assert stop2[2]["session_id"] and stop2[2]["is_error"] is False
    assert stop2[2]["subtype"] == "success"


async def test_a_killed_cli_ends_the_turn_with_an_exception(
        opts: dict[str, Any], fake: FakeAnthropic, events: list[Record]) -> None:
    fake.script(Turn([Text("word " * 100, chunks=100)], chunk_delay=0.05),
                when=lambda r: r.last_user_text == "talk")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    logging.getLogger("claudecode").addHandler(handler)
    try:
        async with otpy.open_node():
            otpy.trap_exits(True)
            session = await claudecode.start_link(include_partial_messages=True,
                                                  name="doomed_cli", **opts)
            with pytest.raises(StreamError):
                async for _delta in claudecode.stream(session, "talk").text_deltas():
                    os.kill((await claudecode.adapter_info(session))["os_pid"],
                            signal.SIGKILL)
            await otpy.receive(otpy.Exit, timeout=10)
    finally:
        logging.getLogger("claudecode").removeHandler(handler)
    assert kinds(events) == ["cli.start", "turn.start", "cli.exit", "turn.exception"]
    reason = CLIExited(-signal.SIGKILL, "")
    assert events[2][2]["reason"] == reason and events[3][2]["reason"] == reason
    assert events[3][1]["duration"] > 0
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    (lost,) = [r for r in records if r.get("otpy_report") == "cli_lost"]
    assert lost["otpy_session"] == repr(session) and lost["otpy_name"] == "doomed_cli"
    assert lost["otpy_reason"] == repr(reason) and lost["levelname"] == "WARNING"


async def test_format_status_totals_and_no_secrets(opts: dict[str, Any],
                                                   fake: FakeAnthropic) -> None:
    fake.default = Turn([Text("hi")], input_tokens=500, output_tokens=5)
    async with otpy.open_node():
        session = await claudecode.start_link(api_key="sk-secret-key", **opts)
        for _ in range(3):
            await claudecode.stream(session, "hello").final_text()
        server = session._proc.server  # what the node's otpy_observer reads
        status = server.format_status()
        assert status["turns"] == 3 and status["cli"] == "ready"
        assert status["input_tokens"] == 1500 and status["output_tokens"] == 15
        assert status["cost_usd"] > 0 and isinstance(status["os_pid"], int)
        assert "sk-secret-key" not in repr(status)
        await claudecode.stop(session)
