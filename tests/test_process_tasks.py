"""Many trio tasks in one process: nurseries inside processes are first-class.

Every otpy function works from any task of the calling process; concurrent
calls each get their own reply; concurrent receives are served in the order
they began waiting, each with the oldest message matching its own match;
timeouts and cancellation are per task; an exit signal ends every task.
"""

from __future__ import annotations

import contextvars
from typing import Any

import pytest
import trio
import trio.testing

import otpy
from otpy import Down
from otpy._process import current


class Echo(otpy.GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        return request


class Deferred(otpy.GenServer):
    """Keeps calls unanswered until told to answer them, in a given order."""

    async def init(self) -> None:
        self.waiting: dict[Any, Any] = {}

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request == "release":
            for key in sorted(self.waiting, reverse=True):  # answer in reverse order
                otpy.reply(self.waiting.pop(key), ("answer", key))
            return "released"
        if request == "stop":
            raise otpy.Stop(otpy.Normal(), reply="stopping")
        self.waiting[request] = caller
        return otpy.NoReply


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked()


def test_the_issue_program_runs() -> None:
    """The program of the issue: a helper task calls, then the body calls."""
    seen: list[Any] = []

    async def worker() -> None:
        async def helper() -> None:
            seen.append(await otpy.call("echo", 1))

        async with trio.open_nursery() as n:
            n.start_soon(helper)
        seen.append(await otpy.call("echo", 2))

    async def main() -> otpy.ExitReason:
        await Echo.start_link(name="echo")
        _, ref = otpy.spawn_monitor(worker)
        down = await otpy.receive(lambda m: isinstance(m, Down) and m.ref == ref, timeout=5)
        return down.reason  # type: ignore[no-any-return]

    assert otpy.run(main) == otpy.Normal()
    assert seen == [1, 2]


async def test_concurrent_calls_each_get_their_own_reply() -> None:
    async with otpy.open_node():
        await Echo.start_link(name="echo")
        got: dict[int, Any] = {}

        async def one(i: int) -> None:
            got[i] = await otpy.call("echo", i)

        async with trio.open_nursery() as n:
            for i in range(50):
                n.start_soon(one, i)
        assert got == {i: i for i in range(50)}
        assert not current().aliases
        assert not current().mailbox


async def test_deferred_replies_reach_callers_in_different_tasks() -> None:
    async with otpy.open_node():
        srv = await Deferred.start_link()
        got: dict[int, Any] = {}

        async def one(i: int) -> None:
            got[i] = await otpy.call(srv, i, timeout=None)

        async with trio.open_nursery() as n:
            for i in range(5):
                n.start_soon(one, i)
            await settle()
            assert got == {}
            assert await otpy.call(srv, "release") == "released"
        assert got == {i: ("answer", i) for i in range(5)}


async def test_concurrent_receives_are_served_in_order_with_their_own_match() -> None:
    async with otpy.open_node():
        me = otpy.self()
        got: list[tuple[str, Any]] = []

        async def take(who: str, match: Any) -> None:
            got.append((who, await otpy.receive(match)))

        async with trio.open_nursery() as n:
            n.start_soon(take, "evens-1", lambda m: m % 2 == 0)
            await settle()
            n.start_soon(take, "any", None)
            await settle()
            n.start_soon(take, "evens-2", lambda m: m % 2 == 0)
            await settle()
            n.start_soon(take, "big", lambda m: m > 100)
            await settle()
            otpy.send(me, 2)    # evens-1 began waiting first
            otpy.send(me, 3)    # only "any" matches
            otpy.send(me, 4)    # evens-2
            otpy.send(me, 5)    # nobody waits for an odd small number: queued
            otpy.send(me, 7)
            otpy.send(me, 101)  # "big"
        # (woken tasks run in any order: compare who got what)
        assert dict(got) == {"evens-1": 2, "any": 3, "evens-2": 4, "big": 101}
        assert list(current().mailbox or ()) == [5, 7]
        # A new receive takes the oldest queued match at once.
        assert await otpy.receive(lambda m: m == 7, timeout=0) == 7
        assert await otpy.receive(timeout=0) == 5


async def test_timeouts_are_per_task() -> None:
    async with otpy.open_node():
        me = otpy.self()
        outcome: dict[str, Any] = {}

        async def take(who: str, timeout: float) -> None:
            try:
                outcome[who] = await otpy.receive(lambda m: m == who, timeout=timeout)
            except otpy.Timeout:
                outcome[who] = "timeout"

        async with trio.open_nursery() as n:
            n.start_soon(take, "short", 0.05)
            n.start_soon(take, "long", 5)
            await trio.sleep(0.2)
            otpy.send(me, "long")
            otpy.send(me, "short")  # too late: stays queued
        assert outcome == {"short": "timeout", "long": "long"}
        assert list(current().mailbox or ()) == ["short"]


async def test_a_cancelled_call_leaves_nothing_behind() -> None:
    async with otpy.open_node():
        srv = await Deferred.start_link()
        me = current()
        with trio.move_on_after(0.05) as scope:
            await otpy.call(srv, "a", timeout=None)
        assert scope.cancelled_caught
        assert not me.aliases
        assert not me.waiters
        server = me.node.local(srv)
        assert server is not None and not server.monitored_by
        # The late reply is dropped, never queued.
        assert await otpy.call(srv, "release") == "released"
        await settle()
        assert not me.mailbox


async def test_a_call_timing_out_in_one_task_leaves_others_waiting() -> None:
    async with otpy.open_node():
        srv = await Deferred.start_link()
        got: dict[str, Any] = {}

        async def one(key: str, timeout: float | None) -> None:
            try:
                got[key] = await otpy.call(srv, key, timeout=timeout)
            except otpy.CallError as err:
                got[key] = err.reason

        async with trio.open_nursery() as n:
            n.start_soon(one, "quick", 0.05)
            n.start_soon(one, "patient", None)
            await trio.sleep(0.2)
            await otpy.call(srv, "release")
        assert got == {"quick": otpy.Timeout(), "patient": ("answer", "patient")}
        assert not current().mailbox


async def test_a_cancelled_receive_leaves_messages_for_the_others() -> None:
    async with otpy.open_node():
        me = otpy.self()
        got: list[Any] = []

        async def take() -> None:
            got.append(await otpy.receive())

        async with trio.open_nursery() as n:
            with trio.CancelScope() as first:
                n.start_soon(trio.lowlevel.checkpoint)
            cancel_me = trio.CancelScope()

            async def cancelled() -> None:
                with cancel_me:
                    await otpy.receive()
                got.append("cancelled")

            n.start_soon(cancelled)
            await settle()
            n.start_soon(take)
            await settle()
            cancel_me.cancel()
            await settle()
            otpy.send(me, "m")
        del first
        assert got == ["cancelled", "m"]


async def test_call_reply_then_stop_leaves_no_down_in_the_mailbox() -> None:
    """gen_server_SUITE:start — a call whose server replies and stops leaves
    the caller's mailbox empty (the call's own monitor is flushed)."""
    async with otpy.open_node():
        srv = await Deferred.start()
        ref = otpy.monitor(srv)
        assert await otpy.call(srv, "stop") == "stopping"
        down = await otpy.receive(Down, timeout=5)
        assert down.ref == ref  # our own monitor, and only it
        await settle()
        assert not current().mailbox


async def test_calling_self_fails_at_once() -> None:
    """gen_server_SUITE:calling_self — erl exits with calling_self at once."""

    class Selfish(otpy.GenServer):
        async def handle_call(self, request: Any, caller: Any) -> Any:
            try:
                await otpy.call(self.pid, "again", timeout=None)
            except otpy.CallError as err:
                return err.reason
            return "answered"  # pragma: no cover - it would hang

    async with otpy.open_node():
        pid = await Selfish.start_link(name="selfish")
        assert await otpy.call("selfish", "go") == otpy.CallingSelf()
        with pytest.raises(otpy.CallError) as info:
            await otpy.call(otpy.self(), "x", timeout=None)
        assert info.value.reason == otpy.CallingSelf()
        assert otpy.is_alive(pid)


def test_a_helper_task_crash_is_the_process_crash() -> None:
    async def body() -> None:
        async def helper() -> None:
            raise ValueError("boom")

        async with trio.open_nursery() as n:
            n.start_soon(helper)
            await trio.sleep_forever()

    async def main() -> otpy.ExitReason:
        _, _ref = otpy.spawn_monitor(body)
        return (await otpy.receive(Down, timeout=5)).reason  # type: ignore[no-any-return]

    reason = otpy.run(main)
    assert isinstance(reason, otpy.Crash)
    assert type(reason.exception) is ValueError
    assert str(reason.exception) == "boom"


def test_a_helper_task_exit_is_the_process_exit() -> None:
    """A helper linking to a dead pid exits its (non-trapping) process with noproc."""

    async def body(dead: otpy.Pid) -> None:
        async def helper() -> None:
            otpy.link(dead)

        async with trio.open_nursery() as n:
            n.start_soon(helper)
            await trio.sleep_forever()

    async def main() -> otpy.ExitReason:
        dead, _ = otpy.spawn_monitor(trio.lowlevel.checkpoint)
        await otpy.receive(Down, timeout=5)
        _, _ref = otpy.spawn_monitor(body, dead)
        return (await otpy.receive(Down, timeout=5)).reason  # type: ignore[no-any-return]

    assert otpy.run(main) == otpy.NoProc()


async def test_killing_a_process_ends_all_its_tasks_and_it_exits_once() -> None:
    async with otpy.open_node():
        ended: list[str] = []
        ready = trio.Event()

        async def body() -> None:
            async def helper(i: int) -> None:
                try:
                    if i % 2:
                        await otpy.receive()
                    else:
                        await otpy.call("nobody-answers", i, timeout=None)
                finally:
                    ended.append(f"helper{i}")

            async with trio.open_nursery() as n:
                for i in range(4):
                    n.start_soon(helper, i)
                ready.set()
                await trio.sleep_forever()

        class Mute(otpy.GenServer):
            async def handle_call(self, request: Any, caller: Any) -> Any:
                return otpy.NoReply

        await Mute.start_link(name="nobody-answers")
        pid, _ref = otpy.spawn_monitor(body)
        await ready.wait()
        await settle()
        otpy.exit(pid, otpy.Shutdown("bye"))
        down = await otpy.receive(Down, timeout=5)
        assert down.reason == otpy.Shutdown("bye")
        assert sorted(ended) == ["helper0", "helper1", "helper2", "helper3"]
        await settle()
        assert not current().mailbox  # one Down, no second exit


async def test_a_raising_predicate_fails_its_own_waiter_only() -> None:
    async with otpy.open_node():
        me = otpy.self()
        got: dict[str, Any] = {}

        def picky(m: Any) -> bool:
            raise KeyError(m)

        async def bad() -> None:
            try:
                await otpy.receive(picky)
            except KeyError as err:
                got["bad"] = err.args[0]

        async def good() -> None:
            got["good"] = await otpy.receive()

        async with trio.open_nursery() as n:
            n.start_soon(bad)
            await settle()
            n.start_soon(good)
            await settle()
            otpy.send(me, "hello")
        assert got == {"bad": "hello", "good": "hello"}


async def test_a_predicate_runs_in_its_waiting_task() -> None:
    """A predicate runs at delivery, in the sender's turn, but sees its own
    task's context: otpy.self() and context variables."""
    who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")
    async with otpy.open_node():
        me = otpy.self()
        seen: list[Any] = []

        def pred(m: Any) -> bool:
            seen.append((otpy.self(), who.get()))
            return True

        async def take() -> None:
            who.set("taker")
            await otpy.receive(pred)

        async def sender() -> None:
            otpy.send(me, "x")

        async with trio.open_nursery() as n:
            n.start_soon(take)
            await settle()
            otpy.spawn(sender)
        assert seen == [(me, "taker")]


async def test_a_task_that_outlives_its_process_gets_a_clear_error() -> None:
    async with otpy.open_node():
        errors: list[str] = []
        outer = trio.open_nursery()
        async with outer as nursery:
            async def escaped() -> None:
                await trio.sleep(0.1)
                try:
                    otpy.self()
                    current()
                except RuntimeError as err:
                    errors.append(str(err))

            async def body() -> None:
                nursery.start_soon(escaped)

            _, _ref = otpy.spawn_monitor(body)
            await otpy.receive(Down, timeout=5)
        assert len(errors) == 1 and "outlived" in errors[0]


async def test_nurseries_inside_genserver_callbacks() -> None:
    class Fanout(otpy.GenServer):
        async def handle_call(self, request: Any, caller: Any) -> Any:
            results: dict[int, Any] = {}

            async def ask(i: int) -> None:
                results[i] = await otpy.call("echo", i)

            async with trio.open_nursery() as n:
                for i in range(request):
                    n.start_soon(ask, i)
            return [results[i] for i in range(request)]

    async with otpy.open_node():
        await Echo.start_link(name="echo")
        fan = await Fanout.start_link()
        assert await otpy.call(fan, 10) == list(range(10))


async def test_tasks_of_the_open_node_body() -> None:
    """The body of open_node is a process too: its nursery tasks call and receive."""
    async with otpy.open_node():
        await Echo.start_link(name="echo")
        me = otpy.self()
        got: list[Any] = []

        async def receiver() -> None:
            got.append(await otpy.receive(lambda m: m == "ping"))

        async def caller() -> None:
            got.append(await otpy.call("echo", "pong"))
            otpy.send(me, "ping")

        async with trio.open_nursery() as n:
            n.start_soon(receiver)
            n.start_soon(caller)
        assert sorted(got) == ["ping", "pong"]


async def test_task_await_from_a_helper_task() -> None:
    async with otpy.open_node():
        got: list[Any] = []

        async def compute(x: int) -> int:
            await trio.sleep(0.01)
            return x * 2

        async def helper(x: int) -> None:
            t = otpy.Task.async_(compute, x)
            got.append(await otpy.Task.await_(t))

        async with trio.open_nursery() as n:
            for x in range(5):
                n.start_soon(helper, x)
        assert sorted(got) == [0, 2, 4, 6, 8]


async def test_a_call_does_not_scan_the_mailbox() -> None:
    """gen_server_SUITE:call_with_huge_message_queue: a call's reply is routed to
    its task, so the time a call takes does not grow with the caller's mailbox.
    Checked without timing: nothing queued is even looked at."""
    looked_at = 0

    class Spy:
        def __eq__(self, other: object) -> bool:
            nonlocal looked_at
            looked_at += 1
            return False

        __hash__ = object.__hash__

    async with otpy.open_node():
        await Echo.start_link(name="echo")
        me = otpy.self()
        for i in range(1000):
            otpy.send(me, (Spy(), i))
        for i in range(10):
            assert await otpy.call("echo", i) == i
        assert looked_at == 0
        assert len(current().mailbox or ()) == 1000
