"""OTP's erts/emulator/test/process_SUITE.erl — its exit, link and trap_exit
cases — ported to otpy's public API. Time runs on trio's MockClock.

Erlang's exit reasons are any term; otpy wraps a term that is not an
`ExitReason` in `TermReason` (``exit(Pid, die)`` is ``otpy.exit(pid,
"die")`` and arrives as ``TermReason("die")``), and an error raised in a
process is a `Crash` holding the exception (erl: ``{badarg, Stacktrace}``).

Not ported: process_info* / t_process_info / otp_4725 (no process_info),
priorities, reductions, yield, garbage collection, heap sizes, processes/0
and its traps, suspend_process, system tasks, spawn_request's request-id
and distributed variants, aliases and monitor tags (not in otpy's API),
and spawn_with_binaries / process_flag_badarg (see the report: trap_exits
accepts any value today).
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import trio
import trio.testing

import otpy
from otpy import Down, Exit

Clock = trio.testing.MockClock


def big_term() -> Any:
    """kb_128/0: a large exit reason with binaries and nested lists."""
    b64 = list(range(1, 65))
    b512 = (b"\x01", b64, b"\x02\x03", b64, bytes(range(4, 10)), b64, bytes(range(1, 7)),
            b64, bytes(65), b64, b64, b64, b64, b"*" * 1024)
    eight = [(b512, b512)] * 8
    return (b"*" * 1024, *[eight] * 8, b"*" * 1024, *[eight] * 8, b"*" * 1024)


async def forever() -> None:
    await otpy.receive(lambda m: m == "x")


async def exit_from(pid: otpy.Pid) -> otpy.ExitReason:
    msg = await otpy.receive(lambda m: type(m) is Exit and m.pid == pid, timeout=10)
    return msg.reason  # type: ignore[no-any-return]


async def test_t_exit_1(autojump_clock: Clock) -> None:
    """process_SUITE:t_exit_1 — exit/1 with a big reason reaches the trapping
    linked parent unchanged."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        for _ in range(10):
            async def body() -> None:
                raise otpy.ProcessExit(otpy.TermReason(big_term()))

            pid = otpy.spawn_link(body)
            assert await exit_from(pid) == otpy.TermReason(big_term())


async def test_t_exit_2_other(autojump_clock: Clock) -> None:
    """process_SUITE:t_exit_2_other — exit/2 with a big reason kills a
    non-trapping process, which exits with that reason."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        for _ in range(10):
            pid = otpy.spawn_link(forever)
            otpy.exit(pid, big_term())
            assert await exit_from(pid) == otpy.TermReason(big_term())


async def test_t_exit_2_other_normal(autojump_clock: Clock) -> None:
    """process_SUITE:t_exit_2_other_normal — ``exit(Pid, normal)`` does not
    kill another, non-trapping process."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        pid = otpy.spawn_link(forever)
        otpy.exit(pid, otpy.Normal())
        with pytest.raises(otpy.Timeout):
            await otpy.receive(timeout=1)
        assert otpy.is_alive(pid)
        otpy.exit(pid, otpy.Kill())
        assert await exit_from(pid) == otpy.Killed()


