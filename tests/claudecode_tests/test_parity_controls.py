"""claude-agent-sdk parity, part 1: named control requests, tool results, rewind.

One real CLI per test (against FakeAnthropic), each used for several checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from _session_env import fake, no_orphans, opts

import claudecode
import otpy
from claudecode.testing import FakeAnthropic, RecordedRequest, Text, ToolUse, Turn

__all__ = ["fake", "no_orphans", "opts"]  # fixtures used by name


def _is(prompt: str) -> Any:
    return lambda request: request.last_user_text == prompt


async def _status(session: Any, name: str, wanted: str) -> dict[str, claudecode.McpServerStatus]:
    """``mcp_status`` once server ``name`` has status ``wanted`` (SDK servers connect
    in the background after ``initialize``)."""
    with trio.fail_after(10):
        while True:
            status = {s.name: s for s in await claudecode.mcp_status(session)}
            if name in status and status[name].status == wanted:
                return status
            await trio.sleep(0.05)


async def test_controls_have_typed_answers_and_tools_answer_in_the_sdk_shape(
        opts: dict[str, Any], fake: FakeAnthropic) -> None:
    @claudecode.tool("add", "Add two non-negative integers",
                     {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0},
                                                       "b": {"type": "integer", "minimum": 0}},
                      "required": ["a", "b"]})
    async def add(args: dict[str, Any]) -> dict[str, Any]:
        # claude-agent-sdk's result shape
        return {"content": [{"type": "text", "text": f"Sum: {args['a'] + args['b']}"}]}

    calc = claudecode.mcp_server("calc", [add])
    seen: list[str] = []

    def tool_text(tool_id: str) -> Any:
        def reply(request: RecordedRequest) -> Text:
            seen.append(request.tool_result_text(tool_id))
            return Text("done")
        return reply

    fake.script(Turn([ToolUse("mcp__calc__add", {"a": 2, "b": 3}, id="t1")]), tool_text("t1"),
                when=_is("add"), times=1)
    fake.script(Turn([ToolUse("mcp__calc__add", {"a": -1, "b": 3}, id="t2")]), tool_text("t2"),
                when=_is("add badly"))
    async with otpy.open_node():
        session = await claudecode.start_link(
            mcp_servers={"calc": calc, "broken": {"command": "/nonexistent/mcp", "args": []}},
            allowed_tools=["mcp__calc__add"], **opts)

        info = await claudecode.server_info(session)  # starts the CLI
        assert isinstance(info, claudecode.ServerInfo)
        assert info.claude_code_version and info.pid and info.raw["pid"] == info.pid
        assert info.commands and all(isinstance(c, claudecode.SlashCommand) for c in info.commands)
        assert any(m.value == "default" for m in info.models)
        assert isinstance(info.account, claudecode.AccountInfo)
        assert info.account.api_key_source == "ANTHROPIC_API_KEY"
        assert (await claudecode.supported_models(session)) == info.models
        assert (await claudecode.supported_agents(session)) == info.agents
        assert (await claudecode.account_info(session)) == info.account
        assert [c.name for c in await claudecode.supported_commands(session)] == \
            [c.name for c in info.commands]

        status = await _status(session, "calc", "connected")
        assert status["calc"].transport == "sdk"
        assert status["calc"].server_info == {"name": "calc", "version": "1.0.0"}
        assert status["broken"].status == "failed" and "ENOENT" in (status["broken"].error or "")

        # the model reads the tool's text, not the JSON of its result
        assert await claudecode.stream(session, "add").final_text() == "done"
        # and invalid input (jsonschema: minimum) comes back as a tool error
        assert await claudecode.stream(session, "add badly").final_text() == "done"
        assert seen[0] == "Sum: 5"
        assert "Tool error: invalid arguments for 'add': $.a:" in seen[1]
        assert "minimum" in seen[1]

        await claudecode.mcp_toggle(session, "calc", False)
        assert (await claudecode.mcp_status(session))[1].status == "disabled"
        await claudecode.mcp_toggle(session, "calc", True)
        await _status(session, "calc", "connected")

        with pytest.raises(claudecode.SessionError, match="ENOENT"):
            await claudecode.mcp_reconnect(session, "broken")

        usage = await claudecode.get_context_usage(session, detail="summary")
        assert isinstance(usage, claudecode.ContextUsage)
        assert usage.total_tokens and usage.max_tokens and usage.categories
        assert usage.raw["totalTokens"] == usage.total_tokens

        await claudecode.stop_task(session, "no-such-task")  # acknowledged either way

        extra = {"command": "/nonexistent/other", "args": []}
        changed = await claudecode.set_mcp_servers(session, {"calc": calc, "extra": extra})
        assert isinstance(changed, claudecode.McpSetServersResult)
        assert changed.added == ["extra"] and changed.removed == []
        assert "ENOENT" in changed.errors["extra"]
        changed = await claudecode.set_mcp_servers(session, {"calc": calc})
        assert changed.removed == ["extra"]
        # the servers of the start-up configuration stay
        assert {s.name for s in await claudecode.mcp_status(session)} == {"calc", "broken"}
        with pytest.raises(claudecode.SessionError, match="was not given at start"):
            await claudecode.set_mcp_servers(
                session, {"other": claudecode.mcp_server("other", [add])})
        await claudecode.stop(session)


async def test_rewind_files_puts_an_edited_file_back(opts: dict[str, Any],
                                                     fake: FakeAnthropic) -> None:
    target = Path(opts["cwd"]) / "notes.txt"
    target.write_text("version one\n")
    fake.script(Turn([ToolUse("Read", {"file_path": str(target)}, id="r")]),
                Turn([ToolUse("Write", {"file_path": str(target), "content": "version two\n"},
                              id="w")]),
                Text("rewritten"))
    async with otpy.open_node():
        session = await claudecode.start_link(
            enable_file_checkpointing=True, replay_user_messages=True,
            permission_mode="acceptEdits", **opts)
        mine = [m async for m in claudecode.stream(session, "rewrite the notes")
                if isinstance(m, claudecode.UserMessage) and m.is_replay]
        assert target.read_text() == "version two\n"
        prompt_uuid = mine[0].uuid
        assert prompt_uuid  # the session stamps every prompt with a uuid

        preview = await claudecode.rewind_files(session, prompt_uuid, dry_run=True)
        assert isinstance(preview, claudecode.RewindFilesResult)
        assert preview.can_rewind and preview.files_changed == [str(target)]
        assert target.read_text() == "version two\n"  # a dry run changes nothing
        done = await claudecode.rewind_files(session, prompt_uuid)
        assert done.can_rewind and target.read_text() == "version one\n"
        unknown = "00000000-0000-4000-8000-000000000000"
        nothing = await claudecode.rewind_files(session, unknown, dry_run=True)
        assert not nothing.can_rewind and "No file checkpoint" in (nothing.error or "")
        with pytest.raises(claudecode.SessionError, match="No file checkpoint"):
            await claudecode.rewind_files(session, unknown)
        await claudecode.stop(session)
