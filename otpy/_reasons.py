"""Typed exit reasons, the messages that carry them, and otpy's exceptions.

Every exit reason is an `ExitReason`. The reasons Erlang gives meaning to have
their own class (`Normal`, `Shutdown`, `Kill`, `Killed`, `NoProc`,
`NoConnection`, `Timeout`, `Crash`); any other term — from a user or from an
Erlang peer — is wrapped in `TermReason` so it is still an `ExitReason`.

Signals that arrive as messages: `Exit` (for a process trapping exits), `Down`
(a monitor fired) and `NodeDown` (`monitor_node`).
"""

from __future__ import annotations

import traceback
from typing import Any

import attrs

from otpy._terms import Pid, Ref

__all__ = [
    "CallError",
    "CallingSelf",
    "Crash",
    "Down",
    "Exit",
    "ExitReason",
    "Kill",
    "Killed",
    "NoConnection",
    "NoProc",
    "NodeDown",
    "Normal",
    "ProcessExit",
    "Shutdown",
    "TermReason",
    "Timeout",
    "Unencodable",
    "as_reason",
    "is_quiet",
    "leaf_exit",
    "lone_exception",
]


class ExitReason:
    """Base class of every exit reason."""

    __slots__ = ()


@attrs.frozen(slots=True)
class Normal(ExitReason):
    """The process finished its work (`normal`)."""


@attrs.frozen(slots=True)
class Shutdown(ExitReason):
    """An orderly shutdown (`shutdown`, or `{shutdown, detail}` when detail is set)."""

    detail: Any = None


@attrs.frozen(slots=True)
class Kill(ExitReason):
    """The untrappable kill signal. Sent with `otpy.exit(pid, Kill())`.

    The target dies with `Killed`, whatever its trap_exits flag. As a *link*
    reason (a process that exited with reason `Kill`) it is an ordinary,
    trappable reason.
    """


@attrs.frozen(slots=True)
class Killed(ExitReason):
    """The reason of a process that received `Kill`."""


@attrs.frozen(slots=True)
class NoProc(ExitReason):
    """The target process did not exist (`noproc`)."""


@attrs.frozen(slots=True)
class CallingSelf(ExitReason):
    """A process called itself (`calling_self`): it could never answer."""


@attrs.frozen(slots=True)
class Unencodable(ExitReason):
    """A value could not cross to another node: it has no Erlang term encoding.

    A server whose reply to a remote caller cannot be encoded answers the
    call with this instead (the call raises `CallError` with it), and a
    claudecode stream whose message cannot reach its consumer's node fails
    with it; neither the server nor the session goes down.

    Attributes:
        detail: the encoder's error, with the path to the bad part.
    """

    detail: str


@attrs.frozen(slots=True)
class NoConnection(ExitReason):
    """The connection to the process's node was lost (`noconnection`)."""

    node: str | None = None


def lone_exception(exc: BaseException) -> BaseException:
    """The one exception inside (nested) single-member exception groups.

    A helper task's exception reaches its process wrapped by the nursery as
    ``ExceptionGroup([exc])``; the process crashes with ``exc`` itself, as if
    its body had raised it. A group of several stays a group.

    Args:
        exc: an exception, possibly a group.

    Returns:
        ``exc`` unwrapped.
    """
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


@attrs.frozen(slots=True, eq=False)
class Crash(ExitReason):
    """The process raised an uncaught exception.

    Attributes:
        exception: the exception, with its ``__traceback__``.
    """

    exception: BaseException = attrs.field(converter=lone_exception)

    @property
    def traceback(self) -> str:
        """The formatted traceback of the exception."""
        return "".join(traceback.format_exception(self.exception))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Crash) and other.exception is self.exception

    def __hash__(self) -> int:
        return id(self.exception)

    def __repr__(self) -> str:
        return f"Crash({self.exception!r})"


@attrs.frozen(slots=True)
class TermReason(ExitReason):
    """Any other reason: an arbitrary term given by a user or an Erlang peer."""

    term: Any


class Timeout(TimeoutError, ExitReason):
    """A receive or call timed out. Both an exception and an exit reason."""

    def __init__(self, message: str = "timeout") -> None:
        super().__init__(message)

    def __eq__(self, other: object) -> bool:
        return type(other) is Timeout

    def __hash__(self) -> int:
        return hash(Timeout)

    def __repr__(self) -> str:
        return "Timeout()"


NORMAL = Normal()
SHUTDOWN = Shutdown()
KILL = Kill()
KILLED = Killed()
NOPROC = NoProc()


def as_reason(value: object) -> ExitReason:
    """Coerce a value into an `ExitReason`.

    Args:
        value: an `ExitReason` (returned as is), an exception (→ `Crash`), or
            any other term (→ `TermReason`).

    Returns:
        The typed reason.
    """
    if isinstance(value, ExitReason):
        return value
    if isinstance(value, BaseException):
        return Crash(value)
    return TermReason(value)


def leaf_exit(exc: BaseException) -> ProcessExit | None:
    """The first `ProcessExit` in ``exc`` (itself, or inside exception groups).

    Args:
        exc: what a process body raised.

    Returns:
        The `ProcessExit`, or None if there is none.
    """
    if isinstance(exc, ProcessExit):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = leaf_exit(inner)
            if found is not None:
                return found
    return None


def is_quiet(reason: ExitReason) -> bool:
    """True for the reasons that are not errors: normal and shutdown (with or without detail)."""
    return isinstance(reason, Normal | Shutdown)


@attrs.frozen(slots=True)
class Exit:
    """The message a process trapping exits receives for an exit signal.

    Attributes:
        pid: the process the signal came from.
        reason: its exit reason.
    """

    pid: Pid
    reason: ExitReason


@attrs.frozen(slots=True)
class Down:
    """The message a monitor delivers when the monitored process exits.

    Attributes:
        ref: the monitor reference returned by `monitor`.
        pid: the monitored process (or the name it was monitored by).
        reason: its exit reason (`NoProc` if it was already dead).
    """

    ref: Ref
    pid: Any
    reason: ExitReason


@attrs.frozen(slots=True)
class NodeDown:
    """Delivered by `monitor_node` when the connection to `node` is lost."""

    node: str


class ProcessExit(BaseException):
    """Raised inside a process to exit it with a reason (Erlang's ``exit/1``).

    Also raised by `otpy.run` when the main process exits abnormally with a
    reason that is not a crash.
    """

    def __init__(self, reason: ExitReason) -> None:
        super().__init__(reason)
        self.reason = reason


class CallError(Exception):
    """A `call` failed. ``.reason`` is typed: `NoProc`, `Timeout`, `NoConnection`,
    or the server's own exit reason."""

    def __init__(self, reason: ExitReason, server: object = None, request: object = None) -> None:
        super().__init__(reason, server)
        self.reason = reason
        self.server = server
        self.request = request

    def __str__(self) -> str:
        return f"call to {self.server!r} failed: {self.reason!r}"
