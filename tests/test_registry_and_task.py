"""Registry / Via / Global names (OTP_SEMANTICS 25, 27) and Task (28-30)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import otpy
from otpy import Down, Exit, Registry, Task, Via


class Echo(otpy.GenServer):
    async def init(self, tag: str) -> None:
        self.tag = tag

    async def handle_call(self, request: Any, caller: Any) -> Any:
        return (self.tag, request)


async def waiter() -> None:
    await otpy.receive()


# ------------------------------------------------------------------ registry


async def test_27_unique_registry_lookup_metadata_and_cleanup() -> None:
    async with otpy.open_node():
        await Registry.start_link("reg", meta={"kind": "test"})
        me = otpy.self()
        Registry.register("reg", "k", {"v": 1})
        assert Registry.lookup("reg", "k") == [(me, {"v": 1})]
        assert Registry.keys("reg", me) == ["k"]
        assert Registry.update_value("reg", "k", lambda v: {"v": 2}) == ({"v": 2}, {"v": 1})
        assert Registry.meta("reg", "kind") == "test"
        Registry.put_meta("reg", "extra", 5)
        assert Registry.meta("reg", "extra") == 5

        async def grab(key: str) -> None:
            try:
                Registry.register("reg", key)
            except ValueError as err:
                otpy.send(me, ("taken", err.args[1]))
                return
            otpy.send(me, "ok")
            await otpy.receive()

        p = otpy.spawn(grab, "k")
        assert await otpy.receive(timeout=1) == ("taken", me)
        p = otpy.spawn(grab, "other")
        assert await otpy.receive(timeout=1) == "ok"
        assert Registry.count("reg") == 2
        otpy.send(p, "exit")
        ref = otpy.monitor(p)
        await otpy.receive(Down, timeout=1)
        del ref
        assert Registry.lookup("reg", "other") == []  # gone with its owner
        Registry.unregister("reg", "k")
        assert Registry.lookup("reg", "k") == []


async def test_27_duplicate_registry_and_dispatch() -> None:
    async with otpy.open_node():
        await Registry.start_link("pubsub", keys="duplicate")
        me = otpy.self()

        async def subscriber(n: int) -> None:
            Registry.register("pubsub", "topic", n)
            otpy.send(me, "subscribed")
            otpy.send(me, ("got", n, await otpy.receive()))

        for n in range(3):
            otpy.spawn(subscriber, n)
        for _ in range(3):
            await otpy.receive(timeout=1)
        assert sorted(v for _, v in Registry.lookup("pubsub", "topic")) == [0, 1, 2]
        Registry.dispatch("pubsub", "topic",
                          lambda entries: [otpy.send(pid, "hello") for pid, _ in entries])
        got = sorted([await otpy.receive(timeout=1) for _ in range(3)])
        assert got == [("got", 0, "hello"), ("got", 1, "hello"), ("got", 2, "hello")]


async def test_25_via_names_for_start_send_call_and_whereis() -> None:
    async with otpy.open_node():
        await Registry.start_link("sessions")
        name = Via("sessions", ("user", 1))
        pid = await Echo.start(name=name, tag="one")
        assert otpy.whereis(name) == pid
        assert await otpy.call(name, "hi") == ("one", "hi")
        with pytest.raises(otpy.StartError):
            await Echo.start(name=name, tag="two")

        async def inbox() -> None:
            Registry.register("sessions", "box")
            otpy.send(me, ("box got", await otpy.receive()))

        me = otpy.self()
        otpy.spawn(inbox)
        await trio.testing.wait_all_tasks_blocked()
        otpy.send(Via("sessions", "box"), "mail")
        assert await otpy.receive(timeout=1) == ("box got", "mail")
        await otpy.stop(name)
        assert otpy.whereis(name) is None
        with pytest.raises(otpy.NotRegisteredError):
            otpy.send(name, "nobody home")


async def test_global_names_on_a_single_node() -> None:
    async with otpy.open_node():
        g = otpy.Global("singleton")
        pid = await Echo.start(name=g, tag="g")
        assert otpy.whereis(g) == pid
        assert await otpy.call(g, 1) == ("g", 1)
        with pytest.raises(otpy.StartError):
            await Echo.start(name=g, tag="g2")
        await otpy.stop(g)
        assert otpy.whereis(g) is None


# ---------------------------------------------------------------------- task


async def test_28_async_await_and_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async with otpy.open_node():

        async def work(x: int) -> int:
            await trio.sleep(1)
            return x * 2

        task = Task.async_(work, 21)
        assert await Task.await_(task) == 42
        slow = Task.async_(work, 1)
        with pytest.raises(otpy.Timeout):
            await Task.await_(slow, timeout=0.5)
        assert await slow.result(timeout=5) == 2  # it kept running

        async def forever() -> None:
            await trio.sleep_forever()

        t0 = trio.current_time()
        with pytest.raises(otpy.Timeout):
            await Task.await_(Task.async_(forever))  # default 5 s
        assert trio.current_time() - t0 == pytest.approx(5.0, abs=0.01)


async def test_28_async_task_crash_takes_down_the_linked_owner() -> None:
    async with otpy.open_node():

        async def boom() -> None:
            raise RuntimeError("task failed")

        async def owner() -> None:
            await Task.await_(Task.async_(boom))

        _pid, _ref = otpy.spawn_monitor(owner)
        down = await otpy.receive(Down, timeout=1)
        assert isinstance(down.reason, otpy.Crash)
        assert str(down.reason.exception) == "task failed"

        otpy.trap_exits(True)
        task = Task.async_(boom)
        with pytest.raises(otpy.TaskError):
            await Task.await_(task)
        assert (await otpy.receive(Exit, timeout=1)).pid == task.pid


async def test_28_task_shutdown() -> None:
    async with otpy.open_node():

        async def forever() -> None:
            await trio.sleep_forever()

        task = Task.async_(forever)
        assert await Task.shutdown(task) is None
        assert not otpy.is_alive(task.pid)
        task = Task.async_(forever)
        assert await Task.shutdown(task, "brutal_kill") is None

        async def quick() -> str:
            return "done"

        task = Task.async_(quick)
        await trio.testing.wait_all_tasks_blocked()
        assert await Task.shutdown(task) == "done"


async def test_29_nolink_task_under_task_supervisor_only_monitors() -> None:
    async with otpy.open_node():
        sup = await otpy.TaskSupervisor.start_link()

        async def boom() -> None:
            await trio.sleep(0)
            raise RuntimeError("nolink failure")

        task = await otpy.TaskSupervisor.async_nolink(sup, boom)
        with pytest.raises(otpy.TaskError) as info:
            await Task.await_(task)
        assert isinstance(info.value.reason, otpy.Crash)
        assert otpy.is_alive(otpy.self())

        async def fine() -> int:
            return 7

        assert await Task.await_(await otpy.TaskSupervisor.async_nolink(sup, fine)) == 7
        pid = await otpy.TaskSupervisor.start_child(sup, fine)
        assert isinstance(pid, otpy.Pid)


async def test_30_async_stream_ordered_unordered_and_concurrency(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with otpy.open_node():
        running = 0
        peak = 0

        async def job(x: int) -> int:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await trio.sleep(5 - x)  # later items finish first
            running -= 1
            return x * x

        ordered = [r async for r in Task.async_stream(range(5), job, max_concurrency=3,
                                                     timeout=10)]
        assert ordered == [("ok", x * x) for x in range(5)]
        assert peak == 3
        unordered = [r async for r in Task.async_stream(range(5), job, max_concurrency=5,
                                                       ordered=False, timeout=10)]
        assert sorted(unordered) == sorted(("ok", x * x) for x in range(5))
        assert unordered[0] == ("ok", 16)  # the fastest came out first


async def test_30_async_stream_timeouts(autojump_clock: trio.testing.MockClock) -> None:
    async with otpy.open_node():

        async def job(x: int) -> int:
            await trio.sleep(x)
            return x

        results = [r async for r in Task.async_stream([1, 10, 2], job, timeout=5,
                                                     on_timeout="kill_task")]
        assert results == [("ok", 1), ("exit", otpy.Timeout()), ("ok", 2)]
        with pytest.raises(otpy.Timeout):
            async for _ in Task.async_stream([1, 10], job, timeout=5):
                pass


async def test_30_async_stream_nolink_reports_crashes() -> None:
    async with otpy.open_node():
        sup = await otpy.TaskSupervisor.start_link()

        async def job(x: int) -> int:
            if x == 2:
                raise ValueError("two")
            return x

        results = [r async for r in Task.async_stream([1, 2, 3], job, supervisor=sup)]
        assert results[0] == ("ok", 1) and results[2] == ("ok", 3)
        status, reason = results[1]
        assert status == "exit" and isinstance(reason, otpy.Crash)


async def test_a_killed_registry_is_restarted_with_a_fresh_table() -> None:
    async with otpy.open_node():
        otpy.trap_exits(True)  # registering linked us to the registry (as in Elixir)
        sup = await otpy.Supervisor.start_link([Registry.child_spec("reg")])
        Registry.register("reg", "old-key")
        old = otpy.whereis("reg")
        assert old is not None
        otpy.exit(old, otpy.Kill())  # no terminate runs
        assert await otpy.receive(Exit, timeout=1) == Exit(old, otpy.Killed())
        await trio.testing.wait_all_tasks_blocked()
        new = otpy.whereis("reg")
        assert new not in (None, old)
        assert otpy.is_alive(sup)
        assert Registry.lookup("reg", "old-key") == []  # the table went with the old one
        Registry.register("reg", "new-key")
        assert Registry.lookup("reg", "new-key") == [(otpy.self(), None)]
