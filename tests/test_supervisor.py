"""Supervisor and DynamicSupervisor semantics (OTP_SEMANTICS 16-23)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing

import otpy
from otpy import ChildSpec, Down, Exit, Supervisor

EVENTS: list[str] = []


class Worker(otpy.GenServer):
    trap_exits = True

    async def init(self, tag: str, fail_start: bool = False) -> None:
        if fail_start:
            raise otpy.Stop(otpy.TermReason("no start"))
        self.tag = tag
        EVENTS.append(f"start:{tag}")

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request == "tag":
            return self.tag
        if isinstance(request, tuple) and request[0] == "exit":
            raise otpy.Stop(request[1], reply="ok")
        return None

    async def handle_cast(self, request: Any) -> None:
        raise RuntimeError(f"crash {self.tag}")

    async def terminate(self, reason: otpy.ExitReason) -> None:
        EVENTS.append(f"stop:{self.tag}")


class Stubborn(otpy.GenServer):
    """Never finishes terminating: the supervisor must kill it."""

    trap_exits = True

    async def terminate(self, reason: otpy.ExitReason) -> None:
        await trio.sleep_forever()


def spec(tag: str, restart: str = "permanent", **kw: Any) -> ChildSpec:
    return Worker.child_spec(tag, id=tag, name=tag, restart=restart, **kw)


@pytest.fixture(autouse=True)
def _clear_events() -> None:
    EVENTS.clear()


async def pids(sup: Any) -> dict[Any, Any]:
    return {c.id: c.pid for c in await Supervisor.which_children(sup)}


async def crash(name: str) -> None:
    """Crash a named worker and wait until it is gone."""
    pid = otpy.whereis(name)
    assert pid is not None
    ref = otpy.monitor(pid)
    otpy.cast(pid, "crash")
    await otpy.receive(lambda m: isinstance(m, Down) and m.ref == ref, timeout=5)
    await trio.testing.wait_all_tasks_blocked()


async def test_16_start_left_to_right_stop_right_to_left() -> None:
    async with otpy.open_node():
        otpy.trap_exits(True)  # we are linked to the supervisor we stop
        sup = await Supervisor.start_link([spec("a"), spec("b"), spec("c")])
        assert EVENTS == ["start:a", "start:b", "start:c"]
        EVENTS.clear()
        await otpy.stop(sup, otpy.Shutdown(), timeout=5)
        assert EVENTS == ["stop:c", "stop:b", "stop:a"]


async def test_16_failed_child_start_fails_the_supervisor_and_stops_started_ones() -> None:
    async with otpy.open_node():
        otpy.trap_exits(True)
        with pytest.raises(otpy.StartError) as info:
            await Supervisor.start_link(
                [spec("a"), Worker.child_spec("b", True, id="b"), spec("c")]
            )
        reason = info.value.reason
        assert isinstance(reason, otpy.Shutdown)
        assert reason.detail[:2] == ("failed_to_start_child", "b")
        assert EVENTS == ["start:a", "stop:a"]


async def test_17_one_for_one_restarts_only_the_failed_child() -> None:
    async with otpy.open_node():
        sup = await Supervisor.start_link([spec("a"), spec("b"), spec("c")])
        before = await pids(sup)
        await crash("b")
        after = await pids(sup)
        assert after["a"] == before["a"] and after["c"] == before["c"]
        assert after["b"] != before["b"] and after["b"] is not None
        assert await otpy.call("b", "tag") == "b"


async def test_17_one_for_all_restarts_everyone() -> None:
    async with otpy.open_node():
        sup = await Supervisor.start_link([spec("a"), spec("b"), spec("c")],
                                          strategy="one_for_all")
        before = await pids(sup)
        EVENTS.clear()
        await crash("b")
        after = await pids(sup)
        assert all(after[k] != before[k] for k in "abc")
        # the others are stopped right to left, then all start left to right
        assert EVENTS == ["stop:b", "stop:c", "stop:a", "start:a", "start:b", "start:c"]


async def test_17_rest_for_one_restarts_the_failed_child_and_those_after_it() -> None:
    async with otpy.open_node():
        sup = await Supervisor.start_link([spec("a"), spec("b"), spec("c")],
                                          strategy="rest_for_one")
        before = await pids(sup)
        EVENTS.clear()
        await crash("b")
        after = await pids(sup)
        assert after["a"] == before["a"]
        assert after["b"] != before["b"] and after["c"] != before["c"]
        assert EVENTS == ["stop:b", "stop:c", "start:b", "start:c"]


async def test_18_restart_types() -> None:
    async with otpy.open_node():
        sup = await Supervisor.start_link(
            [spec("p"), spec("t", "transient"), spec("tmp", "temporary")],
            max_restarts=10,
        )
        # transient: a normal exit is not restarted, a crash is
        assert await otpy.call("t", ("exit", otpy.Normal())) == "ok"
        await trio.testing.wait_all_tasks_blocked()
        assert (await pids(sup))["t"] is None
        await Supervisor.restart_child(sup, "t")
        await crash("t")
        assert (await pids(sup))["t"] is not None
        assert await otpy.call("t", ("exit", otpy.Shutdown("x"))) == "ok"
        await trio.testing.wait_all_tasks_blocked()
        assert (await pids(sup))["t"] is None
        # permanent: even a normal exit is restarted
        old = otpy.whereis("p")
        assert await otpy.call("p", ("exit", otpy.Normal())) == "ok"
        await trio.testing.wait_all_tasks_blocked()
        assert otpy.whereis("p") not in (None, old)
        # temporary: never restarted, and its spec is gone
        await crash("tmp")
        assert "tmp" not in await pids(sup)


async def test_18_temporary_children_not_restarted_by_one_for_all() -> None:
    async with otpy.open_node():
        sup = await Supervisor.start_link([spec("a"), spec("tmp", "temporary"), spec("c")],
                                          strategy="one_for_all")
        await crash("a")
        children = await pids(sup)
        assert set(children) == {"a", "c"}
        assert otpy.whereis("tmp") is None


async def test_19_intensity_is_per_supervisor_and_exceeding_it_shuts_down(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await Supervisor.start_link([spec("a"), spec("b")], max_restarts=2,
                                          max_seconds=5)
        await crash("a")
        await crash("b")  # two restarts of different children: still fine
        EVENTS.clear()
        await crash("a")  # the third within 5 s: too many
        msg = await otpy.receive(Exit, timeout=5)
        assert msg == Exit(sup, otpy.Shutdown())
        assert EVENTS == ["stop:a", "stop:b"]  # a's own terminate, then b shut down
        assert "reached max restart intensity" in caplog.text


async def test_19_restarts_outside_the_window_do_not_count(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with otpy.open_node():
        sup = await Supervisor.start_link([spec("a")], max_restarts=1, max_seconds=5)
        for _ in range(4):
            await crash("a")
            await trio.sleep(5.5)
        assert otpy.is_alive(sup)


async def test_19_failed_restarts_are_retried_and_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    attempts: list[int] = []

    async def flaky_start() -> otpy.Pid:
        attempts.append(1)
        if 2 <= len(attempts) <= 3:
            raise RuntimeError("not yet")
        return await Worker.start_link("f", name="f")

    async with otpy.open_node():
        sup = await Supervisor.start_link([ChildSpec("f", (flaky_start, (), {}))],
                                          max_restarts=5)
        await crash("f")
        await trio.testing.wait_all_tasks_blocked()
        assert len(attempts) == 4  # first start, two failed restarts, success
        assert otpy.whereis("f") is not None
        assert len((await otpy.call(sup, ("which_children",))) or []) == 1
        otpy.trap_exits(True)
        # three restarts counted so far; two more attempts exceed 5
        attempts.clear()
        attempts.extend([1])  # next two attempts fail again
        await crash("f")
        msg = await otpy.receive(Exit, timeout=5)
        assert msg.reason == otpy.Shutdown()


async def test_20_shutdown_timeout_then_kill_and_brutal_kill(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with otpy.open_node():
        otpy.trap_exits(True)
        sup = await Supervisor.start_link([
            ChildSpec("slow", (Stubborn.start_link, (), {}), shutdown=2.0),
            ChildSpec("brutal", (Stubborn.start_link, (), {}), shutdown="brutal_kill"),
        ])
        children = await pids(sup)
        refs = {k: otpy.monitor(p) for k, p in children.items()}
        t0 = trio.current_time()
        await otpy.stop(sup, otpy.Shutdown(), timeout=None)
        assert trio.current_time() - t0 == pytest.approx(2.0, abs=0.01)
        downs = {}
        for _ in range(2):
            d = await otpy.receive(Down, timeout=1)
            downs[d.ref] = d.reason
        assert downs[refs["slow"]] == otpy.Killed()
        assert downs[refs["brutal"]] == otpy.Killed()


async def test_20_supervisor_children_default_to_infinity() -> None:
    assert Supervisor.child_spec([]).shutdown == "infinity"
    assert ChildSpec("w", (Worker.start_link, ("x",), {})).shutdown == 5.0
    with pytest.raises(ValueError):
        ChildSpec("w", (Worker.start_link, (), {}), restart="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ChildSpec("w", (Worker.start_link, (), {}), shutdown=-1)


async def test_22_ignore_keeps_the_spec_unless_temporary() -> None:
    class Ignorer(otpy.GenServer):
        async def init(self) -> None:
            raise otpy.Ignore()

    async with otpy.open_node():
        sup = await Supervisor.start_link([
            ChildSpec("ign", (Ignorer.start_link, (), {})),
            ChildSpec("ign_tmp", (Ignorer.start_link, (), {}), restart="temporary"),
        ])
        assert await pids(sup) == {"ign": None}
        assert await Supervisor.count_children(sup) == {
            "specs": 1, "active": 0, "supervisors": 0, "workers": 1}


async def test_23_child_api() -> None:
    async with otpy.open_node():
        sup = await Supervisor.start_link([spec("a")])
        b = await Supervisor.start_child(sup, spec("b"))
        assert b == otpy.whereis("b")
        with pytest.raises(otpy.SupervisorError) as info:
            await Supervisor.start_child(sup, spec("b"))
        assert info.value.reason == ("already_started", b)
        with pytest.raises(otpy.SupervisorError) as info:
            await Supervisor.delete_child(sup, "b")
        assert info.value.reason == "running"
        with pytest.raises(otpy.SupervisorError) as info:
            await Supervisor.restart_child(sup, "b")
        assert info.value.reason == "running"
        await Supervisor.terminate_child(sup, "b")
        assert otpy.whereis("b") is None
        assert (await pids(sup))["b"] is None
        with pytest.raises(otpy.SupervisorError) as info:
            await Supervisor.start_child(sup, spec("b"))
        assert info.value.reason == "already_present"
        b2 = await Supervisor.restart_child(sup, "b")
        assert b2 is not None and b2 != b
        await Supervisor.terminate_child(sup, "b")
        await Supervisor.delete_child(sup, "b")
        assert list(await pids(sup)) == ["a"]
        with pytest.raises(otpy.SupervisorError) as info:
            await Supervisor.terminate_child(sup, "nope")
        assert info.value.reason == "not_found"
        rows = await Supervisor.which_children(sup)
        child_id, _pid, kind, modules = rows[0]
        assert (child_id, kind, modules) == ("a", "worker", ["Worker"])
        assert await Supervisor.count_children(sup) == {
            "specs": 1, "active": 1, "supervisors": 0, "workers": 1}


async def test_nested_supervisors_restart_subtrees() -> None:
    async with otpy.open_node():
        inner = Supervisor.child_spec([spec("x"), spec("y")], strategy="one_for_all",
                                      id="inner", name="inner")
        top = await Supervisor.start_link([spec("a"), inner])
        assert await Supervisor.count_children(top) == {
            "specs": 2, "active": 2, "supervisors": 1, "workers": 1}
        old_inner = otpy.whereis("inner")
        await crash("x")
        assert otpy.whereis("inner") == old_inner  # handled inside
        otpy.exit(old_inner, otpy.Kill())
        await trio.testing.wait_all_tasks_blocked()
        new_inner = otpy.whereis("inner")
        assert new_inner not in (None, old_inner)
        assert await otpy.call("x", "tag") == "x"
        EVENTS.clear()
        otpy.trap_exits(True)
        await otpy.stop(top, otpy.Shutdown(), timeout=5)
        assert EVENTS == ["stop:y", "stop:x", "stop:a"]


async def test_supervisor_logs_reports(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="otpy")
    async with otpy.open_node():
        await Supervisor.start_link([spec("a")])
        await crash("a")
        reports = [getattr(r, "otpy_report", None) for r in caplog.records]
        assert "progress" in reports
        assert "child_terminated" in reports


# ------------------------------------------------------------- dynamic


async def test_dynamic_supervisor_start_restart_terminate_max_children() -> None:
    async with otpy.open_node():
        dsup = await otpy.DynamicSupervisor.start_link(max_children=2)
        p1 = await otpy.DynamicSupervisor.start_child(dsup, spec("d1"))
        await otpy.DynamicSupervisor.start_child(dsup, spec("d2", "temporary"))
        with pytest.raises(otpy.SupervisorError) as info:
            await otpy.DynamicSupervisor.start_child(dsup, spec("d3"))
        assert info.value.reason == "max_children"
        await crash("d1")
        p1b = otpy.whereis("d1")
        assert p1b not in (None, p1)
        await crash("d2")  # temporary: gone
        assert otpy.whereis("d2") is None
        rows = await otpy.DynamicSupervisor.which_children(dsup)
        assert [r.pid for r in rows] == [p1b]
        assert await otpy.DynamicSupervisor.count_children(dsup) == {
            "specs": 1, "active": 1, "supervisors": 0, "workers": 1}
        await otpy.DynamicSupervisor.terminate_child(dsup, p1b)
        assert otpy.whereis("d1") is None
        with pytest.raises(otpy.SupervisorError):
            await otpy.DynamicSupervisor.terminate_child(dsup, p1b)


async def test_dynamic_supervisor_intensity(autojump_clock: trio.testing.MockClock) -> None:
    async with otpy.open_node():
        otpy.trap_exits(True)
        dsup = await otpy.DynamicSupervisor.start_link(max_restarts=1, max_seconds=5)
        await otpy.DynamicSupervisor.start_child(dsup, spec("d"))
        await crash("d")
        EVENTS.clear()
        await crash("d")
        assert await otpy.receive(Exit, timeout=1) == Exit(dsup, otpy.Shutdown())
