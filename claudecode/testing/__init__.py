"""Test helpers for code that drives the real Claude Code CLI.

:class:`FakeAnthropic` is a scripted Anthropic Messages API served on
loopback; the real CLI talks to it through ``ANTHROPIC_BASE_URL`` (see
:meth:`FakeAnthropic.env`). Script the model's answers with the reply types
exported here. :class:`RawCLI` runs the real CLI against it line by line.
See ``docs/testing-with-fake-anthropic.md``. Faults for sessions
(:class:`KillCLI`, :class:`APIFault`, :class:`StreamCut`,
:class:`KillSandbox`) are actions of ``otpy.testing`` fault schedules; the
workload :class:`Turns` and the invariants :func:`sessions_reachable` and
:func:`no_orphan_clis` check what a session must do under them.
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
from claudecode.testing._session_faults import (
    APIFault,
    KillCLI,
    KillSandbox,
    StreamCut,
    TurnOutcome,
    Turns,
    cli_processes,
    no_orphan_clis,
    sessions_reachable,
)

__all__ = [
    "DEFAULT_MODEL",
    "APIError",
    "APIFault",
    "Block",
    "CLIExited",
    "Disconnect",
    "Echo",
    "FakeAnthropic",
    "KillCLI",
    "KillSandbox",
    "RawCLI",
    "RecordedRequest",
    "Reply",
    "ReplyFn",
    "ReplyLike",
    "ScriptError",
    "ScriptPredicate",
    "StreamCut",
    "Text",
    "Thinking",
    "ToolUse",
    "Turn",
    "TurnOutcome",
    "Turns",
    "cli_processes",
    "no_orphan_clis",
    "sessions_reachable",
]
