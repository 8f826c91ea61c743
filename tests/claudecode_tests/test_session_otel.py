"""Turns as OpenTelemetry spans and metrics (otpy.telemetry_otel) with the SDK's in-memory
exporters, on sessions running the real pinned CLI against FakeAnthropic: a good turn, an
API error turn (status ERROR), a turn whose CLI is killed (exception recorded), tokens,
cost, turn counts and the live-CLI gauge."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from _session_env import fake, no_orphans, opts
from opentelemetry.trace import SpanKind, StatusCode

import claudecode
import otpy
from claudecode import StreamError
from claudecode.testing import APIError, FakeAnthropic, Text, Turn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _otel import Otel, otel

FIXTURES = (fake, no_orphans, opts, otel)


async def test_turns_become_spans_and_metrics(opts: dict[str, Any], fake: FakeAnthropic,
                                              otel: Otel) -> None:
    fake.script(Turn([Text("fine")], input_tokens=3000, output_tokens=30),
                when=lambda r: r.last_user_text == "good")
    fake.script(APIError(529, "overloaded on purpose", should_retry=False),
                when=lambda r: r.last_user_text == "bad")
    fake.script(Turn([Text("word " * 100, chunks=100)], chunk_delay=0.05),
                when=lambda r: r.last_user_text == "talk")
    async with otpy.open_node():
        otpy.trap_exits(True)
        session = await claudecode.start_link(name="otel_s", model="claude-haiku-4-5",
                                              include_partial_messages=True, **opts)
        assert await claudecode.stream(session, "good").final_text() == "fine"
        assert otel.total("claudecode.cli.live") == 1
        with pytest.raises(claudecode.ResultError):
            await claudecode.stream(session, "bad").final_text()
        sid = await claudecode.get_session_id(session)
        with pytest.raises(StreamError):
            async for _delta in claudecode.stream(session, "talk").text_deltas():
                os.kill((await claudecode.adapter_info(session))["os_pid"], signal.SIGKILL)
        await otpy.receive(otpy.Exit, timeout=10)
    good, bad, killed = otel.spans("claudecode.turn")
    assert good.kind == SpanKind.CLIENT
    attrs = dict(good.attributes or {})
    assert attrs["gen_ai.usage.input_tokens"] == 3000
    assert attrs["gen_ai.usage.output_tokens"] == 30
    assert attrs["claudecode.cost_usd"] == pytest.approx((3000 * 1 + 30 * 5) / 1e6)
    assert attrs["gen_ai.request.model"] == "claude-haiku-4-5"
    assert attrs["gen_ai.conversation.id"] == sid
    assert attrs["claudecode.session.name"] == "otel_s"
    assert attrs["claudecode.session.pid"] == repr(session)
    assert good.status.status_code == StatusCode.UNSET
    assert good.end_time is not None and good.start_time is not None
    assert good.end_time > good.start_time
    assert bad.status.status_code == StatusCode.ERROR
    assert killed.status.status_code == StatusCode.ERROR
    (exc,) = [e for e in killed.events if e.name == "exception"]
    assert exc.attributes is not None and exc.attributes["exception.type"] == "CLIExited"
    assert otel.total("claudecode.turns", **{"claudecode.outcome": "ok"}) == 1
    assert otel.total("claudecode.turns", **{"claudecode.outcome": "error"}) == 1
    assert otel.total("claudecode.turns", **{"claudecode.outcome": "exception"}) == 1
    assert otel.total("claudecode.tokens", **{"claudecode.token.type": "input"}) >= 3000
    assert otel.total("claudecode.tokens", **{"claudecode.token.type": "output"}) >= 30
    assert otel.total("claudecode.cost") >= attrs["claudecode.cost_usd"]
    assert otel.total("claudecode.cli.live") == 0
    durations = otel.points("claudecode.turn.duration")
    assert sum(p.count for p in durations) == 3
