"""The reply queue of :class:`~claudecode.testing.FakeAnthropic` (sans-IO).

A :class:`Script` holds the replies a test queued and the default reply, and
chooses the reply for each ``POST /v1/messages``: the first queued entry whose
condition accepts the request, else the default. Reply functions are called
here, and their mistakes become :class:`ScriptError`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import attrs

from claudecode.testing._replies import (
    APIError,
    Disconnect,
    Echo,
    RecordedRequest,
    Reply,
    ReplyLike,
    Text,
    Thinking,
    ToolUse,
    Turn,
)

ScriptPredicate = Callable[[RecordedRequest], bool]
"""A condition on the request that a queued reply waits for."""

MAX_REPLY_CHAIN = 32
"""How many times reply functions may return further functions."""

_REPLY_TYPES = (Text, Thinking, ToolUse, Turn, Echo, APIError, Disconnect)


class ScriptError(Exception):
    """A scripted reply was not a reply, or a reply function raised.

    :class:`~claudecode.testing.FakeAnthropic` answers such a request with
    HTTP 500 and keeps the error in ``script_errors`` for the test to check.
    """


@attrs.define
class Script:
    """Queued replies plus a default.

    Attributes:
        default: the reply when no queued entry applies.
    """

    default: ReplyLike = attrs.field(factory=Echo)
    _queue: deque[tuple[ReplyLike, ScriptPredicate | None]] = attrs.field(factory=deque)

    def add(self, *replies: ReplyLike, when: ScriptPredicate | None = None, times: int = 1) -> None:
        """Queue replies at the end, in order.

        Args:
            *replies: replies or reply functions.
            when: if given, an entry is used only by a request for which
                ``when(request)`` is true; other requests pass it by.
            times: queue the whole sequence this many times.

        Raises:
            ScriptError: a reply is neither a reply object nor callable.
            ValueError: ``times`` is negative.
        """
        if times < 0:
            raise ValueError(f"times must be >= 0, got {times}")
        for reply in replies:
            if not isinstance(reply, _REPLY_TYPES) and not callable(reply):
                raise ScriptError(f"not a scripted reply: {reply!r}")
        for _ in range(times):
            for reply in replies:
                self._queue.append((reply, when))

    def __len__(self) -> int:
        return len(self._queue)

    def clear(self) -> None:
        """Drop every queued entry."""
        self._queue.clear()

    def take(self, request: RecordedRequest) -> ReplyLike:
        """Remove and return the entry for ``request`` (or the default).

        Args:
            request: the ``POST /v1/messages`` being answered.

        Returns:
            The first queued entry whose condition accepts the request, else
            :attr:`default`.

        Raises:
            ScriptError: a ``when`` condition raised.
        """
        for i, (reply, when) in enumerate(self._queue):
            try:
                accepted = when is None or when(request)
            except Exception as exc:
                del self._queue[i]
                raise ScriptError(f"script condition {when!r} raised {exc!r}") from exc
            if accepted:
                del self._queue[i]
                return reply
        return self.default

    def next_reply(self, request: RecordedRequest) -> Reply:
        """Take the entry for ``request`` and resolve reply functions to a reply.

        Args:
            request: the ``POST /v1/messages`` being answered.

        Returns:
            A reply object (never a function).

        Raises:
            ScriptError: a function raised or returned something that is not a
                reply, or functions kept returning functions.
        """
        return resolve(self.take(request), request)


def resolve(reply: ReplyLike, request: RecordedRequest) -> Reply:
    """Call reply functions until a reply object comes out.

    Args:
        reply: a reply or a reply function.
        request: passed to reply functions.

    Returns:
        The reply object.

    Raises:
        ScriptError: as for :meth:`Script.next_reply`.
    """
    for _ in range(MAX_REPLY_CHAIN):
        if isinstance(reply, _REPLY_TYPES):
            return reply
        if not callable(reply):
            raise ScriptError(f"not a scripted reply: {reply!r}")
        fn = reply
        try:
            reply = fn(request)
        except Exception as exc:
            raise ScriptError(f"reply function {fn!r} raised {exc!r}") from exc
    raise ScriptError(f"reply functions returned functions {MAX_REPLY_CHAIN} times in a row")
