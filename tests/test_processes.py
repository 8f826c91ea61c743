"""Processes, mailboxes, links, monitors and exit signals (OTP_SEMANTICS 1-6, 8, 24)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import otpy
from otpy import Down, Exit


async def sleeper() -> None:
    await trio.sleep_forever()


async def waiter() -> None:
    await otpy.receive()


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked()


def is_down(ref: otpy.Ref) -> Any:
    return lambda m: isinstance(m, Down) and m.ref == ref


async def exit_reason(pid: otpy.Pid) -> otpy.ExitReason:
    """Monitor pid and return the reason it exits with."""
    ref = otpy.monitor(pid)
    msg = await otpy.receive(is_down(ref), timeout=5)
    return msg.reason  # type: ignore[no-any-return]


# ------------------------------------------------------------------ mailbox


async def test_send_never_blocks_and_order_is_kept() -> None:
    async with otpy.open_node():
        me = otpy.self()
        got: list[int] = []

        async def collect() -> None:
            for _ in range(10_000):
                got.append(await otpy.receive())
            otpy.send(me, "done")

        pid = otpy.spawn(collect)
        for i in range(10_000):  # the receiver has not run yet: nothing blocks
            otpy.send(pid, i)
        assert await otpy.receive(timeout=5) == "done"
        assert got == list(range(10_000))


async def test_selective_receive_keeps_other_messages_in_order() -> None:
    async with otpy.open_node():
        me = otpy.self()
        for m in ["a", 1, "b", 2, ("x", 3)]:
            otpy.send(me, m)
        assert await otpy.receive(int) == 1
        assert await otpy.receive(lambda m: isinstance(m, tuple)) == ("x", 3)
        assert await otpy.receive(int) == 2
        assert [await otpy.receive() for _ in range(2)] == ["a", "b"]


async def test_selective_receive_waits_for_a_match_arriving_later() -> None:
    async with otpy.open_node():
        me = otpy.self()

        async def later() -> None:
            otpy.send(me, "noise")
            await trio.sleep(0.01)
            otpy.send(me, 42)

        otpy.spawn(later)
        assert await otpy.receive(int, timeout=5) == 42
        assert await otpy.receive(timeout=0.1) == "noise"


async def test_receive_timeout_raises_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async with otpy.open_node():
        t0 = trio.current_time()
        with pytest.raises(otpy.Timeout):
            await otpy.receive(timeout=3.0)
        assert 3.0 <= trio.current_time() - t0 < 3.01
        assert isinstance(otpy.Timeout(), TimeoutError)
        with pytest.raises(otpy.Timeout):
            await otpy.receive(timeout=0)


async def test_receive_timeout_is_not_lost_to_nonmatching_messages(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with otpy.open_node():
        me = otpy.self()

        async def noisy() -> None:
            for _ in range(100):
                otpy.send(me, "noise")
                await trio.sleep(0.1)

        otpy.spawn(noisy)
        with pytest.raises(otpy.Timeout):
            await otpy.receive(int, timeout=2.0)


async def test_sending_to_dead_pid_is_dropped_and_to_unknown_name_raises() -> None:
    async with otpy.open_node():
        pid = otpy.spawn(otpy.receive)
        otpy.exit(pid, otpy.Kill())
        await settle()
        assert not otpy.is_alive(pid)
        otpy.send(pid, "hello")  # silently dropped
        with pytest.raises(otpy.NotRegisteredError):
            otpy.send("nobody", "hello")


async def test_a_crashing_process_does_not_affect_unlinked_siblings() -> None:
    async with otpy.open_node():

        async def boom() -> None:
            raise ValueError("boom")

        survivor = otpy.spawn(waiter)
        pid = otpy.spawn(boom)
        reason = await exit_reason(pid)
        assert isinstance(reason, otpy.NoProc | otpy.Crash)
        await settle()
        assert otpy.is_alive(survivor)


async def test_uncaught_exception_becomes_crash_with_traceback() -> None:
    async with otpy.open_node():

        async def boom() -> None:
            await trio.sleep(0)
            raise ValueError("boom")

        pid, ref = otpy.spawn_monitor(boom)
        down = await otpy.receive(is_down(ref), timeout=5)
        assert down.pid == pid
        assert isinstance(down.reason, otpy.Crash)
        assert isinstance(down.reason.exception, ValueError)
        assert "boom" in down.reason.traceback
        assert "in boom" in down.reason.traceback


async def test_process_exit_sets_the_reason() -> None:
    async with otpy.open_node():

        async def leave() -> None:
            await trio.sleep(0)
            raise otpy.ProcessExit(otpy.Shutdown("bye"))

        _pid, ref = otpy.spawn_monitor(leave)
        down = await otpy.receive(is_down(ref), timeout=5)
        assert down.reason == otpy.Shutdown("bye")


# -------------------------------------------------------------- exit signals


async def test_1_kill_cannot_be_trapped_and_gives_killed() -> None:
    async with otpy.open_node():

        async def trapper() -> None:
            otpy.trap_exits(True)
            while True:
                await otpy.receive()

        pid = otpy.spawn(trapper)
        await settle()
        otpy.exit(pid, otpy.Kill())
        assert await exit_reason(pid) in (otpy.Killed(), otpy.NoProc())
        pid2 = otpy.spawn(trapper)
        ref = otpy.monitor(pid2)
        await settle()
        otpy.exit(pid2, otpy.Kill())
        down = await otpy.receive(is_down(ref), timeout=5)
        assert down.reason == otpy.Killed()


async def test_2_link_exit_with_reason_kill_is_trappable_and_stays_kill() -> None:
    async with otpy.open_node():
        otpy.trap_exits(True)

        async def dies_with_kill() -> None:
            await trio.sleep(0)
            raise otpy.ProcessExit(otpy.Kill())

        pid = otpy.spawn_link(dies_with_kill)
        msg = await otpy.receive(Exit, timeout=5)
        assert msg == Exit(pid, otpy.Kill())

        # A non-trapping linked process dies with reason kill, not killed.
        async def middle() -> None:
            otpy.spawn_link(dies_with_kill)
            await otpy.receive()

        mid = otpy.spawn(middle)
        assert await exit_reason(mid) == otpy.Kill()


async def test_3_normal_exit_signal_ignored_unless_trapping_or_from_self() -> None:
    async with otpy.open_node():
        pid = otpy.spawn(waiter)
        await settle()
        otpy.exit(pid, otpy.Normal())
        await settle()
        assert otpy.is_alive(pid)

        async def exits_self_normal() -> None:
            otpy.exit(otpy.self(), otpy.Normal())
            await otpy.receive()

        _pid2, ref = otpy.spawn_monitor(exits_self_normal)
        down = await otpy.receive(is_down(ref), timeout=5)
        assert down.reason == otpy.Normal()

        # A linked process ending normally does not take a non-trapping partner down.
        async def ends() -> None:
            await trio.sleep(0)

        async def partner() -> None:
            otpy.spawn_link(ends)
            await otpy.receive()

        p = otpy.spawn(partner)
        await settle()
        await trio.sleep(0.01)
        assert otpy.is_alive(p)
        otpy.exit(p, otpy.Kill())


async def test_4_trapping_receiver_gets_exit_message_others_die_with_reason() -> None:
    async with otpy.open_node():
        otpy.trap_exits(True)
        me = otpy.self()
        otpy.exit(me, otpy.TermReason("custom"))
        assert await otpy.receive(timeout=1) == Exit(me, otpy.TermReason("custom"))

        pid = otpy.spawn(waiter)
        await settle()
        otpy.exit(pid, otpy.Shutdown("stop"))
        assert await exit_reason(pid) in (otpy.Shutdown("stop"), otpy.NoProc())

        async def crasher() -> None:
            await trio.sleep(0)
            raise RuntimeError("x")

        async def linked_victim() -> None:
            otpy.spawn_link(crasher)
            await otpy.receive()

        _victim, ref = otpy.spawn_monitor(linked_victim)
        down = await otpy.receive(is_down(ref), timeout=5)
        assert isinstance(down.reason, otpy.Crash)
        assert isinstance(down.reason.exception, RuntimeError)


async def test_5_link_to_dead_pid() -> None:
    async with otpy.open_node():
        dead = otpy.spawn(waiter)
        otpy.exit(dead, otpy.Kill())
        await settle()

        otpy.trap_exits(True)
        otpy.link(dead)
        assert await otpy.receive(timeout=1) == Exit(dead, otpy.NoProc())

        async def non_trapping() -> None:
            otpy.link(dead)
            await otpy.receive()

        _pid, ref = otpy.spawn_monitor(non_trapping)
        down = await otpy.receive(is_down(ref), timeout=5)
        assert down.reason == otpy.NoProc()


async def test_6_monitor_dead_pid_stacking_and_demonitor_flush() -> None:
    async with otpy.open_node():
        dead = otpy.spawn(waiter)
        otpy.exit(dead, otpy.Kill())
        await settle()
        ref = otpy.monitor(dead)
        assert await otpy.receive(timeout=1) == Down(ref, dead, otpy.NoProc())

        pid = otpy.spawn(waiter)
        r1, r2 = otpy.monitor(pid), otpy.monitor(pid)
        assert r1 != r2
        otpy.send(pid, "go")
        downs = [await otpy.receive(Down, timeout=1) for _ in range(2)]
        assert {d.ref for d in downs} == {r1, r2}
        assert all(d.reason == otpy.Normal() for d in downs)

        pid = otpy.spawn(waiter)
        ref = otpy.monitor(pid)
        otpy.send(pid, "go")
        await settle()
        assert otpy.demonitor(ref, flush=True) is False  # already fired...
        with pytest.raises(otpy.Timeout):  # ...and the Down was flushed
            await otpy.receive(Down, timeout=0)

        pid = otpy.spawn(waiter)
        ref = otpy.monitor(pid)
        assert otpy.demonitor(ref) is True
        otpy.send(pid, "go")
        await settle()
        with pytest.raises(otpy.Timeout):
            await otpy.receive(Down, timeout=0)


async def test_monitor_by_name_reports_the_name() -> None:
    async with otpy.open_node():
        pid = otpy.spawn(waiter, name="w")
        ref = otpy.monitor("w")
        otpy.send(pid, "go")
        down = await otpy.receive(Down, timeout=1)
        assert down.ref == ref and down.pid == "w"
        ref = otpy.monitor("nobody")
        assert await otpy.receive(timeout=1) == Down(ref, "nobody", otpy.NoProc())


async def test_8_unlink_ignores_in_flight_link_signals() -> None:
    async with otpy.open_node():
        otpy.trap_exits(True)

        async def dies() -> None:
            await otpy.receive()
            raise otpy.ProcessExit(otpy.TermReason("bye"))

        pid = otpy.spawn_link(dies)
        otpy.send(pid, "go")
        await settle()  # the Exit is now in our mailbox
        otpy.unlink(pid)
        with pytest.raises(otpy.Timeout):
            await otpy.receive(Exit, timeout=0)

        # A non-trapping process that unlinks survives its former partner.
        async def unlinker() -> None:
            p = otpy.spawn_link(dies)
            otpy.unlink(p)
            otpy.send(p, "go")
            await otpy.receive()

        u = otpy.spawn(unlinker)
        await settle()
        await trio.sleep(0.01)
        assert otpy.is_alive(u)
        otpy.exit(u, otpy.Kill())


async def test_8_spawn_link_is_atomic() -> None:
    async with otpy.open_node():
        otpy.trap_exits(True)

        async def instant_crash() -> None:
            raise RuntimeError("at once")

        pid = otpy.spawn_link(instant_crash)
        msg = await otpy.receive(Exit, timeout=1)
        assert msg.pid == pid and isinstance(msg.reason, otpy.Crash)


async def test_8_order_per_sender_receiver_pair() -> None:
    async with otpy.open_node():
        otpy.trap_exits(True)
        me = otpy.self()

        async def talk_then_die() -> None:
            for i in range(5):
                otpy.send(me, i)
            raise otpy.ProcessExit(otpy.TermReason("done"))

        pid = otpy.spawn_link(talk_then_die)
        got = [await otpy.receive(timeout=1) for _ in range(6)]
        assert got == [0, 1, 2, 3, 4, Exit(pid, otpy.TermReason("done"))]


async def test_killing_a_process_blocked_outside_receive() -> None:
    async with otpy.open_node():
        pid, ref = otpy.spawn_monitor(sleeper)
        await settle()
        otpy.exit(pid, otpy.Shutdown())
        down = await otpy.receive(is_down(ref), timeout=1)
        assert down.reason == otpy.Shutdown()


async def test_trap_exits_returns_previous_flag_and_spawn_option() -> None:
    async with otpy.open_node():
        assert otpy.trap_exits(True) is False
        assert otpy.trap_exits(False) is True
        me = otpy.self()

        async def report() -> None:
            otpy.send(me, otpy.trap_exits(False))

        otpy.spawn(report, trap_exits=True)
        assert await otpy.receive(timeout=1) is True


# ------------------------------------------------------------------- names


async def test_24_names_unique_one_per_pid_removed_on_exit() -> None:
    async with otpy.open_node():
        pid = otpy.spawn(waiter)
        otpy.register("a", pid)
        assert otpy.whereis("a") == pid
        assert "a" in otpy.registered()
        with pytest.raises(ValueError):
            otpy.register("a", otpy.spawn(waiter))
        with pytest.raises(ValueError):
            otpy.register("b", pid)  # one name per pid
        otpy.send("a", "go")
        await exit_reason(pid)
        assert otpy.whereis("a") is None
        assert "a" not in otpy.registered()
        with pytest.raises(otpy.NotRegisteredError):
            otpy.send("a", "x")
        me = otpy.self()
        otpy.register("me")
        otpy.send(("me", otpy.node()), "via tuple")
        assert await otpy.receive(timeout=1) == "via tuple"
        otpy.unregister("me")
        assert otpy.whereis("me") is None
        with pytest.raises(otpy.NotRegisteredError):
            otpy.unregister("me")
        assert me == otpy.self()


async def test_node_is_nonode_without_distribution() -> None:
    async with otpy.open_node():
        assert otpy.node() == "nonode@nohost"
        assert otpy.nodes() == []
        otpy.monitor_node("other@host")
        assert await otpy.receive(timeout=1) == otpy.NodeDown("other@host")


def test_run_returns_main_result_and_raises_its_exception() -> None:
    async def main(x: int) -> int:
        return x + 1

    assert otpy.run(main, 41) == 42

    async def bad() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        otpy.run(bad)

    async def killed() -> None:
        otpy.exit(otpy.self(), otpy.Kill())
        await trio.sleep(1)

    with pytest.raises(otpy.ProcessExit) as info:
        otpy.run(killed)
    assert info.value.reason == otpy.Killed()


def test_run_shuts_down_remaining_processes_in_order() -> None:
    events: list[str] = []

    class Server(otpy.GenServer):
        trap_exits = True

        async def init(self, tag: str) -> None:
            self.tag = tag

        async def terminate(self, reason: otpy.ExitReason) -> None:
            events.append(f"{self.tag}:{type(reason).__name__}")

    async def main() -> None:
        await otpy.Supervisor.start_link(
            [Server.child_spec("a", id="a"), Server.child_spec("b", id="b")]
        )
        await Server.start("loner")  # not linked to anything

    otpy.run(main)
    assert events.index("b:Shutdown") < events.index("a:Shutdown")
    assert "loner:Shutdown" in events
