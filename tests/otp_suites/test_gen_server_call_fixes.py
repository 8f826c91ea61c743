"""gen_server_SUITE cases fixed by the rework of `otpy.call` (issue 17, items 3
and 5; the rework is issue 10's waiting per task). They assert Erlang's
behaviour (checked on erl, OTP 25) and failed before it:

- item 3: after ``call(server, "stop")`` where the server replies and stops,
  the call's own monitor must leave no `Down` in the caller's mailbox (erl:
  the mailbox is empty; a linked, trapping caller gets only the ``EXIT``);
- item 5: a call to the calling process itself fails at once (erl:
  ``exit({calling_self, {gen_server, call, [Self, oops]}})``) instead of
  waiting for its timeout, or forever with ``timeout=None``.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from _gen_server import Server

import otpy
from otpy import Down, Exit

# The OTP cases in this file (issue 17 items 3 and 5):
CASES = ["gen_server_SUITE:start", "gen_server_SUITE:calling_self"]

Clock = trio.testing.MockClock


async def gone(pid: otpy.Pid) -> None:
    """busy_wait_for_process/2 (its monitor is flushed: it is ours, not the
    call's)."""
    ref = otpy.monitor(pid)
    await otpy.receive(lambda m: type(m) is Down and m.ref == ref)


async def stopped_exit(pid: otpy.Pid) -> None:
    """``receive {'EXIT', Pid, stopped} -> ok after 5000 -> fail``."""
    msg = await otpy.receive(lambda m: type(m) is Exit and m.pid == pid, timeout=5)
    assert msg.reason == otpy.TermReason("stopped")


async def test_start(autojump_clock: Clock) -> None:
    """gen_server_SUITE:start — anonymous, with an init timeout, ignore,
    stop, linked, and registered locally / globally / via a registry
    (``already_started`` for a second start); after each ``call(_, stop)``
    the server is gone (noproc). At the end the mailbox must be empty: erl
    leaves nothing there (the linked starts' ``EXIT``s were received), while
    otpy today leaves the `Down` of each stopping call's own monitor (item
    3). The start_monitor variants have no otpy equivalent."""
    async with otpy.open_node():
        otpy.trap_exits(True)
        await otpy.Registry.start_link("dummy_via")
        # anonymous
        pid0 = await Server.start()
        assert await otpy.call(pid0, "started_p") == "ok"
        assert await otpy.call(pid0, "stop") == "ok"
        await gone(pid0)
        with pytest.raises(otpy.CallError) as info:
            await otpy.call(pid0, "started_p", 0.125)
        assert info.value.reason == otpy.NoProc()

        # anonymous with timeout
        pid00 = await Server.start(timeout=1)
        assert await otpy.call(pid00, "started_p") == "ok"
        assert await otpy.call(pid00, "stop") == "ok"
        with pytest.raises(otpy.StartError) as start_info:
            await Server.start("sleep", timeout=0.125)
        assert start_info.value.reason == otpy.Timeout()

        # anonymous with ignore, with stop
        with pytest.raises(otpy.Ignored):
            await Server.start("ignore")
        with pytest.raises(otpy.StartError) as start_info:
            await Server.start("stop")
        assert start_info.value.reason == otpy.TermReason("stopped")

        # anonymous linked
        pid1 = await Server.start_link()
        assert await otpy.call(pid1, "started_p") == "ok"
        assert await otpy.call(pid1, "stop") == "ok"
        await stopped_exit(pid1)

        for name in ("my_test_name", otpy.Global("my_test_name"),
                     otpy.Via("dummy_via", "my_test_name")):
            # registered
            pid2 = await Server.start(name=name)
            assert await otpy.call(name, "started_p") == "ok"
            with pytest.raises(otpy.StartError) as start_info:
                await Server.start(name=name)
            assert start_info.value.reason == otpy.TermReason(("already_started", pid2))
            assert await otpy.call(name, "stop") == "ok"
            await gone(pid2)
            with pytest.raises(otpy.CallError) as info:
                await otpy.call(pid2, "started_p", 0.125)
            assert info.value.reason == otpy.NoProc()

            # registered and linked
            pid3 = await Server.start_link(name=name)
            assert await otpy.call(name, "started_p") == "ok"
            with pytest.raises(otpy.StartError) as start_info:
                await Server.start(name=name)
            assert start_info.value.reason == otpy.TermReason(("already_started", pid3))
            assert await otpy.call(name, "stop") == "ok"
            await stopped_exit(pid3)

        with pytest.raises(otpy.Timeout):
            msg = await otpy.receive(timeout=0.125)
            pytest.fail(f"unexpected message {msg!r}")


async def test_calling_self(autojump_clock: Clock) -> None:
    """gen_server_SUITE:calling_self — a call to oneself fails at once with
    ``calling_self``, with a timeout and with none (erl: ``{'EXIT',
    {calling_self, _}}`` for both); otpy raises ``CallError(CallingSelf())``.
    Before item 5 it waited for the timeout, or forever: ``fail_after`` would
    turn that into a failure."""
    async with otpy.open_node():
        for timeout in (5.0, None):
            t0 = trio.current_time()
            with trio.fail_after(60), pytest.raises(otpy.CallError) as info:
                await otpy.call(otpy.self(), "oops", timeout)
            assert trio.current_time() == t0
            assert info.value.reason == otpy.CallingSelf()
