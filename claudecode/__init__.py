"""claudecode: Claude Code sessions as supervised otpy GenServers.

A Python port of the Elixir ClaudeCode library on top of otpy. The session
layer lands in increments; see the project README.
"""

from claudecode._errors import ClaudeCodeError, CLINotFoundError

__all__ = ["CLINotFoundError", "ClaudeCodeError"]
