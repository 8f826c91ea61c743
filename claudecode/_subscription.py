"""Session-level subscriptions: the messages that belong to no query of yours.

The CLI also speaks between turns: a background task finishes
(``task_updated``, ``task_notification``, ``background_tasks_changed``) and
the CLI then starts a turn of its own to tell the model (``system/init``,
assistant lines, a ``ResultMessage`` whose ``origin`` is ``{"kind":
"task-notification"}``); ``command_lifecycle`` lines report your own prompts
being queued, started and completed. None of these are part of a stream, so
the session hands them to its subscribers::

    async with claudecode.subscribe(session) as events:
        async for message in events:
            if isinstance(message, claudecode.TaskNotificationMessage):
                print("task", message.task_id, message.status)

Until someone subscribes, the session keeps them (the newest
:data:`~claudecode._session.BACKLOG_SIZE`), and the first subscriber gets
those first: nothing is dropped silently. ``include_turns=True`` also copies
every message of every turn to the subscriber (an observer of the whole
session, like claude-agent-sdk's ``receive_messages``).

A subscription is consumed by the otpy process that started it, like a
stream. It ends with :class:`~claudecode._errors.StreamError` when the
session exits abnormally, and quietly when it stops normally.
"""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import Any, Final

import trio

import otpy
from claudecode._errors import StreamError
from claudecode._messages import Message
from claudecode._session import SUBSCRIPTION_TAG, UNSUBSCRIBE_TAG
from otpy import Down, Pid, Ref
from otpy._process import Process, current

__all__ = ["Subscription", "subscribe"]

_UNSET: Final[Any] = object()


class Subscription:
    """A session's messages outside your turns. Create it with :func:`subscribe`."""

    def __init__(self, session: Any, *, include_turns: bool = False,
                 timeout: float | None = None) -> None:
        if timeout is not None and (not isinstance(timeout, int | float)
                                    or isinstance(timeout, bool) or not timeout > 0):
            raise ValueError(f"timeout must be positive seconds or None, got {timeout!r}")
        self._session = session
        self._include_turns = include_turns
        self._timeout = timeout
        self._state = "new"  # new | open | done
        self._ref: Ref | None = None
        self._proc: Process | None = None
        self._session_pid: Pid | None = None

    def __repr__(self) -> str:
        return f"<claudecode.Subscription {self._state} session={self._session!r}>"

    async def _open(self) -> None:
        proc = current()
        self._proc = proc
        ref = otpy.monitor(self._session)
        self._ref = ref
        self._state = "open"
        try:
            reply = await otpy.call(self._session, ("subscribe", ref, proc.pid,
                                                    self._include_turns), 30.0)
        except otpy.CallError as err:
            self._close_local()
            raise StreamError(err.reason, "cannot subscribe to the session") from None
        except BaseException:
            self.close()
            raise
        self._session_pid = reply[1]

    async def open(self) -> Subscription:
        """Subscribe now (iterating does it on the first step otherwise).

        Returns:
            This subscription.
        """
        if self._state == "new":
            await self._open()
        return self

    def _close_local(self) -> None:
        self._state = "done"
        proc, ref = self._proc, self._ref
        if proc is not None and ref is not None and proc.alive:
            proc.node.demonitor(proc, ref, True)
            box = proc.mailbox
            if box:
                keep = [m for m in box if not _is_ours(m, ref)]
                if len(keep) != len(box):
                    box.clear()
                    box.extend(keep)

    def close(self) -> None:
        """Stop receiving (synchronous; the session forgets this subscriber)."""
        if self._state != "open":
            self._state = "done"
            return
        proc, ref = self._proc, self._ref
        target = self._session_pid if self._session_pid is not None else self._session
        if proc is not None and ref is not None:
            with contextlib.suppress(Exception):
                proc.node.send(target, (UNSUBSCRIBE_TAG, ref))
        self._close_local()

    async def aclose(self) -> None:
        """Stop receiving."""
        self.close()

    async def __aenter__(self) -> Subscription:
        return await self.open()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.next(self._timeout)
        except _Ended:
            raise StopAsyncIteration from None

    async def next(self, timeout: float | None = _UNSET) -> Message:
        """The next message.

        Args:
            timeout: seconds to wait (default: the subscription's ``timeout``).

        Returns:
            The message.

        Raises:
            otpy.Timeout: nothing arrived in time (the subscription stays open).
            StreamError: the session exited abnormally.
            StopAsyncIteration: the subscription is closed or the session stopped.
        """
        if self._state == "new":
            await self._open()
        if self._state != "open":
            raise _Ended
        proc = self._proc
        if proc is not None and current() is not proc:
            raise RuntimeError("a subscription must be consumed by the process that opened it")
        ref = self._ref
        assert ref is not None
        wait = self._timeout if timeout is _UNSET else timeout

        def match(m: Any) -> bool:
            return _is_ours(m, ref)

        try:
            msg = await otpy.receive(match, timeout=wait)
        except trio.Cancelled:
            self.close()
            raise
        if type(msg) is Down:
            self._close_local()
            if isinstance(msg.reason, otpy.Normal | otpy.Shutdown):
                raise _Ended
            raise StreamError(msg.reason, "the session exited")
        message: Message = msg[3]
        return message


class _Ended(StopAsyncIteration):
    """The subscription is over (iteration ends)."""


def _is_ours(m: Any, ref: Ref) -> bool:
    t = type(m)
    if t is tuple:
        return len(m) == 4 and m[0] == SUBSCRIPTION_TAG and m[1] == ref
    return t is Down and m.ref == ref


def subscribe(session: Any, *, include_turns: bool = False,
              timeout: float | None = None) -> Subscription:
    """Subscribe to the session's messages that are outside your queries' turns.

    Nothing is sent until the subscription is opened (``async with``, the
    first ``async for`` step, or ``await sub.open()``); messages the session
    kept before that arrive first.

    Args:
        session: a session pid or name.
        include_turns: also receive a copy of every message of every turn.
        timeout: seconds to wait for each next message when iterating
            (``None``: forever).

    Returns:
        The :class:`Subscription`.
    """
    return Subscription(session, include_turns=include_turns, timeout=timeout)
