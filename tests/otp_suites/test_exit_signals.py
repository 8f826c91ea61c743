"""Exit signals: erts/emulator/test/exception_SUITE.erl's exit cases, and the
link / trap_exit rules its suites rely on, checked on a real erl (OTP 25).

An Erlang error in a process (``badarith``, ``undef``, ``badarg``...)
becomes, in otpy, the Python exception it raises: the exit reason is a
`Crash` holding it, with the traceback in place of Erlang's stacktrace.
Time runs on trio's MockClock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing

import otpy
from otpy import Down, Exit

Clock = trio.testing.MockClock


async def exit_from(pid: otpy.Pid) -> otpy.ExitReason:
    msg = await otpy.receive(lambda m: type(m) is Exit and m.pid == pid, timeout=5)
    return msg.reason  # type: ignore[no-any-return]


async def forever() -> None:
    await otpy.receive(lambda m: m == "never")


def e_badmatch() -> tuple[int, int]:
    a, b = [1]  # {badmatch, ...}
    return a, b


def e_case() -> None:
    match 42:
        case "ok":
            pass
        case _:
            raise LookupError("case_clause 42")


def e_badarith() -> None:
    1 + "b"  # type: ignore[operator]  # noqa: B018


def e_undef() -> None:
    non_existing_module.foo()  # type: ignore[name-defined]  # noqa: F821


def e_badarg() -> None:
    otpy.node(42)  # type: ignore[call-arg]


def e_zero() -> None:
    1 // 0  # noqa: B018


@pytest.mark.parametrize(("bad_guy", "error"), [
    (e_badmatch, ValueError), (e_case, LookupError), (e_badarith, TypeError),
    (e_undef, NameError), (e_badarg, TypeError), (e_zero, ZeroDivisionError),
])
async def test_pending_exit_message(autojump_clock: Clock, bad_guy: Callable[[], None],
                                    error: type[BaseException]) -> None:
    """exception_SUITE:pending_errors (pending_exit_message/2) — an error in
    a process spawned with spawn_link reaches the trapping parent as its
    ``EXIT`` reason, with where it happened (erl: ``{Code, [{exception_SUITE,
    bad_guy, 2, Loc}|_]}``; otpy: ``Crash(exc)`` whose traceback ends in the
    failing function)."""
    async with otpy.open_node():
        otpy.trap_exits(True)

        async def run_bad_guy() -> None:
            bad_guy()

        pid = otpy.spawn_link(run_bad_guy)
        reason = await exit_from(pid)
        assert isinstance(reason, otpy.Crash)
        assert type(reason.exception) is error
        assert reason.exception.__traceback__ is not None
        tb = reason.exception.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        if bad_guy is not e_badarg:  # that one fails inside otpy.node
            assert tb.tb_frame.f_code.co_name == bad_guy.__name__
        assert f"in {bad_guy.__name__}" in reason.traceback
        otpy.trap_exits(False)


async def test_stacktrace_exit_term_through_monitor(autojump_clock: Clock) -> None:
    """exception_SUITE:stacktrace (its first lines) — ``exit({Tag, []})`` in
    a spawn_monitor'ed process arrives unchanged in the ``DOWN``."""
    async with otpy.open_node():
        tag = otpy.Ref.make(otpy.node(), 0)

        async def body() -> None:
            raise otpy.ProcessExit(otpy.TermReason((tag, [])))

        pid, ref = otpy.spawn_monitor(body)
        assert await otpy.receive(timeout=5) == Down(ref, pid, otpy.TermReason((tag, [])))


# ------------------------------------------- link rules, checked on erl


async def test_exit_kill_as_link_reason(autojump_clock: Clock) -> None:
    """A process that exits with reason ``kill`` (not ``exit(Pid, kill)``)
    sends an ordinary exit signal: a trapping linked process gets
    ``{'EXIT', P, kill}`` and a non-trapping one dies with ``kill`` (erl,
    OTP 25: both ``kill``)."""
    async with otpy.open_node():
        otpy.trap_exits(True)

        async def exits_kill() -> None:
            raise otpy.ProcessExit(otpy.Kill())

        pid = otpy.spawn_link(exits_kill)
        assert await exit_from(pid) == otpy.Kill()

        async def middle() -> None:
            otpy.spawn_link(exits_kill)
            await forever()

        mid, ref = otpy.spawn_monitor(middle)
        assert await otpy.receive(timeout=5) == Down(ref, mid, otpy.Kill())


async def test_exit2_kill_is_untrappable(autojump_clock: Clock) -> None:
    """``exit(Pid, kill)`` kills even a trapping process, which exits
    ``killed``; its trapping linked parent gets ``{'EXIT', P, killed}``
    (erl, OTP 25)."""
    async with otpy.open_node():
        otpy.trap_exits(True)

        async def trapping() -> None:
            otpy.trap_exits(True)
            await forever()

        pid = otpy.spawn_link(trapping)
        await trio.testing.wait_all_tasks_blocked()
        otpy.exit(pid, otpy.Kill())
        assert await exit_from(pid) == otpy.Killed()


async def test_link_to_dead_process(autojump_clock: Clock) -> None:
    """Linking to a dead process: a trapping caller gets ``{'EXIT', Pid,
    noproc}``, another one exits ``noproc`` (erl, OTP 25: both)."""
    async with otpy.open_node():
        async def done() -> None:
            return None

        dead, ref = otpy.spawn_monitor(done)
        await otpy.receive(lambda m: type(m) is Down and m.ref == ref)
        otpy.trap_exits(True)
        otpy.link(dead)
        assert await exit_from(dead) == otpy.NoProc()

        async def links_to_dead() -> None:
            otpy.link(dead)
            await forever()

        pid, ref2 = otpy.spawn_monitor(links_to_dead)
        assert await otpy.receive(timeout=5) == Down(ref2, pid, otpy.NoProc())


async def test_unlink_drops_a_queued_exit(autojump_clock: Clock) -> None:
    """unlink/1 after the linked process died, while trapping. Deliberate
    difference: otpy removes the ``Exit`` already queued (documented: after
    ``unlink(pid)`` no signal from pid has any effect); erl leaves it in the
    queue and its docs advise flushing it (OTP 25 printed ``EXIT still
    queued after unlink: normal``)."""
    async with otpy.open_node():
        otpy.trap_exits(True)

        async def done() -> None:
            return None

        pid = otpy.spawn_link(done)
        await trio.testing.wait_all_tasks_blocked()
        otpy.unlink(pid)
        with pytest.raises(otpy.Timeout):
            await otpy.receive(timeout=0)


@pytest.mark.parametrize("reason", [otpy.Normal(), otpy.Shutdown(), "boom"])
async def test_link_signal_to_non_trapping(autojump_clock: Clock, reason: Any) -> None:
    """A linked process's exit kills a non-trapping partner unless the
    reason is ``normal``; ``shutdown`` kills too (erl)."""
    async with otpy.open_node():
        me = otpy.self()

        async def partner() -> None:
            async def dies() -> None:
                await otpy.receive(lambda m: m == "go")
                raise otpy.ProcessExit(otpy.as_reason(reason))

            otpy.send(me, otpy.spawn_link(dies))
            await forever()

        pid, ref = otpy.spawn_monitor(partner)
        otpy.send(await otpy.receive(otpy.Pid, timeout=5), "go")
        if reason == otpy.Normal():
            with pytest.raises(otpy.Timeout):
                await otpy.receive(Down, timeout=1)
            assert otpy.is_alive(pid)
        else:
            assert await otpy.receive(Down, timeout=5) == Down(ref, pid, otpy.as_reason(reason))
