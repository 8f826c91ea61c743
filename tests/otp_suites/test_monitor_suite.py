"""OTP's erts/emulator/test/monitor_SUITE.erl, its local cases, ported to
otpy's public API. Time runs on trio's MockClock.

Not ported: the distributed cases (mon_2, demon_3, remote_remove_monitor,
mixer), list_cleanup (process_info monitors), monitor_time_offset, and the
badarg cases of demonitor (otpy.demonitor of a non-reference answers False
today; see the report).
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import otpy
from otpy import Down, Exit

Clock = trio.testing.MockClock


async def sleeper(seconds: float) -> None:
    """timer:sleep/1 as a process."""
    await trio.sleep(seconds)


async def expect_down(ref: otpy.Ref, pid: Any) -> otpy.ExitReason:
    msg = await otpy.receive(timeout=5)
    assert type(msg) is Down and (msg.ref, msg.pid) == (ref, pid), msg
    return msg.reason  # type: ignore[no-any-return]


async def expect_no_msg() -> None:
    with pytest.raises(otpy.Timeout):
        msg = await otpy.receive(timeout=0)
        pytest.fail(f"unexpected message {msg!r}")


@pytest.mark.parametrize("how", ["monitor", "spawn_monitor"])
async def test_case_1(autojump_clock: Clock, how: str) -> None:
    """monitor_SUITE:case_1 and case_1a — A monitors B, B kills A with
    exit/2 and then exits: A's linked parent gets ``{'EXIT', A, foo}``."""
    async with otpy.open_node():
        otpy.trap_exits(True)

        async def g(parent: otpy.Pid) -> None:
            await otpy.receive(lambda m: m == "ok")
            otpy.exit(parent, "foo")

        async def g0() -> None:
            if how == "monitor":
                b = otpy.spawn(g, otpy.self())
                otpy.monitor(b)
            else:
                b, _ = otpy.spawn_monitor(g, otpy.self())
            otpy.send(b, "ok")
            await otpy.receive(lambda m: m == "ok")

        a = otpy.spawn_link(g0)
        assert await otpy.receive(timeout=5) == Exit(a, otpy.TermReason("foo"))


@pytest.mark.parametrize("how", ["monitor", "spawn_monitor"])
async def test_case_2(autojump_clock: Clock, how: str) -> None:
    """monitor_SUITE:case_2 and case_2a — B demonitoring a monitor that A
    set does nothing to A's monitor: A still gets ``DOWN normal``. erl's
    demonitor/1 answers ``true`` for any reference; otpy's answers whether
    the caller's monitor was active (erl's ``[info]`` answer), so False."""
    async with otpy.open_node():
        me = otpy.self()

        async def y2() -> None:
            ref = await otpy.receive()
            otpy.send(me, otpy.demonitor(ref))

        if how == "monitor":
            b = otpy.spawn(y2)
            ref = otpy.monitor(b)
        else:
            b, ref = otpy.spawn_monitor(y2)
        otpy.send(b, ref)
        assert await otpy.receive(timeout=5) is False
        assert await expect_down(ref, b) == otpy.Normal()


async def test_mon_e_1(autojump_clock: Clock) -> None:
    """monitor_SUITE:mon_e_1 — monitoring something that is neither a pid nor
    a name fails (erl: badarg; otpy: TypeError)."""
    async with otpy.open_node():
        for bad in (["bingo"], ("rex", "node", "junk"), 1):
            with pytest.raises(TypeError):
                otpy.monitor(bad)


async def test_demon_e_1(autojump_clock: Clock) -> None:
    """monitor_SUITE:demon_e_1 (its last part) — demonitor of a ref made by
    the *other* end of a monitor does not remove that monitor (erl answers
    true; otpy answers False, see test_case_2)."""
    async with otpy.open_node():
        me = otpy.self()

        async def p2() -> None:
            otpy.send(me, ("ref", otpy.monitor(me)))
            await otpy.receive(lambda m: m == "stop")

        pid = otpy.spawn(p2)
        _, ref = await otpy.receive(timeout=5)
        assert otpy.demonitor(ref) is False
        otpy.send(pid, "stop")


async def test_demon_1(autojump_clock: Clock) -> None:
    """monitor_SUITE:demon_1 — demonitor of an unknown reference is a no-op
    (erl: true; otpy: False, nothing was active)."""
    async with otpy.open_node():
        assert otpy.demonitor(otpy.Ref.make(otpy.node(), 0)) is False
        await expect_no_msg()


async def test_demon_2(autojump_clock: Clock) -> None:
    """monitor_SUITE:demon_2 — monitoring oneself and demonitoring twice
    leaves no message; a normal ``DOWN``; demonitor before the target dies:
    no ``DOWN``."""
    async with otpy.open_node():
        r1 = otpy.monitor(otpy.self())
        assert otpy.demonitor(r1) is True
        assert otpy.demonitor(r1) is False  # erl: true
        await expect_no_msg()

        p2 = otpy.spawn(sleeper, 0.125)
        r2 = otpy.monitor(p2)
        assert await expect_down(r2, p2) in (otpy.Normal(), otpy.NoProc())

        p4 = otpy.spawn(sleeper, 100)
        r4 = otpy.monitor(p4)
        otpy.demonitor(r4)
        otpy.exit(p4, "frop")
        await trio.testing.wait_all_tasks_blocked()
        await expect_no_msg()


