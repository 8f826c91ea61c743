"""Model-based test: one process runs a changing set of trio tasks.

Hypothesis drives a `RuleBasedStateMachine` against a live node. The node
runs in one `otpy.run` (on a `MockClock`) for the whole example, in a second
OS thread — the thread only bridges hypothesis's synchronous rules to the
trio run (`trio.from_thread.run`); everything otpy does happens in trio. The
subject process P keeps a nursery; rules start tasks in it that receive with
different matches, call (answered at once or deferred), cast and send, and
cancel them, let time pass, kill P. A reference model predicts who gets each
message, what each call returns, and P's mailbox; after every rule (once all
tasks are blocked) the live node must agree exactly:

- every receive gets the oldest message matching its own match, waiters
  served in the order they began waiting, or times out / is cancelled;
- every call returns its own reply or a typed error, and a late reply is
  never queued;
- P's mailbox holds exactly the messages nobody took, in send order (nothing
  lost, nothing duplicated, no stale reply or `Down`);
- no alias or monitor of a finished call is left, no task of a dead process
  is left running, no trio internal error.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

import otpy
from otpy._process import Process

TAGS = ("a", "b", "c")
Cmd = Callable[[], Awaitable[Any]]


class Echo(otpy.GenServer):
    async def init(self) -> None:
        self.casts: list[Any] = []

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request == "casts":
            return list(self.casts)
        return ("echo", request)

    async def handle_cast(self, request: Any) -> None:
        self.casts.append(request)


class Deferred(otpy.GenServer):
    async def init(self) -> None:
        self.held: list[tuple[Any, Any]] = []

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request == "release":
            held, self.held = self.held, []
            for key, who in reversed(held):
                otpy.reply(who, ("late", key))
            return len(held)
        self.held.append((request, caller))
        return otpy.NoReply


class Timed(otpy.GenServer):
    """Answers each call ``(key, delay)`` after ``delay`` virtual seconds, from a
    helper process whose wait shares the otpy timer buckets with the caller's."""

    async def handle_call(self, request: Any, caller: Any) -> Any:
        key, delay = request
        otpy.spawn(_answer_later, caller, key, delay)
        return otpy.NoReply


async def _answer_later(caller: Any, key: Any, delay: float) -> None:
    try:
        await otpy.receive(lambda m: False, timeout=delay)
    except otpy.Timeout:
        otpy.reply(caller, ("timed", key))


@attrs.define
class Job:
    """A task of P as the model sees it."""

    tid: int
    kind: str  # "receive" | "call"
    match: frozenset[str] | None = None  # receive: tags matched (None: any)
    deferred: bool = False  # call: to the deferred server (answered on release)
    deadline: float | None = None
    due: float | None = None  # a timed call: when its reply is sent
    expected: Any = None  # what the model predicts, once decided
    done: bool = False


