"""Exception types raised by the ``claudecode`` package.

Every error the package raises on purpose derives from :class:`ClaudeCodeError`,
so callers can catch the whole family with one ``except`` clause. The session
layer adds :class:`StreamError` (with a typed ``.reason``), :class:`ResultError`
and :class:`SessionError`, and the typed exit reasons :class:`CLIExited`,
:class:`LineTooLong` and :class:`AdapterFailed` (otpy ``ExitReason`` s, so a
session can exit with them and a supervisor's log shows them).
"""

from __future__ import annotations

import signal as _signal
from typing import Any

import attrs

from otpy import ExitReason, register_reason

INSTALL_COMMAND = "claudecode install-cli"
"""The shell command that installs the pinned Claude Code CLI."""


class ClaudeCodeError(Exception):
    """Base class of every error raised by ``claudecode``."""


class CLINotFoundError(ClaudeCodeError):
    """No usable Claude Code CLI executable could be found.

    The message always names the command that installs the pinned CLI
    (``claudecode install-cli``) and lists the places that were searched.

    Args:
        detail: what was looked for and where; the install hint is appended.
        searched: the candidate locations that were tried, in order.
    """

    def __init__(self, detail: str = "Claude Code CLI not found", searched: tuple[str, ...] = ()):
        self.detail = detail
        self.searched = searched
        where = f" (searched: {', '.join(searched)})" if searched else ""
        super().__init__(
            f"{detail}{where}. Install the pinned CLI with `{INSTALL_COMMAND}`, "
            "or pass cli_path= pointing at a `claude` executable."
        )


class CLIInstallError(ClaudeCodeError):
    """Installing the pinned Claude Code CLI failed.

    Args:
        message: what went wrong.
        output: the tail of the installer's output (npm's stdout/stderr), if any.
    """

    def __init__(self, message: str, output: str = ""):
        self.output = output
        text = message if not output else f"{message}\n--- installer output (tail) ---\n{output}"
        super().__init__(text)


# ---------------------------------------------------------------------------
# Session-layer errors and typed reasons
# ---------------------------------------------------------------------------
#
# The reasons below are otpy exit reasons: an adapter process exits with one,
# a session that loses its CLI exits with the same one (so its supervisor's
# log says what happened), and a streaming caller gets it in
# ``StreamError.reason``.

_TAIL_SHOWN = 2000
"""Characters of a stderr tail quoted in an error message."""


@register_reason
@attrs.frozen(slots=True)
class CLIExited(ExitReason):
    """The CLI process exited (or was killed) while the session needed it.

    Attributes:
        status: the exit status; negative ``-N`` when killed by signal ``N``
            (``-9`` for SIGKILL); ``None`` if it could not be determined.
        stderr_tail: the last bytes (about 8 KiB) the CLI wrote on stderr,
            decoded as UTF-8 with replacement.
    """

    status: int | None
    stderr_tail: str = ""

    @property
    def signal(self) -> int | None:
        """The signal number that killed the CLI, if it was killed by one."""
        return -self.status if self.status is not None and self.status < 0 else None

    def describe(self) -> str:
        """One human-readable line (plus the stderr tail, if any)."""
        if self.status is None:
            what = "the Claude Code CLI exited"
        elif self.status < 0:
            try:
                name = _signal.Signals(-self.status).name
            except ValueError:
                name = f"signal {-self.status}"
            what = f"the Claude Code CLI was killed by {name}"
        else:
            what = f"the Claude Code CLI exited with status {self.status}"
        tail = self.stderr_tail.strip()
        if tail:
            return f"{what}; stderr tail:\n{tail[-_TAIL_SHOWN:]}"
        return f"{what} (no stderr output)"


@register_reason
@attrs.frozen(slots=True)
class LineTooLong(ExitReason):
    """A stdout line of the CLI exceeded ``max_buffer_size`` and was discarded.

    Attributes:
        size: the line's length in bytes.
        limit: the ``max_buffer_size`` in force.
        head: the first bytes of the line, for diagnostics.
    """

    size: int
    limit: int
    head: bytes = b""

    def describe(self) -> str:
        """One human-readable line."""
        return (
            f"a line of {self.size} bytes from the CLI exceeded max_buffer_size={self.limit} "
            f"and was discarded (starts with {self.head[:80]!r}); raise max_buffer_size"
        )


@register_reason
@attrs.frozen(slots=True)
class AdapterFailed(ExitReason):
    """The adapter could not do its job (the CLI could not be spawned, the
    ``initialize`` handshake failed or timed out...).

    Attributes:
        message: what went wrong.
    """

    message: str

    def describe(self) -> str:
        """One human-readable line."""
        return f"adapter failed: {self.message}"


