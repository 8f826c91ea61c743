"""otpy.telemetry: handlers attached to event names and prefixes, and the events
that processes and supervisors emit (docs/otpy/telemetry.md)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

import otpy
from otpy import telemetry

Seen = list[tuple[tuple[str, ...], dict[str, Any]]]


@pytest.fixture
def seen() -> Iterator[Seen]:
    events: Seen = []

    def handler(event: tuple[str, ...], measurements: Mapping[str, Any],
                metadata: Mapping[str, Any]) -> None:
        events.append((event, dict(metadata)))

    telemetry.attach("test", [("otpy", "supervisor"), ("otpy", "process", "exit")], handler)
    yield events
    telemetry.detach("test")


class Server(otpy.GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        raise otpy.Stop(otpy.TermReason("boom"), reply="ok")


def test_attach_detach_and_prefixes() -> None:
    got: list[tuple[str, ...]] = []
    assert not telemetry.active
    telemetry.attach("a", [("app",)], lambda e, m, md: got.append(e))
    telemetry.attach("b", [("app", "db", "query")], lambda e, m, md: got.append(("b", *e)))
    assert telemetry.active
    telemetry.execute(("app", "db", "query"), {"duration": 0.1}, {})
    telemetry.execute(("app", "web"), {}, {})
    telemetry.execute(("other",), {}, {})
    assert got == [("app", "db", "query"), ("b", "app", "db", "query"), ("app", "web")]
    assert telemetry.handlers(("app", "db")) == [("a", (("app",),)),
                                                  ("b", (("app", "db", "query"),))]
    with pytest.raises(ValueError, match="attached already"):
        telemetry.attach("a", [("x",)], lambda e, m, md: None)
    with pytest.raises(ValueError, match="tuple of str"):
        telemetry.attach("c", [()], lambda e, m, md: None)
    assert telemetry.detach("a") and telemetry.detach("b")
    assert not telemetry.detach("a")
    assert not telemetry.active
    telemetry.execute(("app", "web"), {}, {})
    assert len(got) == 3


def test_a_raising_handler_is_detached_and_logged_and_the_emitter_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def bad(event: Any, measurements: Any, metadata: Any) -> None:
        calls.append("bad")
        raise RuntimeError("handler bug")

    telemetry.attach("bad", [("otpy", "supervisor", "restart")], bad)
    telemetry.attach("good", [("otpy", "supervisor", "restart")], lambda e, m, md:
                     calls.append("good"))

    async def main() -> None:
        otpy.trap_exits(True)
        sup = await otpy.Supervisor.start_link([Server.child_spec(id="s")])
        for _ in range(2):
            [row] = await otpy.Supervisor.which_children(sup)
            await otpy.call(row.pid, "crash")
            [after] = await otpy.Supervisor.which_children(sup)
            assert after.pid not in (None, row.pid)  # still restarted

    try:
        otpy.run(main)
    finally:
        telemetry.detach("good")
    assert calls == ["bad", "good", "good"]
    assert not telemetry.detach("bad")
    assert any("telemetry handler 'bad' failed" in r.getMessage() for r in caplog.records)


def test_supervisor_events_tell_a_one_for_all_restart_in_order(seen: Seen) -> None:
    async def main() -> tuple[otpy.Pid, list[otpy.ChildInfo]]:
        otpy.trap_exits(True)
        sup = await otpy.Supervisor.start_link(
            [Server.child_spec(id=i) for i in ("a", "b", "c")], strategy="one_for_all")
        rows = await otpy.Supervisor.which_children(sup)
        seen.clear()
        await otpy.call(rows[1].pid, "crash")
        await otpy.Supervisor.which_children(sup)
        return sup, rows

    sup, rows = otpy.run(main)
    a, b, c = (r.pid for r in rows)
    brief = [(e[-1], md.get("id"), md.get("pid")) for e, md in seen]
    assert brief[0] == ("exit", None, b)
    assert brief[1] == ("restart", "b", b)
    assert brief[2:6] == [("child_shutdown", "c", c), ("exit", None, c),
                          ("child_shutdown", "a", a), ("exit", None, a)]
    assert [(k, i) for k, i, _ in brief[6:9]] == [("child_started", "a"), ("child_started", "b"),
                                                ("child_started", "c")]
    assert seen[1][1]["reason"] == otpy.TermReason("boom")
    assert all(md.get("supervisor", sup) == sup for _, md in seen)


def test_give_up_init_and_dynamic_supervisor_events(seen: Seen) -> None:
    async def main() -> None:
        otpy.trap_exits(True)
        dyn = await otpy.DynamicSupervisor.start_link(max_restarts=0)
        pid = await otpy.DynamicSupervisor.start_child(dyn, Server.child_spec())
        assert pid is not None
        await otpy.call(pid, "crash")
        await otpy.receive(otpy.Exit)

    otpy.run(main)
    kinds = [e[-1] for e, _ in seen]
    assert kinds[:2] == ["init", "child_started"]
    assert seen[0][1]["kind"] == "dynamic" and seen[0][1]["max_restarts"] == 0
    assert kinds[2:5] == ["exit", "restart", "give_up"]
    assert kinds[-1] == "exit"


def test_no_handler_means_no_event_work(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "otpy.telemetry")
    assert telemetry.handlers() == []

    async def main() -> None:
        otpy.spawn(otpy.receive)

    otpy.run(main)
    assert not caplog.records
