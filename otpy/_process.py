"""The process record: mailbox, links, monitors, flags, and selective receive.

A process is a trio task (the one running its body, and any task that body
starts in a nursery) plus this record. The mailbox is an unbounded deque
(created on first delivery, so an idle process that never received anything
costs nothing for it).

Waiting is per trio task: a task that finds nothing for it in the mailbox
parks as a `Waiter` holding its own ``match`` (or the reference of the call
whose reply it waits for). Delivering a message hands it straight to the task
it is for: a call's reply to the task in that call, anything else to the
first parked waiter it matches (waiters are served in the order they began
waiting); only a message nobody waits for is queued. So a queued message
never matches a parked waiter, each waiter is woken exactly once with its own
message (or its timeout), and any number of tasks of one process may call,
receive and be cancelled at once. See docs/design/013-waiting-per-task.md.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final

import trio
from outcome import Error
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

from otpy._reasons import Down, ExitReason, Timeout
from otpy._terms import Pid, Ref
from otpy._timers import Handle

if TYPE_CHECKING:  # annotations only: the node imports this module, never the reverse
    from otpy._node import Node

__all__ = ["CURRENT", "Process", "Waiter", "current", "park", "receive", "receive_reply"]

Match = Callable[[Any], bool] | type | tuple[type, ...] | None

#: The process the running trio task belongs to.
CURRENT: ContextVar[Process] = ContextVar("otpy.process")

# After this many messages taken without parking, `receive` yields once so a
# process draining a busy mailbox cannot starve its siblings.
_BUDGET: Final = 64

#: What a waiter is woken with when its timer fires.
_TIMED_OUT: Final[Any] = object()


class Waiter:
    """One trio task parked in a receive: what it waits for, and how to wake it.

    ``ref`` set: the task waits for ``(ref, value)`` or ``Down(ref, ...)`` (the
    reply half of a call, or a `Task`'s result) — or ``Down(monitor, ...)`` when
    ``monitor`` is set — and nobody else may take it; otherwise ``pred``
    (``None`` = any message).
    """

    __slots__ = ("handle", "monitor", "pred", "proc", "ref", "task", "value")

    def __init__(self, proc: Process, task: Task, pred: Callable[[Any], bool] | None,
                 ref: Ref | None, monitor: Ref | None = None) -> None:
        self.proc = proc
        self.task = task
        self.pred = pred
        self.ref = ref
        self.monitor = monitor
        self.handle: Handle | None = None
        # What the task is woken with (set just before it is rescheduled).
        self.value: Any = None

    def unregister(self) -> None:
        """Drop a reply waiter's keys (and the call's alias: a later reply is stale)."""
        proc = self.proc
        ref = self.ref
        assert ref is not None
        replies = proc.replies
        if replies is not None:
            replies.pop(ref, None)
            if self.monitor is not None:
                replies.pop(self.monitor, None)
        if proc.aliases is not None:
            proc.aliases.discard(ref)

    def leave(self) -> bool:
        """Stop waiting (timed out or cancelled). Returns whether it still waited.

        A call that stops waiting drops its alias at once, so a reply or
        `Down` arriving before its task runs again is dropped, not queued.
        """
        proc = self.proc
        if self.ref is not None:
            replies = proc.replies
            if replies is None or replies.get(self.ref) is not self:
                return False
            self.unregister()
            return True
        waiters = proc.waiters
        if waiters is None or self not in waiters:
            return False
        waiters.remove(self)
        return True

    def expire(self) -> None:
        """The timer fired: wake the task with a timeout if it still waits."""
        if self.leave():
            self.value = _TIMED_OUT
            reschedule(self.task)

    def abort(self, _: Any) -> Abort:
        """trio cancels the wait: stop waiting."""
        self.leave()
        return Abort.SUCCEEDED


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
        "replies",
        "scope",
        "server",
        "trap",
        "waiters",
    )

    #: The GenServer instance of a GenServer process (set by GenServer when it
    #: starts; unset otherwise: read it with ``getattr(proc, "server", None)``).
    server: Any

    def __init__(self, node: Node, pid: Pid, trap: bool, parent: Pid | None = None) -> None:
        self.node = node
        self.pid = pid
        self.parent = parent
        self.trap = trap
        self.alive = True
        self.budget = _BUDGET
        self.mailbox: deque[Any] | None = None
        # Tasks of this process parked in a receive, in the order they parked,
        # and those parked waiting for a call's reply, by the call's ref.
        self.waiters: list[Waiter] | None = None
        self.replies: dict[Ref, Waiter] | None = None
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
        """Hand a message to the task waiting for it, else queue it.

        A reply (or `Down`) for a call goes to the task waiting in that call;
        any other message to the first task whose match it passes, in the
        order they began waiting.
        """
        replies = self.replies
        if replies:
            t = type(message)
            w = None
            if t is tuple and len(message) == 2 and type(message[0]) is Ref:
                w = replies.pop(message[0], None)
                if w is not None and w.ref is not message[0] and w.ref != message[0]:
                    replies[message[0]] = w  # a monitor key: only its Down matches
                    w = None
            elif t is Down:
                w = replies.pop(message.ref, None)
            if w is not None:
                # The call is answered: its keys and its alias go (a late Down
                # for it is stale).
                if w.monitor is not None:
                    w.unregister()
                aliases = self.aliases
                if aliases is not None:
                    aliases.discard(w.ref)
                w.value = message
                reschedule(w.task)
                return
        waiters = self.waiters
        if waiters:
            i = 0
            while i < len(waiters):
                w = waiters[i]
                pred = w.pred
                if pred is None:
                    del waiters[i]
                    w.value = message
                    reschedule(w.task)
                    return
                try:
                    # In the waiter's own context: its predicate sees
                    # otpy.self() and its context variables as it would there.
                    hit = w.task.context.run(pred, message)
                except BaseException as exc:  # the predicate's error is its waiter's
                    del waiters[i]
                    reschedule(w.task, Error(exc))
                    continue
                if hit:
                    del waiters[i]
                    w.value = message
                    reschedule(w.task)
                    return
                i += 1
        box = self.mailbox
        if box is None:
            box = self.mailbox = deque()
        box.append(message)

    def __repr__(self) -> str:
        return f"<Process {self.pid!r}{' dead' if not self.alive else ''}>"


def current() -> Process:
    """The calling process (of whichever of its trio tasks is running).

    Returns:
        The `Process` record of the running process.

    Raises:
        RuntimeError: when called outside an otpy process, or from a task
            that outlived its process (started into a nursery outside it).
    """
    try:
        proc = CURRENT.get()
    except LookupError:
        raise RuntimeError(
            "not inside an otpy process (use otpy.run or otpy.open_node)"
        ) from None
    if not proc.alive:
        raise RuntimeError(
            f"{proc.pid!r} has exited; this task outlived it (it was started into a "
            "nursery outside the process)")
    return proc


def _predicate(match: Match) -> Callable[[Any], bool] | None:
    if match is None:
        return None
    if isinstance(match, type | tuple):
        types = match

        def is_instance(message: Any) -> bool:
            return isinstance(message, types)

        return is_instance
    return match


async def park(proc: Process, pred: Callable[[Any], bool] | None, ref: Ref | None,
               timeout: float | None, monitor: Ref | None = None) -> Any:
    """Wait, as the calling task, for the next message the waiter matches.

    Nothing is scanned: the caller has looked at the mailbox already, or knows
    nothing for it can be there yet (a call's fresh ref).

    Args:
        proc: the calling process.
        pred: the receive's predicate (``None``: any message), when ``ref`` is None.
        ref: wait for ``(ref, value)`` / ``Down(ref, ...)`` instead.
        timeout: seconds, or None.
        monitor: with ``ref``, also end the wait on ``Down(monitor, ...)``.

    Returns:
        The message.

    Raises:
        Timeout: nothing within ``timeout``.
    """
    w = Waiter(proc, current_task(), pred, ref, monitor)
    if ref is not None:
        replies = proc.replies
        if replies is None:
            replies = proc.replies = {}
        replies[ref] = w
        if monitor is not None:
            replies[monitor] = w
    else:
        waiters = proc.waiters
        if waiters is None:
            proc.waiters = [w]
        else:
            waiters.append(w)
    proc.budget = _BUDGET
    if timeout is None:
        await wait_task_rescheduled(w.abort)
        return w.value
    timers = proc.node.timers
    handle = w.handle = timers.add(w, timeout)
    try:
        await wait_task_rescheduled(w.abort)
    finally:
        timers.cancel(handle)
    message = w.value
    if message is _TIMED_OUT:
        raise Timeout()
    return message


async def receive(match: Match = None, timeout: float | None = None) -> Any:
    """Take the first message in the mailbox that matches (selective receive).

    Works from any trio task of the process; tasks receiving at once are
    served in the order they began waiting, each with a message matching its
    own ``match``.

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
                if not box:
                    return await receive(match, timeout)
            return box.popleft()
        for i, message in enumerate(box):
            if pred(message):
                del box[i]
                return message
    if timeout is not None and timeout <= 0:
        await trio.lowlevel.checkpoint()
        raise Timeout()
    return await park(proc, pred, None, timeout)


def _is_reply(message: Any, ref: Ref) -> bool:
    t = type(message)
    return (t is tuple and len(message) == 2 and message[0] == ref) or (
        t is Down and message.ref == ref)


async def receive_reply(proc: Process, ref: Ref, timeout: float | None, *,
                        monitor: Ref | None = None, scan: bool = True) -> Any:
    """Wait for ``(ref, value)`` or ``Down(ref, ...)``: the reply half of a call.

    The reply goes to the calling task only, whichever other tasks of the
    process are receiving. Used by `call`, `Task.await_` and process starts.

    Args:
        proc: the calling process.
        ref: the call's reference.
        timeout: seconds, or ``None`` for no limit.
        monitor: also end the wait on ``Down(monitor, ...)``.
        scan: look in the mailbox first (``False`` when nothing can be there
            yet, e.g. for a call just sent: a long mailbox is not scanned).

    Returns:
        The reply tuple or the `Down` message.

    Raises:
        Timeout: no reply within ``timeout``.
    """
    if scan:
        box = proc.mailbox
        if box:
            for i, message in enumerate(box):
                if _is_reply(message, ref) or (
                        monitor is not None and type(message) is Down
                        and message.ref == monitor):
                    del box[i]
                    return message
    return await park(proc, None, ref, timeout, monitor)


def flush_ref(proc: Process, ref: Ref) -> None:
    """Drop any queued reply or `Down` for ``ref`` (after a timeout or a demonitor)."""
    box = proc.mailbox
    if not box:
        return
    keep = [m for m in box if not _is_reply(m, ref)]
    if len(keep) != len(box):
        box.clear()
        box.extend(keep)
