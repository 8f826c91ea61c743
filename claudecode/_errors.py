"""Exception types raised by the ``claudecode`` package.

Every error the package raises on purpose derives from :class:`ClaudeCodeError`,
so callers can catch the whole family with one ``except`` clause. More specific
errors (connection, stream and result errors) are added here as the package
grows.
"""

from __future__ import annotations

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
