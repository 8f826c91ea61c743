"""Telemetry events added by issue 15: sampled GenServer call latency and distribution
(node up / down / connect failed, against a real ``erl`` node); structured logging:
the OTP-style reports reach a real JSON formatter (python-json-logger) with their
fields, not only as text.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import trio
import trio.testing
from _dist_erl import Epmd, ErlNode, unique
from pythonjsonlogger.json import JsonFormatter

import otpy
from otpy import telemetry

COOKIE = "telemetry_cookie"
Record = tuple[tuple[str, ...], dict[str, Any], dict[str, Any]]


@pytest.fixture
def events() -> Iterator[list[Record]]:
    """Every otpy event, recorded; detached (and call sampling off) afterwards."""
    got: list[Record] = []
    telemetry.attach("test-events", [("otpy",)],
                     lambda e, m, md: got.append((e, dict(m), dict(md))))
    yield got
    telemetry.detach("test-events")
    telemetry.sample_calls(0)


def calls(events: list[Record]) -> list[Record]:
    return [e for e in events if e[0] == ("otpy", "genserver", "call")]


class Echo(otpy.GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request == "slow":
            await trio.sleep(2)
        return request


# ---------------------------------------------------------------- GenServer call latency


async def test_call_latency_is_off_until_sampled(events: list[Record]) -> None:
    async with otpy.open_node():
        server = await Echo.start_link()
        for i in range(5):
            assert await otpy.call(server, i) == i
        assert calls(events) == []
        assert telemetry.timing_calls is False


async def test_every_call_sampled_with_duration_on_the_clock(
        events: list[Record], autojump_clock: trio.testing.MockClock) -> None:
    async with otpy.open_node():
        telemetry.sample_calls(1)
        assert telemetry.timing_calls is True
        server = await Echo.start_link(name="echo_timed")
        assert await otpy.call("echo_timed", "slow") == "slow"
        assert await otpy.call(server, 1) == 1
        (slow, fast) = calls(events)
        assert slow[1] == {"duration": 2.0, "sample_every": 1}
        assert slow[2] == {"server": "echo_timed", "caller": otpy.self(), "outcome": "ok",
                           "reason": None}
        assert fast[1]["duration"] == 0.0 and fast[2]["server"] == server


async def test_one_call_in_n_and_failed_calls(
        events: list[Record], autojump_clock: trio.testing.MockClock) -> None:
    async with otpy.open_node():
        telemetry.sample_calls(3)
        server = await Echo.start_link()
        for i in range(9):
            await otpy.call(server, i)
        assert len(calls(events)) == 3
        assert all(e[1]["sample_every"] == 3 for e in calls(events))
        telemetry.sample_calls(1)
        events.clear()
        with pytest.raises(otpy.CallError):
            await otpy.call(server, "slow", timeout=0.5)
        with pytest.raises(otpy.CallError):
            await otpy.call("nobody_here", 1)
        timeout, noproc = calls(events)
        assert timeout[1]["duration"] == 0.5
        assert timeout[2]["outcome"] == "error" and timeout[2]["reason"] == otpy.Timeout()
        assert noproc[2]["outcome"] == "error" and noproc[2]["reason"] == otpy.NoProc()


async def test_sampling_without_a_handler_times_nothing() -> None:
    async with otpy.open_node():
        telemetry.sample_calls(1)
        try:
            assert telemetry.timing_calls is False  # nobody listens: calls are not timed
            server = await Echo.start_link()
            assert await otpy.call(server, 1) == 1
        finally:
            telemetry.sample_calls(0)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_sample_calls_rejects_bad_periods(bad: Any) -> None:
    with pytest.raises(ValueError):
        telemetry.sample_calls(bad)
    assert telemetry.call_sampling == 0


# ---------------------------------------------------------------- distribution


@pytest.fixture(scope="module")
def epmd() -> Iterator[Epmd]:
    server = Epmd()
    yield server
    server.stop()


def json_log() -> tuple[logging.Handler, io.StringIO]:
    """A handler on the ``otpy`` logger writing one JSON object per record."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    logging.getLogger("otpy").addHandler(handler)
    return handler, out


