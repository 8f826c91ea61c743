"""Test helpers for code that drives the real Claude Code CLI.

:class:`FakeAnthropic` is a scripted Anthropic Messages API served on
loopback; the real CLI talks to it through ``ANTHROPIC_BASE_URL`` (see
:meth:`FakeAnthropic.env`). Script the model's answers with the reply types
exported here. :class:`RawCLI` runs the real CLI against it line by line.
See ``docs/testing-with-fake-anthropic.md``.
"""

from claudecode.testing._raw_cli import CLIExited, RawCLI
from claudecode.testing._render import DEFAULT_MODEL
from claudecode.testing._replies import (
    APIError,
    Block,
    Disconnect,
    Echo,
    RecordedRequest,
    Reply,
    ReplyFn,
    ReplyLike,
    Text,
    Thinking,
    ToolUse,
    Turn,
)
from claudecode.testing._script import ScriptError, ScriptPredicate
from claudecode.testing._server import FakeAnthropic

__all__ = [
    "DEFAULT_MODEL",
    "APIError",
    "Block",
    "CLIExited",
    "Disconnect",
    "Echo",
    "FakeAnthropic",
    "RawCLI",
    "RecordedRequest",
    "Reply",
    "ReplyFn",
    "ReplyLike",
    "ScriptError",
    "ScriptPredicate",
    "Text",
    "Thinking",
    "ToolUse",
    "Turn",
]
