"""Stream helpers and ``claudecode.query`` over the real CLI against FakeAnthropic."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import trio
from _session_env import cli_children, fake, no_orphans, opts

import claudecode
import otpy
from claudecode import ResultError, StreamError
from claudecode.testing import APIError, FakeAnthropic, Text, Thinking, ToolUse, Turn

__all__ = ["fake", "no_orphans", "opts"]  # fixtures used by name


async def test_collect_pairs_tool_calls_with_results(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    notes = Path(opts["cwd"]) / "notes.txt"
    notes.write_text("the secret is 42\n")
    fake.script(Turn([Thinking("let me read it"), ToolUse("Read", {"file_path": str(notes)})]),
                Text("The secret is 42."))
    async with otpy.open_node():
        session = await claudecode.start_link(**opts)
        got = await claudecode.stream(session, "what is the secret?").collect()
        assert got.text == "The secret is 42."
        assert got.thinking == "let me read it"
        assert len(got.tool_calls) == 1
        use, result = got.tool_calls[0]
        assert use.name == "Read" and use.input == {"file_path": str(notes)}
        assert result is not None and result.tool_use_id == use.id
        assert "the secret is 42" in str(result.content)
        assert got.result == "The secret is 42." and got.is_error is False
        assert got.session_id == await claudecode.get_session_id(session)
        assert got.num_turns == 2 and got.stop_reason == "end_turn"
        assert isinstance(got.usage, dict) and got.usage["output_tokens"] > 0
        assert got.total_cost_usd is not None and got.total_cost_usd >= 0
        assert isinstance(got.result_message, claudecode.ResultMessage)
        assert isinstance(got.messages[-1], claudecode.ResultMessage)


async def test_tool_uses_and_tool_results(opts: dict[str, Any], fake: FakeAnthropic) -> None:
    notes = Path(opts["cwd"]) / "a.txt"
    notes.write_text("alpha\n")
    script = (ToolUse("Read", {"file_path": str(notes)}), Text("ok"))
    fake.script(*script, times=2)
    async with otpy.open_node():
        session = await claudecode.start_link(**opts)
        uses = [u async for u in claudecode.stream(session, "read").tool_uses()]
        assert [u.name for u in uses] == ["Read"]
        results = [r async for r in claudecode.stream(session, "again").tool_results()]
        assert len(results) == 1 and "alpha" in str(results[0].content)


async def test_text_content_and_deltas(opts: dict[str, Any], fake: FakeAnthropic) -> None:
    fake.script(Turn([Thinking("mull it over", chunks=3), Text("hello brave new world", chunks=4)]))
    fake.script(Turn([Thinking("again", chunks=2), Text("second answer", chunks=3)]))
    fake.script(Turn([Text("one"), Text("two")]))
    async with otpy.open_node():
        session = await claudecode.start_link(include_partial_messages=True, **opts)
        deltas = [d async for d in claudecode.stream(session, "a").text_deltas()]
        assert len(deltas) == 4 and "".join(deltas) == "hello brave new world"
        thinking = [d async for d in claudecode.stream(session, "b").thinking_deltas()]
        assert len(thinking) == 2 and "".join(thinking) == "again"
        texts = [t async for t in claudecode.stream(session, "c").text_content()]
        assert texts == ["one", "two"]


async def test_thinking_content(opts: dict[str, Any], fake: FakeAnthropic) -> None:
    fake.script(Turn([Thinking("deep thought"), Text("42")]))
    async with otpy.open_node():
        session = await claudecode.start_link(**opts)
        assert [t async for t in claudecode.stream(session, "q").thinking_content()] == [
            "deep thought"]


async def test_final_text_and_result_raise_result_error_on_error_results(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    fake.script(APIError(529), APIError(529), APIError(529))
    async with otpy.open_node():
        session = await claudecode.start_link(**opts)
        with pytest.raises(ResultError) as info:
            await claudecode.stream(session, "a").final_text()
        result = info.value.result
        assert isinstance(result, claudecode.ResultMessage) and result.is_error
        assert result.terminal_reason == "api_error"
        with pytest.raises(ResultError):
            await claudecode.stream(session, "b").final_result()
        got = await claudecode.stream(session, "c").collect()  # collect reports, never raises
        assert got.is_error is True
        ok = await claudecode.stream(session, "d").final_result()
        assert ok.is_error is False and ok.result is not None and ok.result.endswith(": d")


async def test_prompt_as_content_blocks(opts: dict[str, Any], fake: FakeAnthropic) -> None:
    async with otpy.open_node():
        session = await claudecode.start_link(**opts)
        text = await claudecode.stream(
            session, [claudecode.TextBlock(text="block prompt")]).final_text()
        assert text == "echo #2: block prompt"
        text = await claudecode.stream(session, [{"type": "text", "text": "dict prompt"}]
                                       ).final_text()
        assert text == "echo #4: dict prompt"


async def test_bad_prompts_are_rejected(opts: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="prompt"):
        claudecode.stream("anyone", 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        claudecode.stream("anyone", "x", timeout=-1)
    async with otpy.open_node():
        session = await claudecode.start_link(**opts)
        with pytest.raises(TypeError, match="JSON"):
            await claudecode.stream(session, [{"type": "text", "text": object()}]).collect()
        assert await claudecode.alive(session)


async def test_a_stream_is_consumed_once(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        session = await claudecode.start_link(**opts)
        s = claudecode.stream(session, "once")
        first = [m async for m in s]
        assert isinstance(first[-1], claudecode.ResultMessage)
        assert s.result is first[-1]
        assert [m async for m in s] == []


async def test_stream_to_a_missing_session(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        with pytest.raises(StreamError) as info:
            await claudecode.stream("nobody", "hi").collect()
        assert info.value.reason == otpy.NoProc()


async def test_stream_must_be_consumed_by_its_process(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        session = await claudecode.start_link(**opts)
        s = claudecode.stream(session, "hi")
        await s.__anext__()
        me = otpy.self()

        async def other() -> None:
            try:
                await s.__anext__()
            except RuntimeError as exc:
                otpy.send(me, ("error", str(exc)))

        otpy.spawn(other)
        kind, text = await otpy.receive(timeout=5)
        assert kind == "error" and "process that started it" in text
        assert isinstance([m async for m in s][-1], claudecode.ResultMessage)


async def test_session_timeout_option_is_the_stream_default(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    fake.script(Turn([Text("late")], delay=30), when=lambda r: r.last_user_text == "slow")
    async with otpy.open_node():
        session = await claudecode.start_link(timeout=1.0, **opts)
        await claudecode.prewarm(session)
        t0 = time.monotonic()
        with pytest.raises(StreamError) as info:
            await claudecode.stream(session, "slow").collect()
        assert isinstance(info.value.reason, otpy.Timeout)
        assert 0.9 < time.monotonic() - t0 < 3
        # a per-stream timeout overrides it (None: wait as long as it takes)
        text = await claudecode.stream(session, "fine", timeout=None).final_text()
        assert text.endswith(": fine")


async def test_query_one_off(opts: dict[str, Any], fake: FakeAnthropic) -> None:
    async with otpy.open_node():
        before = set(otpy.registered())
        result = await claudecode.query("hello", system_prompt="Be brief.", **opts)
        assert isinstance(result, claudecode.ResultMessage)
        assert result.result == "echo #2: hello" and not result.is_error
        assert "Be brief." in fake.messages_requests[-1].system_text
        assert set(otpy.registered()) == before

        fake.script(APIError(529))
        with pytest.raises(ResultError):
            await claudecode.query("fail", **opts)


async def test_query_stops_its_session_when_the_caller_dies(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    fake.default = Turn([Text("never")], delay=30)
    async with otpy.open_node():
        me = otpy.self()

        async def caller() -> None:
            otpy.send(me, ("started", otpy.self()))
            await claudecode.query("hang", **opts)

        pid = otpy.spawn(caller)
        await otpy.receive(lambda m: m[0] == "started", timeout=5)
        await fake.wait_for_requests(1, lambda r: r.is_messages)
        otpy.exit(pid, otpy.Kill())  # no finally runs in the caller
        # the owned session notices the caller's death and stops with its CLI
        with trio.fail_after(5):
            while cli_children():
                await trio.sleep(0.05)
