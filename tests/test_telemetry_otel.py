"""otpy.telemetry_otel with the OpenTelemetry SDK's in-memory exporters: restarts and
give-ups as span events, restart counters, sampled call durations, node counts.
(Turn spans, run on the real CLI: tests/claudecode_tests/test_session_otel.py.)"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from _otel import Otel, otel
from opentelemetry import trace

import otpy
from otpy import telemetry, telemetry_otel

FIXTURES = (otel,)


class Fragile(otpy.GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        raise otpy.Stop(otpy.TermReason("boom"), reply="ok")


async def crash_twice(sup: otpy.Pid) -> None:
    for _ in range(2):
        [row] = await otpy.Supervisor.which_children(sup)
        await otpy.call(row.pid, "crash")
    await otpy.Supervisor.which_children(sup)


async def test_a_restart_is_a_span_event_and_counted(otel: Otel) -> None:
    async with otpy.open_node():
        sup = await otpy.Supervisor.start_link([Fragile.child_spec(id="fragile")])
        await crash_twice(sup)
    spans = otel.spans("otpy.supervisor.restart")
    assert len(spans) == 2
    (event,) = spans[0].events
    assert event.name == "otpy.supervisor.restart"
    assert event.attributes is not None
    assert event.attributes["otpy.supervisor"] == repr(sup)
    assert event.attributes["otpy.child.id"] == "fragile"
    assert event.attributes["otpy.exit.reason"] == repr(otpy.TermReason("boom"))
    assert event.attributes["otpy.restart.retry"] is False
    assert otel.total("otpy.supervisor.restarts", **{"otpy.child.id": "fragile"}) == 2


async def test_restarts_land_on_the_span_current_where_the_tree_started(otel: Otel) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    async with otpy.open_node():
        with tracer.start_as_current_span("app.run") as app:
            # the supervisor's process inherits the context of the task that spawned it
            sup = await otpy.Supervisor.start_link([Fragile.child_spec(id="f")])
            await crash_twice(sup)
        assert app.is_recording() is False
    (run,) = otel.spans("app.run")
    assert [e.name for e in run.events] == ["otpy.supervisor.restart"] * 2
    assert otel.spans("otpy.supervisor.restart") == []


async def test_give_up_is_a_span_event_and_counted(otel: Otel) -> None:
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await otpy.Supervisor.start_link([Fragile.child_spec(id="g")], max_restarts=0)
        [row] = await otpy.Supervisor.which_children(sup)
        await otpy.call(row.pid, "crash")
        await otpy.receive(lambda m: isinstance(m, otpy.Exit) and m.pid == sup, timeout=5)
    (span,) = otel.spans("otpy.supervisor.give_up")
    assert [e.name for e in span.events] == ["otpy.supervisor.give_up"]
    assert otel.total("otpy.supervisor.give_ups") == 1
    assert otel.total("otpy.supervisor.restarts") == 1  # decided, then over the intensity


class Echo(otpy.GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        await trio.sleep(request)
        return request


async def test_sampled_calls_become_a_duration_histogram(
        otel: Otel, autojump_clock: trio.testing.MockClock) -> None:
    telemetry.sample_calls(1)
    try:
        async with otpy.open_node():
            server = await Echo.start_link()
            for delay in (0.25, 0.5, 1.0):
                await otpy.call(server, delay)
            with pytest.raises(otpy.CallError):
                await otpy.call(server, 10, timeout=2)
    finally:
        telemetry.sample_calls(0)
    points = {p.attributes["otpy.call.outcome"]: p for p in
              otel.points("otpy.genserver.call.duration")}
    assert points["ok"].count == 3 and points["ok"].sum == pytest.approx(1.75)
    assert points["error"].count == 1 and points["error"].sum == pytest.approx(2.0)


def test_one_instrumentation_per_handler_id(otel: Otel) -> None:
    with pytest.raises(ValueError, match="attached already"):
        telemetry_otel.instrument(tracer_provider=otel.tracer_provider)
    second = telemetry_otel.instrument(tracer_provider=otel.tracer_provider, handler_id="two")
    second.uninstrument()
    assert [h for h, _ in telemetry.handlers()] == ["otpy.telemetry_otel"]
    assert trace.get_current_span().is_recording() is False
