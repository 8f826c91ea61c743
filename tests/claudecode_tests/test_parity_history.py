"""claude-agent-sdk parity, part 3: subagent transcripts, editing stored sessions.

Real CLI against FakeAnthropic: a session delegates to a subagent (with
``forward_subagent_text``), then its transcripts are read, renamed, tagged,
forked (and the fork resumed by the CLI) and deleted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from _session_env import fake, no_orphans, opts

import claudecode
import otpy
from claudecode import History
from claudecode.testing import FakeAnthropic, RecordedRequest, Text, ToolUse

__all__ = ["fake", "no_orphans", "opts"]  # fixtures used by name

TASK = {"description": "look around", "prompt": "say hi from the subagent",
        "subagent_type": "general-purpose"}


def _reply(request: RecordedRequest) -> Any:
    """The subagent's requests start with its prompt; the main turns echo."""
    first = request.messages[0] if request.messages else {}
    if "say hi from the subagent" in str(first):
        return Text("hi from the subagent")
    return Text(f"main #{len(request.messages)}")


async def test_subagents_and_stored_session_edits(opts: dict[str, Any],
                                                  fake: FakeAnthropic) -> None:
    config = opts["env"]["CLAUDE_CONFIG_DIR"]
    cwd = opts["cwd"]
    fake.script(ToolUse("Task", TASK, id="spawn"), when=lambda r: r.last_user_text == "delegate")
    fake.default = _reply
    async with otpy.open_node():
        session = await claudecode.start_link(allowed_tools=["Task"],
                                              forward_subagent_text=True, **opts)
        everything = await claudecode.subscribe(session, include_turns=True).open()
        await claudecode.stream(session, "delegate").final_result()
        sid = await claudecode.get_session_id(session)
        assert sid is not None

        # the subagent runs in the background; its text is forwarded as messages
        # whose parent_tool_use_id is the spawning call
        forwarded: list[claudecode.AssistantMessage] = []
        with trio.fail_after(30):
            while True:
                message = await everything.next()
                if isinstance(message, claudecode.AssistantMessage) and \
                        message.parent_tool_use_id == "spawn":
                    forwarded.append(message)
                if isinstance(message, claudecode.TaskNotificationMessage):
                    break
        everything.close()
        assert "hi from the subagent" in [m.text for m in forwarded]
        assert forwarded[0].agent_id

        agents = History.list_subagents(sid, cwd, config_dir=config)
        assert agents == [forwarded[0].agent_id]
        assert await claudecode.list_session_subagents(session) == agents
        sub = History.subagent_messages(sid, agents[0], cwd, config_dir=config)
        assert isinstance(sub[0], claudecode.UserMessage)
        assert sub[0].text == "say hi from the subagent"
        assert [m.text for m in sub if isinstance(m, claudecode.AssistantMessage)] == \
            ["hi from the subagent"]
        assert all(m.parent_tool_use_id == "spawn" for m in sub)
        meta = History.subagent_info(sid, agents[0], cwd, config_dir=config)
        assert meta["toolUseId"] == "spawn" and meta["agentType"] == "general-purpose"
        with pytest.raises(claudecode.SessionNotFoundError):
            History.subagent_messages(sid, "nope", cwd, config_dir=config)

        # the stored conversation, read through the session (its adapter)
        stored = await claudecode.get_messages(session)
        assert stored[0].text == "delegate"
        assert [s.session_id for s in await claudecode.list_sessions(session)] == [sid]
        await claudecode.stop(session)

        # rename and tag, as claude-agent-sdk writes them
        History.rename_session(sid, "  the delegation  ", cwd, config_dir=config)
        History.tag_session(sid, "exp\u200b-1", cwd, config_dir=config)
        [info] = History.list_sessions(cwd, config_dir=config)
        assert info == History.session_info(sid, cwd, config_dir=config)
        assert info.custom_title == "the delegation" == info.summary
        assert info.tag == "exp-1" and info.created_at and info.created_at > 1_600_000_000_000
        History.tag_session(sid, None, cwd, config_dir=config)
        assert History.list_sessions(cwd, config_dir=config)[0].tag is None
        with pytest.raises(ValueError, match="title"):
            History.rename_session(sid, "   ", cwd, config_dir=config)

        # fork up to the first answer; the CLI resumes the fork with that history only
        chain = History.conversation(sid, cwd, config_dir=config)
        first_answer = next(m for m in chain if isinstance(m, claudecode.AssistantMessage))
        assert first_answer.uuid is not None
        fork = History.fork_session(sid, cwd, up_to_message_id=first_answer.uuid,
                                    config_dir=config)
        assert fork.session_id != sid and fork.path.exists()
        forked = History.conversation(fork.session_id, cwd, config_dir=config)
        assert 0 < len(forked) < len(chain)
        assert [m.text for m in forked] == [m.text for m in chain[:len(forked)]]
        assert {s.custom_title for s in History.list_sessions(cwd, config_dir=config)} == \
            {"the delegation", "the delegation (fork)"}
        resumed = await claudecode.start_link(resume=fork.session_id, **opts)
        text = await claudecode.stream(resumed, "and now?").final_text()
        # the fork holds the prompt and the tool call; this turn adds a result and a prompt
        assert text == f"main #{len(fake.messages_requests[-1].messages)}"
        assert "delegate" in str(fake.messages_requests[-1].messages[0])
        await claudecode.stop(resumed)

        History.delete_session(sid, cwd, config_dir=config)
        with pytest.raises(claudecode.SessionNotFoundError):
            History.conversation(sid, cwd, config_dir=config)
        assert not (Path(fork.path).parent / sid).exists()  # the subagent directory too
        with pytest.raises(claudecode.SessionNotFoundError):
            History.rename_session(sid, "gone", cwd, config_dir=config)
