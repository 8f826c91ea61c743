"""The migration guide ``docs/claudecode/from-claude-agent-sdk.md`` stays true.

* Its claudecode program runs against the real CLI and a scripted
  FakeAnthropic, and prints what the page shows.
* Every python block compiles (the claude-agent-sdk one too; it is not run:
  that SDK is not a dependency).
* Its tables name every ``ClaudeAgentOptions`` field, ``ClaudeSDKClient``
  method, message type and session function of claude-agent-sdk (as of the
  version the guide was written against), and the claudecode option each
  maps to exists.
* Every test the page cites as covering a row exists.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from pathlib import Path

import trio
from _session_env import CLI, no_orphans

from claudecode import Options
from claudecode.testing import FakeAnthropic, RecordedRequest, Text, ToolUse, Turn

__all__ = ["no_orphans"]

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PAGE = ROOT / "docs" / "claudecode" / "from-claude-agent-sdk.md"
TEXT = PAGE.read_text("utf-8")
FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
FENCES = list(FENCE.finditer(TEXT))

# claude-agent-sdk (the version the page was written against)
SDK_OPTIONS = [
    "tools", "allowed_tools", "system_prompt", "mcp_servers", "strict_mcp_config",
    "permission_mode", "continue_conversation", "resume", "session_id", "max_turns",
    "max_budget_usd", "disallowed_tools", "model", "fallback_model", "betas",
    "permission_prompt_tool_name", "cwd", "cli_path", "settings", "add_dirs", "env",
    "extra_args", "max_buffer_size", "debug_stderr", "stderr", "can_use_tool", "hooks", "user",
    "include_partial_messages", "include_hook_events", "forward_subagent_text", "fork_session",
    "resume_session_at", "resume_drops_turn", "agents", "setting_sources", "skills", "sandbox",
    "plugins", "max_thinking_tokens", "thinking", "effort", "output_format",
    "enable_file_checkpointing", "session_store", "session_store_flush", "load_timeout_ms",
    "task_budget",
]
SDK_CLIENT_METHODS = [
    "connect", "receive_messages", "query", "interrupt", "set_permission_mode", "set_model",
    "rewind_files", "reconnect_mcp_server", "toggle_mcp_server", "stop_task", "get_mcp_status",
    "get_context_usage", "get_server_info", "receive_response", "disconnect",
]
SDK_MESSAGES = [
    "UserMessage", "AssistantMessage", "SystemMessage", "TaskStartedMessage",
    "TaskProgressMessage", "TaskNotificationMessage", "TaskUpdatedMessage", "HookEventMessage",
    "ResultMessage", "StreamEvent", "RateLimitEvent", "ConversationResetMessage",
    "MirrorErrorMessage", "TextBlock", "ThinkingBlock", "ToolUseBlock", "ToolResultBlock",
    "ServerToolUseBlock", "ServerToolResultBlock",
]
SDK_SESSION_FUNCTIONS = [
    "list_sessions", "get_session_info", "get_session_messages", "list_subagents",
    "get_subagent_messages", "rename_session", "tag_session", "delete_session", "fork_session",
]


def _rows(heading: str) -> list[list[str]]:
    """The body rows of the first table under a ``## heading``."""
    start = TEXT.index(f"## {heading}\n")
    end = TEXT.find("\n## ", start + 1)
    section = TEXT[start:end if end > 0 else None]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[2:]]


def _names(cell: str) -> list[str]:
    """The backticked identifiers of a cell (``foo(...)`` counts as ``foo``)."""
    return [re.split(r"[(.\s]", name)[0] for name in re.findall(r"`([^`]+)`", cell)]


def test_every_python_block_compiles() -> None:
    blocks = [m for m in FENCES if m.group(1) == "python"]
    assert len(blocks) >= 2
    for match in blocks:
        line = TEXT.count("\n", 0, match.start()) + 1
        compile(match.group(2), f"{PAGE.name}:{line}", "exec",
                flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def _program() -> tuple[str, str]:
    """The claudecode side of "One program, both ways" and the output block after it."""
    for index, match in enumerate(FENCES):
        if match.group(1) == "python" and "otpy.run(main)" in match.group(2):
            output = FENCES[index + 1]
            assert output.group(1) == "text"
            return match.group(2), output.group(2)
    raise AssertionError("no claudecode program on the page")


async def test_the_side_by_side_program_runs(tmp_path: Path) -> None:
    code, expected = _program()
    script = tmp_path / "program.py"
    script.write_text(code, "utf-8")
    home = tmp_path / "home"
    home.mkdir()

    def answer_sum(request: RecordedRequest) -> Text:
        return Text(f"2 + 3 = {request.tool_result_text('add1')}")

    async with FakeAnthropic.serve(log_requests=False) as fake:
        fake.script(Turn([ToolUse("mcp__calc__add", {"a": 2, "b": 3}, id="add1")]), answer_sum,
                    Text("5 times 4 is 20"))
        env = {**os.environ, **fake.env(max_retries=0), "HOME": str(home),
               "CLAUDE_CONFIG_DIR": str(home / ".claude"), "CLAUDECODE_CLI_DIR": "/nonexistent",
               "PATH": f"{Path(CLI).parent}:{os.environ.get('PATH', '')}"}
        with trio.fail_after(60):
            done = await trio.run_process([sys.executable, str(script)], cwd=tmp_path, env=env,
                                          capture_stdout=True, capture_stderr=True, check=False)
        system = fake.messages_requests[0].system_text
    out = done.stdout.decode()
    assert done.returncode == 0, f"{out}\n{done.stderr.decode()[-3000:]}"
    assert out == expected
    assert "You are a careful calculator." in system


def test_every_sdk_option_is_mapped_to_a_claudecode_option() -> None:
    rows = _rows("`ClaudeAgentOptions`")
    listed = {name for row in rows for name in _names(row[0])}
    assert set(SDK_OPTIONS) <= listed, set(SDK_OPTIONS) - listed
    ours = set(Options.field_names())
    for row in rows:
        mapped = _names(row[1])
        if row[1].startswith("—"):
            continue
        assert mapped and mapped[0] in ours, row


def test_every_client_method_message_and_session_function_is_mapped() -> None:
    methods = {name for row in _rows("`ClaudeSDKClient` methods") for name in _names(row[0])}
    assert set(SDK_CLIENT_METHODS) <= methods, set(SDK_CLIENT_METHODS) - methods
    messages = {name for row in _rows("Messages and blocks") for name in _names(row[0])}
    assert set(SDK_MESSAGES) <= messages, set(SDK_MESSAGES) - messages
    sessions = {name for row in _rows("Stored sessions") for name in _names(row[0])}
    assert set(SDK_SESSION_FUNCTIONS) <= sessions, set(SDK_SESSION_FUNCTIONS) - sessions


def test_every_cited_test_exists() -> None:
    cited = set(re.findall(r"`(test_\w+\.py)(?:::(\w+))?`", TEXT))
    assert len(cited) >= 15
    for filename, function in cited:
        path = HERE / filename
        assert path.exists(), filename
        if function:
            tree = ast.parse(path.read_text("utf-8"))
            defined = {node.name for node in tree.body
                       if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
            assert function in defined, f"{filename}::{function}"