def json_records(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


async def test_node_up_down_and_connect_failed_with_a_real_erl(
        events: list[Record], epmd: Epmd) -> None:
    handler, out = json_log()
    erl = ErlNode(f"{unique('erl')}@localhost", COOKIE, epmd.port)
    try:
        async with otpy.open_node(f"{unique('py')}@localhost", COOKIE, epmd_port=epmd.port,
                                  connect_timeout=3.0):
            assert await otpy.connect(erl.node)
            up = [e for e in events if e[0] == ("otpy", "dist", "node_up")]
            assert up == [(("otpy", "dist", "node_up"), {}, {"node": erl.node,
                                                              "hidden": False})]
            erl.stop()  # the peer goes away: the connection is lost
            with trio.fail_after(10):
                while not [e for e in events if e[0] == ("otpy", "dist", "node_down")]:
                    await trio.sleep(0.02)
            (down,) = [e for e in events if e[0] == ("otpy", "dist", "node_down")]
            assert down[2]["node"] == erl.node
            assert isinstance(down[2]["reason"], str) and down[2]["reason"]
            assert not await otpy.connect(f"{unique('nobody')}@localhost")
            (failed,) = [e for e in events if e[0] == ("otpy", "dist", "connect_failed")]
            assert failed[2]["node"].startswith("nobody_") and failed[2]["reason"]
    finally:
        erl.stop()
        logging.getLogger("otpy").removeHandler(handler)
    records = json_records(out)
    lost = [r for r in records if r.get("otpy_report") == "connection_lost"]
    assert len(lost) == 1
    assert lost[0]["otpy_node"] == erl.node and lost[0]["otpy_why"] == down[2]["reason"]
    assert lost[0]["levelname"] == "WARNING" and lost[0]["name"] == "otpy.dist"
    assert [r["otpy_node"] for r in records if r.get("otpy_report") == "connect_failed"] == [
        failed[2]["node"]]


async def test_a_hidden_peer_is_reported_hidden(events: list[Record], epmd: Epmd) -> None:
    erl = ErlNode(f"{unique('erlh')}@localhost", COOKIE, epmd.port, extra_args=("-hidden",))
    try:
        async with otpy.open_node(f"{unique('py')}@localhost", COOKIE, epmd_port=epmd.port):
            assert await otpy.connect(erl.node)
            up = [e[2] for e in events if e[0] == ("otpy", "dist", "node_up")]
            assert up == [{"node": erl.node, "hidden": True}]
    finally:
        erl.stop()


# ---------------------------------------------------------------- structured logging


class Crashy(otpy.GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        raise ValueError(f"bad request {request!r}")


async def test_supervisor_and_crash_reports_carry_their_fields_as_json() -> None:
    async with otpy.open_node():
        handler, out = json_log()
        try:
            sup = await otpy.Supervisor.start_link(
                [Crashy.child_spec(id="worker", name="crashy")], max_restarts=1, max_seconds=5)
            with pytest.raises(otpy.CallError):
                await otpy.call("crashy", 1)
            [row] = await otpy.Supervisor.which_children(sup)  # answered once restarted
            assert isinstance(row.pid, otpy.Pid)
            otpy.trap_exits(True)
            with pytest.raises(otpy.CallError):
                await otpy.call("crashy", 2)  # the second crash: over the intensity
            await otpy.receive(lambda m: isinstance(m, otpy.Exit) and m.pid == sup, timeout=5)
        finally:
            logging.getLogger("otpy").removeHandler(handler)
        records = json_records(out)
        kinds = [r.get("otpy_report") for r in records]
        assert kinds.count("crash_report") == 2
        assert kinds.count("child_terminated") == 2
        assert "reached_max_restart_intensity" in kinds
        crash = next(r for r in records if r.get("otpy_report") == "crash_report")
        assert crash["otpy_server"] == "Crashy" and crash["otpy_name"] == "crashy"
        assert crash["otpy_pid"].startswith("<0.")
        assert crash["otpy_reason"].startswith("Crash(ValueError(")
        assert "ValueError: bad request 1" in crash["exc_info"]
        term = next(r for r in records if r.get("otpy_report") == "child_terminated")
        assert term["otpy_supervisor"] == repr(sup) and term["otpy_child_id"] == "worker"
        assert term["otpy_child_pid"] == crash["otpy_pid"]
        assert term["otpy_reason"] == crash["otpy_reason"]
        give_up = next(r for r in records
                       if r.get("otpy_report") == "reached_max_restart_intensity")
        assert give_up["otpy_max_restarts"] == 1 and give_up["otpy_max_seconds"] == 5
        assert give_up["otpy_child_id"] == "worker" and give_up["levelname"] == "ERROR"


async def test_dynamic_supervisor_reports_carry_their_fields() -> None:
    async with otpy.open_node():
        handler, out = json_log()
        try:
            sup = await otpy.DynamicSupervisor.start_link()
            child = await otpy.DynamicSupervisor.start_child(sup, Crashy.child_spec(
                restart="temporary"))
            assert child is not None
            with pytest.raises(otpy.CallError):
                await otpy.call(child, "x")
            await otpy.DynamicSupervisor.count_children(sup)  # answered after the Exit
        finally:
            logging.getLogger("otpy").removeHandler(handler)
        (term,) = [r for r in json_records(out) if r.get("otpy_report") == "child_terminated"]
        assert term["otpy_supervisor"] == repr(sup) and term["otpy_child_pid"] == repr(child)
        assert term["otpy_child_id"] is None and term["otpy_reason"].startswith("Crash(")


async def test_a_plain_process_crash_report_names_the_process() -> None:
    async with otpy.open_node():
        handler, out = json_log()

        async def body() -> None:
            raise KeyError("k")

        try:
            pid = otpy.spawn(body, name="doomed")
            ref = otpy.monitor(pid)
            await otpy.receive(lambda m: isinstance(m, otpy.Down) and m.ref == ref, timeout=5)
        finally:
            logging.getLogger("otpy").removeHandler(handler)
        (crash,) = [r for r in json_records(out) if r.get("otpy_report") == "crash_report"]
        assert crash["otpy_pid"] == repr(pid) and crash["otpy_name"] == "doomed"
        assert crash["otpy_reason"] == "Crash(KeyError('k'))"