class World:
    """The live side: a node in a thread, P with its nursery, a driver process."""

    def __init__(self) -> None:
        self.clock = trio.testing.MockClock()
        self.token: trio.lowlevel.TrioToken | None = None
        self.ready = threading.Event()
        self.results: dict[int, Any] = {}
        self.live: set[int] = set()
        self.scopes: dict[int, trio.CancelScope] = {}
        self.p_proc: Process | None = None
        self.p_pid: otpy.Pid | None = None
        self.p_exit: otpy.ExitReason | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)
        assert self.token is not None, "the node did not start"

    def _run(self) -> None:
        try:
            otpy.run(self._main, clock=self.clock)
        except BaseException as exc:  # reported by the machine's teardown
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        self.echo = await Echo.start_link(name="echo")
        self.deferred = await Deferred.start_link(name="deferred")
        await Timed.start_link(name="timed")
        self.to_p_send, self.to_p = trio.open_memory_channel[Cmd](0)
        self.to_driver_send, self.to_driver = trio.open_memory_channel[Cmd](0)
        self.stop = trio.Event()
        otpy.spawn(self._driver)
        self.start_p()
        await trio.testing.wait_all_tasks_blocked()
        self.token = trio.lowlevel.current_trio_token()
        self.ready.set()
        await self.stop.wait()

    def start_p(self) -> None:
        self.p_pid, self.p_ref = otpy.spawn_monitor(self._p_body)
        self.p_exit = None

    async def _p_body(self) -> None:
        from otpy._process import current

        self.p_proc = current()
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            async for cmd in self.to_p:
                await cmd()

    async def _driver(self) -> None:
        async for cmd in self.to_driver:
            await cmd()

    def step(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        async def run() -> Any:
            value = await fn()
            await trio.testing.wait_all_tasks_blocked()
            return value

        return trio.from_thread.run(run, trio_token=self.token)

    def in_p(self, fn: Cmd) -> None:
        async def send() -> None:
            await self.to_p_send.send(fn)

        self.step(send)

    def in_driver(self, fn: Cmd) -> None:
        async def send() -> None:
            await self.to_driver_send.send(fn)

        self.step(send)

    def start_task(self, tid: int, body: Cmd) -> None:
        async def task() -> None:
            scope = self.scopes[tid] = trio.CancelScope()
            self.live.add(tid)
            try:
                with scope:
                    self.results[tid] = ("ok", await body())
                    return
                self.results[tid] = ("cancelled",)
            except otpy.Timeout:
                self.results[tid] = ("timeout",)
            except otpy.CallError as err:
                self.results[tid] = ("call-error", err.reason)
            finally:
                self.live.discard(tid)

        async def start() -> None:
            self.nursery.start_soon(task)

        self.in_p(start)

    def close(self) -> None:
        if self.token is not None and self.thread.is_alive():
            async def stop() -> None:
                self.stop.set()

            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run(stop, trio_token=self.token)
        self.thread.join(10)


class TasksInOneProcess(RuleBasedStateMachine):
    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.world: World | None = None
        self.now = 0.0
        self.seq = 0
        self.tid = 0
        self.mailbox: list[tuple[str, int]] = []  # the model's mailbox of P
        self.waiting: list[Job] = []  # receive jobs parked, in the order they parked
        self.calls: dict[int, Job] = {}  # call jobs not finished
        self.finished: list[Job] = []
        self.casts: list[int] = []

    @initialize()
    def start(self) -> None:
        self.world = World()

    def teardown(self) -> None:
        if self.world is not None:
            self.world.close()
            assert self.world.error is None, repr(self.world.error)

    # ------------------------------------------------------------ helpers

    @property
    def w(self) -> World:
        assert self.world is not None
        return self.world

    def new_job(self, **kw: Any) -> Job:
        self.tid += 1
        return Job(self.tid, **kw)

    def finish(self, job: Job, expected: Any) -> None:
        job.expected = expected
        job.done = True
        self.finished.append(job)

    @staticmethod
    def matches(job: Job, message: tuple[str, int]) -> bool:
        return job.match is None or message[0] in job.match

    # -------------------------------------------------------------- rules

    @rule(target=jobs, match=st.none() | st.frozensets(st.sampled_from(TAGS), min_size=1),
          timeout=st.none() | st.sampled_from([0.0, 1.0, 2.0, 3.0]))
    def start_receive(self, match: frozenset[str] | None, timeout: float | None) -> Job:
        job = self.new_job(kind="receive", match=match)
        pred = None if match is None else (lambda m, tags=match: m[0] in tags)
        self.w.start_task(job.tid, lambda: otpy.receive(pred, timeout=timeout))
        for i, message in enumerate(self.mailbox):
            if self.matches(job, message):
                del self.mailbox[i]
                self.finish(job, ("ok", message))
                return job
        if timeout == 0.0:
            self.finish(job, ("timeout",))
            return job
        job.deadline = None if timeout is None else self.now + timeout
        self.waiting.append(job)
        return job

    def deliver(self, message: tuple[str, int]) -> None:
        for i, job in enumerate(self.waiting):
            if self.matches(job, message):
                del self.waiting[i]
                self.finish(job, ("ok", message))
                return
        self.mailbox.append(message)

    @rule(tag=st.sampled_from(TAGS), from_p=st.booleans())
    def send(self, tag: str, from_p: bool) -> None:
        self.seq += 1
        message = (tag, self.seq)
        pid = self.w.p_pid

        async def send() -> None:
            otpy.send(pid, message)

        (self.w.in_p if from_p else self.w.in_driver)(send)
        self.deliver(message)

    @rule(target=jobs, deferred=st.booleans(),
          timeout=st.none() | st.sampled_from([1.0, 2.0]))
    def start_call(self, deferred: bool, timeout: float | None) -> Job:
        job = self.new_job(kind="call", deferred=deferred)
        server = "deferred" if deferred else "echo"
        key = job.tid
        self.w.start_task(job.tid, lambda: otpy.call(server, key, timeout=timeout))
        if not deferred:
            self.finish(job, ("ok", ("echo", key)))
        else:
            job.deadline = None if timeout is None else self.now + timeout
            self.calls[job.tid] = job
        return job

    @rule(target=jobs, delay=st.sampled_from([1.0, 2.0]),
          timeout=st.none() | st.sampled_from([1.0, 2.0]))
    def start_timed_call(self, delay: float, timeout: float | None) -> Job:
        """A call answered ``delay`` s later by a helper process whose wait shares
        the otpy timer buckets with the caller's: a reply due at the very moment
        the call times out loses (the call's timer was armed first) and is
        dropped, never queued."""
        job = self.new_job(kind="call")
        key = job.tid
        self.w.start_task(job.tid, lambda: otpy.call("timed", (key, delay), timeout=timeout))
        job.due = self.now + delay
        job.deadline = None if timeout is None else self.now + timeout
        self.calls[job.tid] = job
        return job

    @rule()
    def release(self) -> None:
        async def release() -> None:
            await otpy.call("deferred", "release")

        self.w.in_driver(release)
        for job in list(self.calls.values()):
            if job.deferred:
                del self.calls[job.tid]
                self.finish(job, ("ok", ("late", job.tid)))

    @rule()
    def cast(self) -> None:
        self.seq += 1
        n = self.seq

        async def cast() -> None:
            otpy.cast("echo", n)

        self.w.in_p(cast)
        self.casts.append(n)

    @rule(job=consumes(jobs))
    def cancel(self, job: Job) -> None:
        scope = self.w.scopes.get(job.tid)
        assert scope is not None

        async def cancel() -> None:
            scope.cancel()

        self.w.step(cancel)
        if job.done:
            return
        if job in self.waiting:
            self.waiting.remove(job)
        self.calls.pop(job.tid, None)
        self.finish(job, ("cancelled",))

    @rule(dt=st.sampled_from([0.5, 1.0, 2.5]))
    def advance(self, dt: float) -> None:
        async def jump() -> None:
            self.w.clock.jump(dt)

        self.w.step(jump)
        self.now += dt
        # One jump fires every timer now due in one pass, before any woken task
        # runs: a call whose deadline passed times out even if its reply fell due
        # earlier within the same jump.
        for job in [*self.waiting, *self.calls.values()]:
            if job.deadline is not None and job.deadline <= self.now:
                if job in self.waiting:
                    self.waiting.remove(job)
                    self.finish(job, ("timeout",))
                else:
                    del self.calls[job.tid]
                    self.finish(job, ("call-error", otpy.Timeout()))
            elif job.due is not None and job.due <= self.now:
                del self.calls[job.tid]
                self.finish(job, ("ok", ("timed", job.tid)))

    @rule(how=st.sampled_from(["kill", "shutdown", "crash"]))
    def end_p(self, how: str) -> None:
        """End P with an exit signal, or by a helper task that raises; then start a new P."""
        w = self.w
        pid = w.p_pid
        assert pid is not None

        async def end() -> None:
            ref = otpy.monitor(pid)
            if how == "crash":
                async def boom() -> None:
                    raise ValueError("helper failed")

                async def start_boom() -> None:
                    w.nursery.start_soon(boom)

                await w.to_p_send.send(start_boom)
            else:
                otpy.exit(pid, otpy.Kill() if how == "kill" else otpy.Shutdown("end"))
            down = await otpy.receive(
                lambda m: isinstance(m, otpy.Down) and m.ref == ref, timeout=5)
            w.p_exit = down.reason
            w.p_pid = otpy.spawn(w._p_body)

        w.in_driver(end)
        reason = w.p_exit
        if how == "kill":
            assert reason == otpy.Killed(), reason
        elif how == "shutdown":
            assert reason == otpy.Shutdown("end"), reason
        else:
            assert isinstance(reason, otpy.Crash), reason
            assert type(reason.exception) is ValueError, reason.exception
        assert not w.live, f"tasks of the dead process still run: {w.live}"
        for job in [*self.waiting, *self.calls.values()]:
            self.finish(job, None)  # ended with the process: no result
        self.waiting.clear()
        self.calls.clear()
        self.mailbox.clear()

    @rule()
    def check_casts(self) -> None:
        got: list[Any] = []

        async def ask() -> None:
            got.extend(await otpy.call("echo", "casts"))

        self.w.in_driver(ask)
        assert got == self.casts

    # --------------------------------------------------------- invariants

    @invariant()
    def agrees_with_the_model(self) -> None:
        if self.world is None:
            return
        w = self.w
        assert w.error is None, repr(w.error)
        for job in self.finished:
            got = w.results.get(job.tid)
            assert got == job.expected, f"job {job}: got {got!r}"
        for job in [*self.waiting, *self.calls.values()]:
            assert job.tid not in w.results, f"job {job} finished early: {w.results[job.tid]!r}"
        p = w.p_proc
        assert p is not None
        assert list(p.mailbox or ()) == self.mailbox
        assert len(p.aliases or ()) == len(self.calls)
        assert len(p.waiters or ()) == len(self.waiting)
        assert len(p.replies or ()) == len(self.calls)
        for name in ("echo", "deferred"):
            server = p.node.local(p.node.names[name])
            assert server is not None
            watchers = [who for who, _ in (server.monitored_by or {}).values() if who == p.pid]
            held = sum(1 for job in self.calls.values() if job.deferred)
            assert len(watchers) == (held if name == "deferred" else 0)


TasksInOneProcess.TestCase.settings = settings(
    max_examples=200, stateful_step_count=30, deadline=None)
test_tasks_in_one_process = TasksInOneProcess.TestCase