@register_reason
@attrs.frozen(slots=True)
class CLISlotTimeout(ExitReason):
    """A query waited for a CLI slot longer than its timeout: every CLI the
    session's `claudecode.CLIBudget` allows was busy with a turn the whole time.

    Attributes:
        waited: seconds the query waited.
        max_live_clis: the budget's limit (``None`` if it did not say).
    """

    waited: float
    max_live_clis: int | None = None

    def describe(self) -> str:
        """One human-readable line."""
        limit = "" if self.max_live_clis is None else f" (max_live_clis={self.max_live_clis})"
        return (f"no CLI slot became free within {self.waited:.3g} s{limit}: every CLI was "
                "busy with a turn; raise the budget or the query's timeout")


def describe_reason(reason: ExitReason) -> str:
    """A human-readable text for any exit reason (ours have ``describe()``).

    Args:
        reason: the reason.

    Returns:
        The text.
    """
    describe = getattr(reason, "describe", None)
    if callable(describe):
        return str(describe())
    return repr(reason)


class ConnectTimeoutError(ClaudeCodeError):
    """The Node adapter could not connect to its sandbox node within ``connect_timeout``.

    Attributes:
        node: the sandbox node.
        timeout: the timeout in seconds.
    """

    def __init__(self, node: str, timeout: float) -> None:
        super().__init__(f"no connection to sandbox node {node} within {timeout} s")
        self.node = node
        self.timeout = timeout


class NodeConnectFailedError(ClaudeCodeError):
    """The sandbox node refused or could not be reached (not registered with
    EPMD, wrong cookie, TLS mismatch...).

    Attributes:
        node: the sandbox node.
    """

    def __init__(self, node: str) -> None:
        super().__init__(f"cannot connect to sandbox node {node} (is it running, with the same "
                         f"cookie?)")
        self.node = node


class RPCFailedError(ClaudeCodeError):
    """A call the Node adapter made on the sandbox failed.

    Attributes:
        node: the sandbox node.
        reason: the failure (``{badrpc, Reason}`` term, or a typed exit reason).
    """

    def __init__(self, node: str, what: str, reason: object) -> None:
        super().__init__(f"{what} on {node} failed: {_short(reason)}")
        self.node = node
        self.reason = reason


def _short(reason: object) -> str:
    """``Type: message`` for a remote Python exception term; repr otherwise."""
    try:
        exc = reason[1]  # type: ignore[index]
        if str(exc[0]) == "python_exception":
            return f"{exc[1]}: {exc[2]}"
    except (TypeError, IndexError, KeyError):
        pass
    return repr(reason)


class StreamError(ClaudeCodeError):
    """A stream could not be completed. ``.reason`` says why, typed.

    Typical reasons: :class:`CLIExited` (the CLI died mid-stream; the session
    exits with the same reason and its supervisor restarts it),
    :class:`LineTooLong`, :class:`AdapterFailed`, ``otpy.Timeout`` (no
    message within the stream's ``timeout``), ``otpy.NoProc`` (no such
    session), ``otpy.NoConnection`` (a remote adapter's node went away),
    ``otpy.Shutdown`` (the session was stopped or cleared).

    Args:
        reason: the typed reason.
        detail: an optional extra sentence.
    """

    def __init__(self, reason: ExitReason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        text = f"stream failed: {describe_reason(reason)}"
        super().__init__(f"{text} ({detail})" if detail else text)


class ResultError(ClaudeCodeError):
    """The turn ended with an error result (``is_error`` true).

    Raised by ``Stream.final_text()``, ``Stream.final_result()`` and
    ``claudecode.query()``; ``Stream.collect()`` never raises it (it reports
    ``is_error`` instead).

    Args:
        result: the ``ResultMessage``; also available as ``.result``.
    """

    def __init__(self, result: Any) -> None:
        self.result = result
        subtype = getattr(result, "subtype", "?")
        text = getattr(result, "result", None)
        errors = getattr(result, "errors", None) or []
        parts = [f"the turn ended with an error result (subtype {subtype!r}"]
        terminal = getattr(result, "terminal_reason", None)
        if terminal:
            parts.append(f", terminal_reason {terminal!r}")
        parts.append(")")
        if text:
            parts.append(f": {text}")
        if errors:
            parts.append(f" errors: {'; '.join(str(e) for e in errors)}")
        super().__init__("".join(parts))


class SessionError(ClaudeCodeError):
    """A session request failed (e.g. the CLI answered a control request with
    an error, or the session is in no state to do it).

    Args:
        message: what went wrong.
        reason: a typed reason when there is one.
    """

    def __init__(self, message: str, reason: ExitReason | None = None) -> None:
        self.reason = reason
        super().__init__(message)
