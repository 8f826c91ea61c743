"""claude-agent-sdk parity, part 2: what happens between turns, streaming input, stream helpers.

Real CLI against FakeAnthropic. A background ``Bash`` task that finishes
after its turn makes the CLI print task lines and then run a turn of its own;
none of that may leak into (or be taken for) the next query's stream.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from _session_env import fake, no_orphans, opts

import claudecode
import otpy
from claudecode.testing import Echo, FakeAnthropic, RecordedRequest, Text, Thinking, ToolUse, Turn

__all__ = ["fake", "no_orphans", "opts"]  # fixtures used by name

ROOT = Path(__file__).resolve().parents[2]


def _is(prompt: str) -> Any:
    return lambda request: request.last_user_text == prompt


def _mentions(word: str) -> Any:
    return lambda request: word in str(request.messages[-1:])


async def _until(sub: claudecode.Subscription, kind: type[Any], pred: Any = None,
                 seen: list[Any] | None = None) -> Any:
    """The next subscription message of ``kind`` (and ``pred``), keeping the others in ``seen``."""
    with trio.fail_after(30):
        while True:
            message = await sub.next()
            if seen is not None:
                seen.append(message)
            if isinstance(message, kind) and (pred is None or pred(message)):
                return message


async def test_background_tasks_between_turns_go_to_subscribers(
        opts: dict[str, Any], fake: FakeAnthropic) -> None:
    fake.script(ToolUse("Bash", {"command": "sleep 1; echo bg-done", "run_in_background": True,
                                 "description": "short job"}, id="bg"),
                Text("started it"), when=_is("start a job"))
    fake.script(Text("second answer"), when=_is("second"))
    fake.script(ToolUse("Bash", {"command": "sleep 60", "run_in_background": True,
                                 "description": "long job"}, id="long"),
                Text("long one started"), when=_is("start a long job"))
    fake.default = Echo("on my own")  # the turns the CLI starts by itself
    async with otpy.open_node():
        session = await claudecode.start_link(allowed_tools=["Bash"], **opts)
        events = await claudecode.subscribe(session).open()

        first = [m async for m in claudecode.stream(session, "start a job")]
        started = [m for m in first if isinstance(m, claudecode.TaskStartedMessage)]
        assert started and started[0].tool_use_id == "bg" and started[0].is_backgrounded
        assert isinstance(first[-1], claudecode.ResultMessage)
        assert first[-1].result == "started it" and first[-1].origin is None

        seen: list[Any] = []
        done = await _until(events, claudecode.TaskNotificationMessage, seen=seen)
        assert done.task_id == started[0].task_id and done.status == "completed"
        # the moment the task is over, ask something: the CLI is about to (or
        # already does) run a turn of its own, which must not answer this query
        assert await claudecode.stream(session, "second").final_text() == "second answer"
        own = await _until(events, claudecode.ResultMessage, seen=seen)
        assert own.origin is not None and own.origin["kind"] == "task-notification"
        assert own.result is not None and own.result.startswith("on my own")
        kinds = {type(m) for m in seen}
        assert claudecode.TaskUpdatedMessage in kinds
        assert claudecode.CommandLifecycleMessage in kinds  # "completed" of our prompts

        # stop_task ends a running task; its end reaches the subscribers
        long = [m async for m in claudecode.stream(session, "start a long job")
                if isinstance(m, claudecode.TaskStartedMessage)]
        await claudecode.stop_task(session, long[0].task_id)

        def is_long(m: Any) -> bool:
            return m.task_id == long[0].task_id and m.status in ("stopped", "killed")

        stopped = await _until(events, (claudecode.TaskNotificationMessage,
                                        claudecode.TaskUpdatedMessage), is_long)
        assert stopped.task_id == long[0].task_id
        events.close()
        await claudecode.stop(session)


async def test_messages_before_anyone_subscribes_are_kept(opts: dict[str, Any],
                                                          fake: FakeAnthropic) -> None:
    fake.script(ToolUse("Bash", {"command": "sleep 0.5", "run_in_background": True,
                                 "description": "quick job"}, id="q"),
                Text("ok"), when=_is("go"))
    fake.default = Echo("on my own")
    async with otpy.open_node():
        session = await claudecode.start_link(allowed_tools=["Bash"], **opts)
        assert await claudecode.stream(session, "go").final_text() == "ok"
        with trio.fail_after(30):  # the task ends and the CLI answers it, unobserved
            while len(fake.messages_requests) < 3:
                await trio.sleep(0.05)
        async with claudecode.subscribe(session, timeout=30) as late:
            got: list[Any] = []
            own = await _until(late, claudecode.ResultMessage, seen=got)
        assert own.origin is not None and own.origin["kind"] == "task-notification"
        assert any(isinstance(m, claudecode.TaskNotificationMessage) for m in got)
        await claudecode.stop(session)


async def _prompts(*items: Any, pause: float = 0.0) -> AsyncIterator[Any]:
    for item in items:
        yield item
        await trio.sleep(pause)


async def test_streaming_input_and_stream_helpers(opts: dict[str, Any],
                                                  fake: FakeAnthropic) -> None:
    fake.script(Turn([Thinking("hmm", chunks=2), Text("Hello there", chunks=3)]),
                when=_is("hello"), times=4)
    fake.script(Turn([Text("checking"), ToolUse("Bash", {"command": "echo hi"}, id="b1")]),
                lambda r: Text(f"bash said {r.tool_result_text('b1').strip()}"),
                when=_is("run bash"), times=2)
    async with otpy.open_node():
        session = await claudecode.start_link(allowed_tools=["Bash"],
                                              include_partial_messages=True, **opts)
        # several user messages as they come: several answers, one stream
        stream = claudecode.stream(session, _prompts(
            "first", {"type": "user", "message": {"role": "user", "content": "second"}},
            [{"type": "text", "text": "third"}], pause=0.2))
        results = [m async for m in stream.filter_type(claudecode.ResultMessage)]
        assert results and all((r.result or "").startswith("echo #") for r in results)
        # the CLI may answer messages that queued up together in one turn
        assert sum(len(r.user_message_uuids) for r in results) == 3
        sent = str(fake.messages_requests[-1].messages)
        assert all(p in sent for p in ("first", "second", "third"))
        assert stream.result is results[-1]

        # an iterable that fails fails the stream, typed
        async def broken() -> AsyncIterator[str]:
            yield "one"
            raise ValueError("no more prompts")

        with pytest.raises(claudecode.StreamError) as info:
            await claudecode.stream(session, broken()).final_result()
        assert isinstance(info.value.reason, otpy.Crash)
        assert isinstance(info.value.reason.exception, ValueError)
        # the session goes on
        assert (await claudecode.stream(session, "plain").final_text()).startswith("echo #")

        # helpers
        deltas = [d async for d in claudecode.stream(session, "hello").content_deltas()]
        assert "".join(d.text or "" for d in deltas if d.type == "text_delta") == "Hello there"
        assert "".join(d.thinking or "" for d in deltas if d.type == "thinking_delta") == "hmm"
        assert {d.index for d in deltas if d.type == "text_delta"} == {1}

        seen: list[claudecode.Message] = []
        tools: list[str] = []
        text = await (claudecode.stream(session, "run bash").tap(seen.append)
                      .on_tool_use(lambda block: tools.append(block.name)).final_text())
        assert text == "bash said hi" and tools == ["Bash"]
        assert isinstance(seen[-1], claudecode.ResultMessage)
        assert any(isinstance(m, claudecode.PartialAssistantMessage) for m in seen)

        results_by_name = [b async for b in claudecode.stream(session, "run bash")
                           .tool_results_by_name("Bash")]
        assert [b.tool_use_id for b in results_by_name] == ["b1"]
        until = [m async for m in claudecode.stream(session, "hello").until_result()]
        assert isinstance(until[-1], claudecode.ResultMessage)
        assert sum(isinstance(m, claudecode.ResultMessage) for m in until) == 1
        kinds = [m async for m in claudecode.stream(session, "hello").filter_type("assistant")]
        assert kinds and all(isinstance(m, claudecode.AssistantMessage) for m in kinds)
        starts = [m async for m in claudecode.stream(session, "hello")
                  .filter_event_type("content_block_start")]
        assert len(starts) == 2
        await claudecode.stop(session)


async def test_query_takes_a_streaming_prompt(opts: dict[str, Any],
                                              fake: FakeAnthropic) -> None:
    def answer(request: RecordedRequest) -> Text:
        return Text(f"got {request.last_user_text}")

    fake.default = answer
    async with otpy.open_node():
        result = await claudecode.query(_prompts("only one"), **opts)
        assert result.result == "got only one"


async def test_a_cli_that_does_not_announce_turns_still_gets_its_answers(
        tmp_path: Path) -> None:
    """Without ``command_lifecycle`` lines (an older CLI, a stand-in such as the
    benchmarks' stub), everything while a query runs is that query's."""
    stub = ROOT / "bench" / "_stub_cli.py"
    cli = tmp_path / "claude"
    cli.write_text(f"#!/bin/sh\nexec {sys.executable} {stub} \"$@\"\n")
    cli.chmod(0o755)
    async with otpy.open_node():
        session = await claudecode.start_link(cli_path=str(cli), cwd=str(tmp_path))
        for _ in range(2):
            assert await claudecode.stream(session, "ping").final_text() == "pong"
        async with claudecode.subscribe(session) as events:
            with pytest.raises(otpy.Timeout):
                await events.next(timeout=0.2)  # nothing went outside the turns
        await claudecode.stop(session)