async def test_self_exit(autojump_clock: Clock) -> None:
    """process_SUITE:self_exit — a trapping process can trap the exit signal
    it sends itself with exit/2: ``{'EXIT', self(), Reason}``."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        me = otpy.self()
        for _ in range(50):
            otpy.exit(me, big_term())
            assert await exit_from(me) == otpy.TermReason(big_term())
        otpy.exit(me, otpy.Normal())  # erl: {'EXIT', Self, normal} too
        assert await exit_from(me) == otpy.Normal()


async def test_normal_suicide_exit(autojump_clock: Clock) -> None:
    """process_SUITE:normal_suicide_exit — ``exit(self(), normal)`` in a
    process that does not trap is ``exit(normal)``."""
    async with otpy.open_node():
        otpy.trap_exits(True)

        async def body() -> None:
            otpy.exit(otpy.self(), otpy.Normal())
            await forever()

        pid = otpy.spawn_link(body)
        assert await otpy.receive(timeout=5) == Exit(pid, otpy.Normal())


async def test_abnormal_suicide_exit(autojump_clock: Clock) -> None:
    """process_SUITE:abnormal_suicide_exit — ``exit(self(), Term)`` in a
    process that does not trap is ``exit(Term)``."""
    async with otpy.open_node():
        otpy.trap_exits(True)

        async def body() -> None:
            otpy.exit(otpy.self(), big_term())
            await forever()

        pid = otpy.spawn_link(body)
        assert await otpy.receive(timeout=5) == Exit(pid, otpy.TermReason(big_term()))


@pytest.mark.parametrize("waits", [False, True])
async def test_t_exit_2_catch(autojump_clock: Clock, waits: bool) -> None:
    """process_SUITE:t_exit_2_catch — ``catch exit(self(), die)`` cannot catch
    the signal: the process exits ``die``, not ``normal``; whether it
    returns at once or waits after the catch (`except Exception` does not
    see the cancellation the signal causes)."""
    async with otpy.open_node():
        otpy.trap_exits(True)

        async def body() -> None:
            try:
                otpy.exit(otpy.self(), "die")
                if waits:
                    await forever()
            except Exception:  # the point: there is nothing to catch
                pass

        pid = otpy.spawn_link(body)
        assert await otpy.receive(timeout=5) == Exit(pid, otpy.TermReason("die"))


async def test_trap_exit_badarg(autojump_clock: Clock) -> None:
    """process_SUITE:trap_exit_badarg — an error in a linked process reaches
    the trapping parent with the error and where it happened (erl:
    ``{badarg, [{erlang,abs,[Garbage],_}, {process_SUITE,bad_guy,1,_}|_]}``;
    otpy: a `Crash` with the exception and its traceback)."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        for _ in range(10):
            async def bad_guy(arg: Any) -> None:
                abs(arg)

            pid = otpy.spawn_link(bad_guy, big_term())
            reason = await exit_from(pid)
            assert isinstance(reason, otpy.Crash)
            assert isinstance(reason.exception, TypeError)
            assert "bad_guy" in reason.traceback and "abs(arg)" in reason.traceback


async def test_trap_exit_badarg_in_bif(autojump_clock: Clock) -> None:
    """process_SUITE:trap_exit_badarg_in_bif — spawning with bad arguments
    (``spawn_link(erlang, node, [1])``) gives an ``EXIT`` with the error."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        for _ in range(10):
            pid = otpy.spawn_link(forever, 1)
            reason = await exit_from(pid)
            assert isinstance(reason, otpy.Crash)
            assert isinstance(reason.exception, TypeError)


async def test_exit_and_timeout(autojump_clock: Clock) -> None:
    """process_SUITE:exit_and_timeout — an exit signal that reaches a process
    waiting in ``receive ... after`` kills it with that reason, not a
    timeout."""
    async with otpy.open_node():
        otpy.trap_exits(True)

        async def eat_low() -> None:
            for timeout in (2.5, 1):
                with contextlib.suppress(otpy.Timeout):
                    await otpy.receive(timeout=timeout)

        low = otpy.spawn_link(eat_low)

        async def eat_high() -> None:
            await trio.sleep(1)
            otpy.exit(low, ("you", "are", "dead"))
            await trio.sleep(5)

        high = otpy.spawn_link(eat_high)
        assert await exit_from(low) == otpy.TermReason(("you", "are", "dead"))
        assert await exit_from(high) == otpy.Normal()


async def test_exit_twice(autojump_clock: Clock) -> None:
    """process_SUITE:exit_twice — of two exit signals, the first decides the
    reason; the second is ignored."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        low = otpy.spawn_link(forever)

        async def etwice_high() -> None:
            otpy.exit(low, "first")
            otpy.exit(low, "second")

        high = otpy.spawn_link(etwice_high)
        assert await exit_from(low) == otpy.TermReason("first")
        assert await exit_from(high) == otpy.Normal()