async def test_demonitor_flush(autojump_clock: Clock) -> None:
    """monitor_SUITE:demonitor_flush (local half) — four monitors on one
    process: one removed before it dies, two ``DOWN``s received, one
    removed with flush after it died (its ``DOWN`` is gone too)."""
    async with otpy.open_node():
        p = otpy.spawn(sleeper, 100)
        m1, m2, m3, m4 = (otpy.monitor(p) for _ in range(4))
        assert otpy.demonitor(m1, flush=True) is True
        otpy.exit(p, "bang")
        await otpy.receive(lambda m: m == Down(m2, p, otpy.TermReason("bang")), timeout=5)
        await trio.sleep(0.125)
        otpy.demonitor(m3, flush=True)  # erl: true; otpy: False, the monitor had fired
        otpy.demonitor(m4)
        await otpy.receive(lambda m: m == Down(m4, p, otpy.TermReason("bang")), timeout=5)
        with pytest.raises(otpy.Timeout):
            msg = await otpy.receive(lambda m: type(m) is Down and m.ref in (m1, m3),
                                     timeout=0.125)
            pytest.fail(f"unexpected down message {msg!r}")


async def test_mon_1(autojump_clock: Clock) -> None:
    """monitor_SUITE:mon_1 — ``DOWN`` reasons (normal, other), monitoring a
    dead process (noproc), and monitoring a registered name. Deliberate
    difference: monitored by a plain name, ``Down.pid`` is that name (erl:
    ``{jeeves, node()}``); by ``(name, node)`` both agree."""
    async with otpy.open_node():
        p2 = otpy.spawn(sleeper, 0.125)
        r2 = otpy.monitor(p2)
        assert await expect_down(r2, p2) in (otpy.Normal(), otpy.NoProc())
        p2a, r2a = otpy.spawn_monitor(sleeper, 0.125)
        assert await expect_down(r2a, p2a) == otpy.Normal()

        p3 = otpy.spawn(sleeper, 100)
        r3 = otpy.monitor(p3)
        otpy.exit(p3, "frop")
        assert await expect_down(r3, p3) == otpy.TermReason("frop")
        p3a, r3a = otpy.spawn_monitor(sleeper, 100)
        otpy.exit(p3a, "frop")
        assert await expect_down(r3a, p3a) == otpy.TermReason("frop")

        r4 = otpy.monitor(p3)
        assert await expect_down(r4, p3) == otpy.NoProc()

        async def jeeves() -> None:
            msg = await otpy.receive()
            if msg != "stop":
                raise otpy.ProcessExit(otpy.as_reason(msg[1]))

        p5 = otpy.spawn(jeeves, name="jeeves")
        r5 = otpy.monitor("jeeves")
        otpy.send(p5, "stop")
        assert await expect_down(r5, "jeeves") == otpy.Normal()

        here = ("jeeves", otpy.node())
        p6 = otpy.spawn(jeeves, name="jeeves")
        r6 = otpy.monitor(here)
        otpy.send(p6, ("exit", "frop"))
        assert await expect_down(r6, here) == otpy.TermReason("frop")

        r7 = otpy.monitor(here)
        assert await expect_down(r7, here) == otpy.NoProc()


async def test_large_exit(autojump_clock: Clock) -> None:
    """monitor_SUITE:large_exit — a large exit reason arrives whole in the
    ``DOWN``, 100 times."""
    async with otpy.open_node():
        s0 = ("big", "tuple", "with", ["list", 4563784278])
        s = (s0, repr(s0).encode() * 100)

        async def large_exit_sub() -> None:
            await otpy.receive()
            raise otpy.ProcessExit(otpy.TermReason(s))

        for _ in range(100):
            p = otpy.spawn(large_exit_sub)
            r = otpy.monitor(p)
            otpy.send(p, "hej")
            assert await expect_down(r, p) == otpy.TermReason(s)


async def test_named_down(autojump_clock: Clock) -> None:
    """monitor_SUITE:named_down — the ``DOWN`` of a monitor set by name comes
    after the name was released: the watcher can register the name at once."""
    async with otpy.open_node():
        name = "monitor_SUITE-named_down"

        async def holder() -> None:
            await otpy.receive()

        pid = otpy.spawn(holder, name=name)
        ref = otpy.monitor(name)
        otpy.exit(pid, "bang")
        assert await expect_down(ref, name) == otpy.TermReason("bang")
        otpy.register(name)
        assert otpy.whereis(name) == otpy.self()
        otpy.unregister(name)


async def test_otp_5827(autojump_clock: Clock) -> None:
    """monitor_SUITE:otp_5827 — monitoring a pid of this node's name but
    another creation (an earlier incarnation) gives ``DOWN noproc`` at once,
    it does not hang."""
    async with otpy.open_node():
        me = otpy.self()
        other = otpy.Pid(me.node, me.id, me.serial, me.creation + 1)
        ref = otpy.monitor(other)
        assert await expect_down(ref, other) == otpy.NoProc()
