"""Exceptions of the CLI wire protocol, the options and the history reader.

These sit under :class:`claudecode._errors.ClaudeCodeError` so callers can catch
the whole family at once. Each one also derives from the built-in exception
that best describes it (``ValueError``, ``TypeError``, ``LookupError``...), so
code that only knows the built-ins still catches them sensibly.

The sans-IO protocol machine (:mod:`claudecode._protocol`) never raises for
bad *input bytes*: it reports them as events (``MalformedLine``,
``OversizedLine``). The error classes below are what those events turn into
when the session layer decides a request has to fail (``event.error()``), and
what is raised for misuse of the API (bad options, unknown session ids,
feeding a closed machine, unserialisable payloads).
"""

from __future__ import annotations

from claudecode._errors import ClaudeCodeError

__all__ = [
    "ControlRequestError",
    "EncodeError",
    "HistoryError",
    "InvalidOptionError",
    "InvalidOptionTypeError",
    "InvalidSessionIdError",
    "MalformedLineError",
    "OptionError",
    "OversizedLineError",
    "ProtocolError",
    "ProtocolStateError",
    "SessionNotFoundError",
    "UnknownOptionError",
]


class ProtocolError(ClaudeCodeError):
    """Base class of errors about the CLI's stdin/stdout JSON-lines protocol."""


class MalformedLineError(ProtocolError, ValueError):
    """A line from the CLI was not a JSON object.

    Args:
        line: the raw bytes of the line (without the newline).
        reason: why it could not be used (the decoder's message).
    """

    def __init__(self, line: bytes, reason: str) -> None:
        self.line = line
        self.reason = reason
        preview = line[:200].decode("utf-8", "replace")
        more = "..." if len(line) > 200 else ""
        super().__init__(f"malformed line from the CLI ({reason}): {preview!r}{more}")


class OversizedLineError(ProtocolError):
    """A line from the CLI was longer than ``max_buffer_size``; it was discarded.

    Args:
        size: the length of the discarded line in bytes (without the newline).
        limit: the configured ``max_buffer_size``.
        head: the first bytes of the line, for diagnostics.
    """

    def __init__(self, size: int, limit: int, head: bytes = b"") -> None:
        self.size = size
        self.limit = limit
        self.head = head
        super().__init__(
            f"a line of {size} bytes from the CLI exceeded max_buffer_size={limit} and was "
            f"discarded (starts with {head[:80]!r}); raise max_buffer_size to accept it"
        )


class ProtocolStateError(ProtocolError, RuntimeError):
    """The protocol machine was used in a state that does not allow it.

    For example ``feed()`` after ``feed_eof()``.
    """


class EncodeError(ProtocolError, TypeError):
    """An outgoing message could not be encoded as JSON (e.g. a non-JSON value)."""


class ControlRequestError(ProtocolError):
    """The CLI answered one of our control requests with an error.

    Args:
        request_id: the id of our request.
        subtype: the subtype of our request (``"initialize"``, ``"interrupt"``...).
        error: the CLI's error message.
        error_code: the CLI's machine-readable code, if it sent one.
    """

    def __init__(
        self, request_id: str, subtype: str | None, error: str, error_code: object = None
    ) -> None:
        self.request_id = request_id
        self.subtype = subtype
        self.error = error
        self.error_code = error_code
        code = f" [{error_code}]" if error_code is not None else ""
        super().__init__(f"control request {subtype or '?'} ({request_id}) failed{code}: {error}")


class OptionError(ClaudeCodeError):
    """Base class of invalid-option errors. ``.option`` names the offending option."""

    option: str


class InvalidOptionError(OptionError, ValueError):
    """An option has a value of the right type but not an allowed one.

    Args:
        option: the option's name.
        message: what is wrong and what is allowed.
    """

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        super().__init__(f"invalid value for option {option!r}: {message}")


class InvalidOptionTypeError(OptionError, TypeError):
    """An option has a value of the wrong type.

    Args:
        option: the option's name.
        message: what was expected and what was given.
    """

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        super().__init__(f"invalid type for option {option!r}: {message}")


class UnknownOptionError(OptionError, TypeError):
    """An option name that does not exist was given.

    Args:
        option: the unknown name.
        suggestions: close known names, best first (may be empty).
    """

    def __init__(self, option: str, suggestions: tuple[str, ...] = ()) -> None:
        self.option = option
        self.suggestions = suggestions
        hint = f"; did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"unknown option {option!r}{hint}")


class HistoryError(ClaudeCodeError):
    """Base class of errors raised while reading stored session history."""


class SessionNotFoundError(HistoryError, LookupError):
    """No stored session file has the given session id.

    Args:
        session_id: the id that was looked up.
        where: the directory that was searched.
    """

    def __init__(self, session_id: str, where: str = "") -> None:
        self.session_id = session_id
        self.where = where
        loc = f" under {where}" if where else ""
        super().__init__(f"no stored session {session_id!r}{loc}")


class InvalidSessionIdError(HistoryError, ValueError):
    """A session id that cannot name a session file (not a UUID).

    Args:
        session_id: the rejected value.
    """

    def __init__(self, session_id: object) -> None:
        self.session_id = session_id
        super().__init__(f"not a valid session id (expected a UUID): {session_id!r}")