async def test_bad_register(autojump_clock: Clock) -> None:
    """process_SUITE:bad_register — a name that is not a name (erl: a tuple,
    ``undefined``, a list) or a dead process cannot be registered, and
    sending to the unregistered name fails. Deliberate difference:
    ``"undefined"`` is an ordinary name (otpy's whereis answers None, so
    no name is reserved); erl refuses it (badarg, checked on OTP 25). Not
    ported: registering a ref / [] / a tuple / a binary as the *process*
    (see the report: otpy raises AttributeError there today)."""
    async with otpy.open_node():
        name = "a_long_and_unused_name"
        for bad_name in (("bad", "name"), ["bad", "name"], 42):
            with pytest.raises(TypeError):
                otpy.register(bad_name)
        otpy.register("undefined")
        assert otpy.whereis("undefined") == otpy.self()
        otpy.unregister("undefined")

        async def done() -> None:
            return None

        dead, ref = otpy.spawn_monitor(done)
        await otpy.receive(lambda m: type(m) is Down and m.ref == ref)
        with pytest.raises(ValueError):
            otpy.register(name, dead)
        with pytest.raises(otpy.NotRegisteredError):
            otpy.send(name, "anything_goes")


# ------------------------------------------------ spawn_request: link/monitor


async def test_spawn_request_monitor_child_exit(autojump_clock: Clock) -> None:
    """process_SUITE:spawn_request_monitor_child_exit — a monitored child that
    fails at once (erl: ``undef``) gives a ``DOWN`` with the error."""
    async with otpy.open_node():
        async def nonexisting_function() -> None:
            nonexisting_module.foo()  # type: ignore[name-defined]  # noqa: F821

        pid, ref = otpy.spawn_monitor(nonexisting_function)
        down = await otpy.receive(Down, timeout=5)
        assert (down.ref, down.pid) == (ref, pid)
        assert isinstance(down.reason, otpy.Crash)
        assert isinstance(down.reason.exception, NameError)


async def test_spawn_request_link_child_exit(autojump_clock: Clock) -> None:
    """process_SUITE:spawn_request_link_child_exit — the same for a linked
    child: an ``EXIT`` with the error."""
    async with otpy.open_node():
        otpy.trap_exits(True)

        async def nonexisting_function() -> None:
            nonexisting_module.foo()  # type: ignore[name-defined]  # noqa: F821

        pid = otpy.spawn_link(nonexisting_function)
        reason = await exit_from(pid)
        assert isinstance(reason, otpy.Crash)
        assert isinstance(reason.exception, NameError)


@pytest.mark.parametrize("reason", ["kaboom", ("compound", "kaboom")])
async def test_spawn_request_link_parent_exit(autojump_clock: Clock, reason: Any) -> None:
    """process_SUITE:spawn_request_link_parent_exit and
    ..._compound_reason — a parent that exits right after spawning a linked
    child takes the child down with its reason, and no child survives the
    race (200 parents here, 10000 in the suite)."""
    async with otpy.open_node():
        me = otpy.self()

        async def child() -> None:
            otpy.send(me, ("child", otpy.self()))
            await forever()

        async def parent(wait: float) -> None:
            otpy.spawn_link(child)
            await trio.sleep(wait)
            raise otpy.ProcessExit(otpy.as_reason(reason))

        for n in range(200):
            otpy.spawn(parent, (n % 10) / 8)
        children = [(await otpy.receive(lambda m: type(m) is tuple and m[0] == "child"))[1]
                    for _ in range(200)]
        await trio.sleep(2)
        assert not [c for c in children if otpy.is_alive(c)]

        async def waiting_parent() -> None:
            otpy.spawn_link(child)
            await otpy.receive(lambda m: m == "go")
            raise otpy.ProcessExit(otpy.as_reason(reason))

        parent_pid = otpy.spawn(waiting_parent)
        _, child_pid = await otpy.receive(lambda m: type(m) is tuple and m[0] == "child")
        ref = otpy.monitor(child_pid)
        otpy.send(parent_pid, "go")
        down = await otpy.receive(lambda m: type(m) is Down and m.ref == ref, timeout=5)
        assert down.reason == otpy.as_reason(reason)
