"""The process record: mailbox, links, monitors, flags, and selective receive.

A process is one trio task plus this record. The mailbox is an unbounded
deque (created on first delivery, so an idle process that never received
anything costs nothing for it); sending appends and, when the receiver is
parked in `receive`, reschedules it directly — no channels, no locks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import trio
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

from otpy._reasons import Down, ExitReason, Timeout
from otpy._terms import Pid, Ref

if TYPE_CHECKING:
    from otpy._node import Node

__all__ = ["CURRENT", "Process", "current", "receive"]

Match = Callable[[Any], bool] | type | tuple[type, ...] | None

#: The process the running trio task belongs to.
CURRENT: ContextVar[Process] = ContextVar("otpy.process")

# After this many messages taken without parking, `receive` yields once so a
# process draining a busy mailbox cannot starve its siblings.
_BUDGET = 64


class Process:
    """Runtime state of one process. Not part of the public API."""

    __slots__ = (
        "aliases",
        "alive",
        "budget",
        "cleanups",
        "links",
        "mailbox",
        "monitored_by",
        "monitors",
        "name",
        "node",
        "parent",
        "pending",
        "pid",
        "scope",
        "task",
        "timer",
        "trap",
        "waiting",
    )

    def __init__(self, node: Node, pid: Pid, trap: bool, parent: Pid | None = None) -> None:
        self.node = node
        self.pid = pid
        self.parent = parent
        self.trap = trap
        self.alive = True
        self.waiting = False
        self.budget = _BUDGET
        self.mailbox: deque[Any] | None = None
        self.task: Task | None = None
        # token of the armed receive timer, 0 when none, -1 when it fired
        self.timer = 0
        self.scope = trio.CancelScope()
        # Exit reason decided by an exit signal; the task is being cancelled.
        self.pending: ExitReason | None = None
        self.links: set[Pid] | None = None
        # ref -> pid or name this process monitors
        self.monitors: dict[Ref, Any] | None = None
        # ref -> watcher pid (and what it monitored us by)
        self.monitored_by: dict[Ref, tuple[Pid, Any]] | None = None
        # refs a reply may arrive on (calls in flight)
        self.aliases: set[Ref] | None = None
        self.name: Any = None
        self.cleanups: list[Callable[[Process, ExitReason], None]] | None = None

    def deliver(self, message: Any) -> None:
        """Append a message to the mailbox and wake the process if it waits."""
        box = self.mailbox
        if box is None:
            box = self.mailbox = deque()
        box.append(message)
        if self.waiting:
            self.waiting = False
            reschedule(self.task)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<Process {self.pid!r}{' dead' if not self.alive else ''}>"


def current() -> Process:
    """The calling process.

    Returns:
        The `Process` record of the running process.

    Raises:
        RuntimeError: when called outside an otpy process.
    """
    try:
        return CURRENT.get()
    except LookupError:
        raise RuntimeError(
            "not inside an otpy process (use otpy.run or otpy.open_node)"
        ) from None


def _abort(proc: Process) -> Callable[[Any], Abort]:
    def abort(_: Any) -> Abort:
        proc.waiting = False
        return Abort.SUCCEEDED

    return abort


async def _park(proc: Process) -> None:
    if proc.waiting:
        raise RuntimeError("two tasks of one process are receiving at the same time")
    if proc.timer == -1:
        raise Timeout()
    if proc.task is None:
        proc.task = current_task()
    proc.waiting = True
    proc.budget = _BUDGET
    await wait_task_rescheduled(_abort(proc))
    if proc.timer == -1:
        raise Timeout()


def _predicate(match: Match) -> Callable[[Any], bool] | None:
    if match is None:
        return None
    if isinstance(match, type | tuple):
        types = match

        def is_instance(message: Any) -> bool:
            return isinstance(message, types)

        return is_instance
    return match


async def receive(match: Match = None, timeout: float | None = None) -> Any:
    """Take the first message in the mailbox that matches (selective receive).

    Args:
        match: ``None`` (any message), a predicate, or a type / tuple of types.
            Messages that do not match stay queued, in order.
        timeout: seconds to wait; ``0`` only looks at what is already queued;
            ``None`` waits forever.

    Returns:
        The message.

    Raises:
        Timeout: nothing matched within ``timeout``.
    """
    proc = current()
    pred = _predicate(match)
    box = proc.mailbox
    # Fast path: something is already there.
    if box:
        if pred is None:
            proc.budget -= 1
            if proc.budget <= 0:
                proc.budget = _BUDGET
                await trio.lowlevel.checkpoint()
            return box.popleft()
        for i, message in enumerate(box):
            if pred(message):
                del box[i]
                return message
    if timeout is None:
        return await _wait(proc, pred, len(box) if box else 0)
    if timeout <= 0:
        await trio.lowlevel.checkpoint()
        raise Timeout()
    timers = proc.node.timers
    handle = timers.add(proc, timeout)
    try:
        return await _wait(proc, pred, len(box) if box else 0)
    finally:
        timers.cancel(proc, handle)


async def _wait(proc: Process, pred: Callable[[Any], bool] | None, seen: int) -> Any:
    while True:
        await _park(proc)
        box = proc.mailbox
        assert box is not None
        if pred is None:
            return box.popleft()
        n = len(box)
        i = seen
        while i < n:
            message = box[i]
            if pred(message):
                del box[i]
                return message
            i += 1
        seen = n


async def receive_reply(proc: Process, ref: Ref, timeout: float | None) -> Any:
    """Wait for ``(ref, value)`` or ``Down(ref, ...)``: the reply half of a call.

    Scans without a user predicate; used by `call` and `Task.await_`.

    Args:
        proc: the calling process.
        ref: the call's reference.
        timeout: seconds, or ``None`` for no limit.

    Returns:
        The reply tuple or the `Down` message.

    Raises:
        Timeout: no reply within ``timeout``.
    """
    if timeout is None:
        return await _wait_reply(proc, ref, 0)
    timers = proc.node.timers
    handle = timers.add(proc, timeout)
    try:
        return await _wait_reply(proc, ref, 0)
    finally:
        timers.cancel(proc, handle)


async def _wait_reply(proc: Process, ref: Ref, seen: int) -> Any:
    while True:
        box = proc.mailbox
        if box:
            n = len(box)
            i = seen
            while i < n:
                m = box[i]
                t = type(m)
                if (t is tuple and len(m) == 2 and m[0] == ref) or (t is Down and m.ref == ref):
                    del box[i]
                    return m
                i += 1
            seen = n
        await _park(proc)


def flush_ref(proc: Process, ref: Ref) -> None:
    """Drop any queued reply or `Down` for ``ref`` (after a timeout or a demonitor)."""
    box = proc.mailbox
    if not box:
        return
    keep = [
        m
        for m in box
        if not (
            (type(m) is tuple and len(m) == 2 and m[0] == ref)
            or (type(m) is Down and m.ref == ref)
        )
    ]
    if len(keep) != len(box):
        box.clear()
        box.extend(keep)
