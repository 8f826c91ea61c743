"""Task: run a function in its own process and await its result.

`Task.async_` links and monitors (a crash of the task takes the owner down,
unless the owner traps exits); `TaskSupervisor.async_nolink` only monitors, so
a crashing task reports its reason to `await_` instead. `Task.async_stream`
maps a function over items with bounded concurrency.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Literal

import attrs
import trio

from otpy._dynamic_supervisor import DynamicSupervisor
from otpy._process import Process, current, flush_ref, receive, receive_reply
from otpy._reasons import Down, ExitReason, Timeout
from otpy._supervisor import ChildSpec, shutdown_child
from otpy._terms import Pid, Ref

__all__ = ["Task", "TaskError", "TaskSupervisor"]


class TaskError(Exception):
    """The task exited without a result; ``.reason`` is its exit reason."""

    def __init__(self, reason: ExitReason) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.define(eq=False)
class Task:
    """A running task: await it with `Task.await_` (or ``await task.result()``)."""

    pid: Pid
    ref: Ref
    owner: Pid
    linked: bool

    async def result(self, timeout: float | None = 5.0) -> Any:
        """Same as ``Task.await_(self, timeout)``."""
        return await Task.await_(self, timeout)

    @staticmethod
    def async_(fn: Callable[..., Awaitable[Any]], *args: Any) -> Task:
        """Start ``fn(*args)`` in a new process, linked to and monitored by the caller.

        Returns:
            The `Task`.
        """
        proc = current()
        return _spawn_task(proc, fn, args, link=True)

    @staticmethod
    async def await_(task: Task, timeout: float | None = 5.0) -> Any:
        """Wait for the task's result.

        Args:
            task: the task (only its owner may await it).
            timeout: seconds (default 5), None for no limit.

        Returns:
            What the task's function returned.

        Raises:
            Timeout: no result in time (the task keeps running).
            TaskError: the task exited without a result.
        """
        proc = current()
        if proc.pid != task.owner:
            raise RuntimeError("only the task's owner can await it")
        try:
            msg = await receive_reply(proc, task.ref, timeout)
        except Timeout:
            raise Timeout(f"task {task.pid!r} gave no result within {timeout}s") from None
        if type(msg) is Down:
            raise TaskError(msg.reason)
        proc.node.demonitor(proc, task.ref, flush=True)
        return msg[1]

    @staticmethod
    async def yield_(task: Task, timeout: float = 5.0) -> Any:
        """Like `await_`, but returns None instead of raising on timeout."""
        try:
            return await Task.await_(task, timeout)
        except Timeout:
            return None

    @staticmethod
    async def shutdown(task: Task, timeout: float | Literal["brutal_kill"] = 5.0) -> Any:
        """Stop a task; return its result if it finished meanwhile, else None.

        Args:
            task: the task.
            timeout: seconds to wait after the shutdown signal, or "brutal_kill".

        Returns:
            The result if it had already arrived, else None.
        """
        proc = current()
        node = proc.node
        if task.linked:
            node.unlink(proc, task.pid)
        reason = await shutdown_child(task.pid, timeout)
        node.demonitor(proc, task.ref, flush=False)
        box = proc.mailbox or ()
        for m in box:
            if type(m) is tuple and len(m) == 2 and m[0] == task.ref:
                flush_ref(proc, task.ref)
                return m[1]
        flush_ref(proc, task.ref)
        del reason
        return None

    @staticmethod
    async def async_stream(
        items: Iterable[Any],
        fn: Callable[[Any], Awaitable[Any]],
        *,
        max_concurrency: int = 2,
        ordered: bool = True,
        timeout: float | None = 5.0,
        on_timeout: Literal["exit", "kill_task"] = "exit",
        supervisor: Any = None,
    ) -> AsyncIterator[tuple[str, Any]]:
        """Run ``fn(item)`` for each item, at most ``max_concurrency`` at a time.

        Yields ``("ok", result)`` per item — in input order when ``ordered``
        (the default), else as they finish — or ``("exit", reason)`` for a
        task that crashed (only with ``supervisor``: linked tasks take the
        caller down) or timed out with ``on_timeout="kill_task"``.

        Args:
            items: the inputs.
            fn: the async function.
            max_concurrency: tasks running at once.
            ordered: keep input order.
            timeout: seconds each task may take.
            on_timeout: "exit" raises `Timeout` in the caller; "kill_task"
                kills that task and yields ``("exit", Timeout())``.
            supervisor: a `TaskSupervisor` to run nolink tasks under.

        Yields:
            ``(status, value)`` tuples.
        """
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        proc = current()
        it = iter(items)
        running: list[tuple[int, Task, float | None]] = []
        done: dict[int, tuple[str, Any]] = {}
        next_out = 0
        index = 0
        exhausted = False
        while True:
            while not exhausted and len(running) < max_concurrency:
                try:
                    item = next(it)
                except StopIteration:
                    exhausted = True
                    break
                if supervisor is None:
                    task = _spawn_task(proc, fn, (item,), link=True)
                else:
                    task = await TaskSupervisor.async_nolink(supervisor, fn, item)
                deadline = None if timeout is None else trio.current_time() + timeout
                running.append((index, task, deadline))
                index += 1
            if not running:
                return  # every item is done and was yielded below
            for i, status, value in await _wait_any(proc, running):
                if status == "timeout":
                    if on_timeout == "exit":
                        for _, t, _d in running:
                            await Task.shutdown(t, "brutal_kill")
                        raise Timeout(f"async_stream task timed out after {timeout}s")
                    done[i] = ("exit", Timeout())
                else:
                    done[i] = (status, value)
            if ordered:
                while next_out in done:
                    yield done.pop(next_out)
                    next_out += 1
            else:
                for i in sorted(done):
                    yield done.pop(i)


async def _wait_any(
    proc: Process, running: list[tuple[int, Task, float | None]]
) -> list[tuple[int, str, Any]]:
    refs = {t.ref: (i, t) for i, t, _ in running}

    def match(m: Any) -> bool:
        t = type(m)
        if t is tuple and len(m) == 2 and m[0] in refs:
            return True
        return t is Down and m.ref in refs

    deadlines = [d for _, _, d in running if d is not None]
    out: list[tuple[int, str, Any]] = []
    timeout = None if not deadlines else max(0.0, min(deadlines) - trio.current_time())
    try:
        msg = await receive(match, timeout=timeout)
    except Timeout:
        now = trio.current_time()
        for entry in list(running):
            i, task, d = entry
            if d is not None and d <= now:
                running.remove(entry)
                await Task.shutdown(task, "brutal_kill")
                out.append((i, "timeout", None))
        return out
    i, task = refs[msg[0] if type(msg) is tuple else msg.ref]
    running[:] = [e for e in running if e[1] is not task]
    if type(msg) is Down:
        out.append((i, "exit", msg.reason))
    else:
        proc.node.demonitor(proc, task.ref, flush=True)
        out.append((i, "ok", msg[1]))
    return out


def _spawn_task(
    proc: Process, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], link: bool
) -> Task:
    node = proc.node
    owner = proc.pid
    holder: list[Ref] = []

    async def body() -> None:
        result = await fn(*args)
        node.send(owner, (holder[0], result))

    pid, ref = node.spawn(body, (), parent=proc, link=link, monitor=True)
    assert ref is not None
    holder.append(ref)
    return Task(pid, ref, owner, link)


class TaskSupervisor(DynamicSupervisor):
    """A supervisor of tasks that are not linked to their caller."""

    @staticmethod
    async def async_nolink(sup: Any, fn: Callable[..., Awaitable[Any]], *args: Any) -> Task:
        """Start ``fn(*args)`` under the supervisor, monitored (not linked) by the caller.

        A crash arrives as `TaskError` from `Task.await_` instead of killing
        the caller.

        Returns:
            The `Task`.
        """
        proc = current()
        node = proc.node
        owner = proc.pid
        ref = Ref.make(node.name, node.creation)

        async def body() -> None:
            # Wait until the owner monitors us, so a crash is never reported
            # as noproc (the owner sends the go-ahead right after monitoring).
            await receive(lambda m: m == ("$otpy_task_go", ref))
            result = await fn(*args)
            node.send(owner, (ref, result))

        async def start() -> Pid:
            from otpy._api import spawn_link

            return spawn_link(body)

        pid = await DynamicSupervisor.start_child(
            sup, ChildSpec(id=None, start=(start, (), {}), restart="temporary",
                           shutdown=5.0)
        )
        assert pid is not None
        node.monitor(proc, pid, ref=ref)
        node.send(pid, ("$otpy_task_go", ref))
        return Task(pid, ref, owner, linked=False)

    @staticmethod
    async def start_child(sup: Any, fn: Callable[..., Awaitable[Any]], *args: Any  # type: ignore[override]
                          ) -> Pid:
        """Start a fire-and-forget task under the supervisor.

        Returns:
            Its pid.
        """

        async def start() -> Pid:
            from otpy._api import spawn_link

            return spawn_link(fn, *args)

        pid = await DynamicSupervisor.start_child(
            sup, ChildSpec(id=None, start=(start, (), {}), restart="temporary")
        )
        assert pid is not None
        return pid


