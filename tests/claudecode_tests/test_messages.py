"""Typed messages: recorded real CLI output, malformed input, round trips, cattrs hooks."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any, cast

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claudecode import _messages
from claudecode._messages import (
    AssistantMessage,
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    McpToolResultBlock,
    McpToolUseBlock,
    Message,
    PartialAssistantMessage,
    RedactedThinkingBlock,
    ResultMessage,
    ServerToolResultBlock,
    ServerToolUseBlock,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UnknownBlock,
    UnknownMessage,
    UserMessage,
    WebSearchToolResultBlock,
    converter,
    json_loads,
    parse_content_block,
    parse_line,
    parse_message,
    to_dict,
)

RECORDINGS = Path(__file__).parent / "recordings"
CLASS_OF: dict[str, type[Message]] = {
    "system": SystemMessage,
    "assistant": AssistantMessage,
    "user": UserMessage,
    "result": ResultMessage,
    "stream_event": PartialAssistantMessage,
    **_messages.OTHER_MESSAGE_CLASSES,
}


def class_of(data: dict[str, Any]) -> type[Message]:
    """The class a decoded line must parse to."""
    kind = data.get("type")
    if kind == "system":
        subtype = data.get("subtype")
        if isinstance(subtype, str) and subtype in _messages.SYSTEM_SUBTYPE_CLASSES:
            return _messages.SYSTEM_SUBTYPE_CLASSES[subtype]
    found = CLASS_OF.get(kind) if isinstance(kind, str) else None
    return found or UnknownMessage


def recording(name: str) -> list[dict[str, Any]]:
    with open(RECORDINGS / name, "rb") as f:
        return [json.loads(line) for line in f if line.strip()]


@functools.cache
def all_recorded_lines() -> list[bytes]:
    out = []
    for path in sorted(RECORDINGS.glob("*.jsonl")):
        out += [line.rstrip(b"\n") for line in path.read_bytes().splitlines() if line.strip()]
    return out


def messages(name: str) -> list[Message]:
    return [parse_message(d) for d in recording(name) if not d["type"].startswith("control_")]


# -- recorded real CLI output -------------------------------------------------


def test_every_recorded_line_parses_to_its_class_and_keeps_raw() -> None:
    lines = all_recorded_lines()
    assert len(lines) > 50
    for line in lines:
        data = json.loads(line)
        if data["type"].startswith("control_"):
            continue
        msg = parse_line(line)
        assert type(msg) is class_of(data)
        assert to_dict(msg) == data  # nothing lost
        assert msg.type == data["type"]


def test_plain_text_turn() -> None:
    init, assistant, result = messages("plain_text.jsonl")
    assert isinstance(init, SystemMessage) and init.is_init
    assert init.session_id and init.cwd and init.model
    assert "Bash" in (init.tools or [])
    assert init.permission_mode == "default"
    assert init.api_key_source == "ANTHROPIC_API_KEY"
    assert init.claude_code_version == "2.1.328"
    assert init.data is init.raw
    assert isinstance(assistant, AssistantMessage)
    assert assistant.text and assistant.content == [TextBlock(assistant.text, None, ANY_RAW)]
    assert assistant.message_id and assistant.message_id.startswith("msg_")
    assert assistant.session_id == init.session_id
    assert not assistant.is_api_error_message and not assistant.aborted
    assert isinstance(result, ResultMessage)
    assert result.subtype == "success" and result.is_error is False
    assert result.result == assistant.text
    assert result.num_turns == 1 and isinstance(result.duration_ms, int)
    assert isinstance(result.total_cost_usd, float) and result.usage
    assert result.session_id == init.session_id
    assert result.missing_fields == () and not result.is_malformed
    assert result.permission_denials == [] and result.stop_reason == "end_turn"


class _AnyRaw(dict[str, Any]):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, dict)

    __hash__ = None


ANY_RAW = _AnyRaw()


def test_tool_use_turn() -> None:
    msgs = messages("tool_use_read.jsonl")
    uses = [b for m in msgs if isinstance(m, AssistantMessage) for b in m.tool_uses]
    assert [u.name for u in uses] == ["Read"]
    assert uses[0].id.startswith("toolu_") and "file_path" in uses[0].input
    users = [m for m in msgs if isinstance(m, UserMessage)]
    assert len(users) == 1
    (tool_result,) = users[0].tool_results
    assert tool_result.tool_use_id == uses[0].id
    assert isinstance(tool_result.content, str) and tool_result.content
    assert isinstance(users[0].tool_use_result, dict)


def test_api_error_turn() -> None:
    msgs = messages("api_error_529.jsonl")
    (err,) = [m for m in msgs if isinstance(m, AssistantMessage)]
    assert err.model == "<synthetic>" and err.is_api_error_message
    assert err.api_error_status == 529 and err.error == "server_error"
    assert "529" in err.text
    (result,) = [m for m in msgs if isinstance(m, ResultMessage)]
    assert result.is_error and result.terminal_reason == "api_error"


def test_interrupted_turn() -> None:
    msgs = messages("interrupt.jsonl")
    aborted = [m for m in msgs if isinstance(m, AssistantMessage) and m.aborted]
    assert len(aborted) == 1
    interrupted = [m for m in msgs if isinstance(m, UserMessage)]
    assert interrupted[0].text == "[Request interrupted by user]"
    results = [m for m in msgs if isinstance(m, ResultMessage)]
    assert [r.subtype for r in results] == ["error_during_execution", "success"]
    assert results[0].terminal_reason == "aborted_streaming"


def test_partial_messages() -> None:
    msgs = messages("partial_messages.jsonl")
    partial = [m for m in msgs if isinstance(m, PartialAssistantMessage)]
    assert partial and all(p.session_id and p.uuid for p in partial)
    kinds = {p.event_type for p in partial}
    assert {"message_start", "content_block_delta", "message_stop"} <= kinds
    text = "".join(p.text_delta or "" for p in partial)
    thinking = "".join(p.thinking_delta or "" for p in partial)
    final = [m for m in msgs if isinstance(m, AssistantMessage)]
    assert text == "".join(m.text for m in final)
    thinking_blocks = [b for m in final for b in m.content if isinstance(b, ThinkingBlock)]
    assert thinking == "".join(b.thinking for b in thinking_blocks) != ""
    assert all(b.signature for b in thinking_blocks)
    statuses = [m for m in msgs if isinstance(m, SystemMessage) and m.subtype == "status"]
    assert statuses and all(not s.is_init and s.tools is None for s in statuses)


# -- every content block type -------------------------------------------------


@pytest.mark.parametrize(
    ("block", "cls", "checks"),
    [
        ({"type": "text", "text": "hi"}, TextBlock, {"text": "hi"}),
        ({"type": "thinking", "thinking": "t", "signature": "s"}, ThinkingBlock, {"thinking": "t"}),
        ({"type": "redacted_thinking", "data": "xx"}, RedactedThinkingBlock, {"data": "xx"}),
        (
            {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"c": 1}},
            ToolUseBlock,
            {"id": "t1", "name": "Bash", "input": {"c": 1}},
        ),
        (
            {"type": "tool_result", "tool_use_id": "t1", "content": "ok", "is_error": True},
            ToolResultBlock,
            {"tool_use_id": "t1", "content": "ok", "is_error": True},
        ),
        (
            {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {"q": "x"}},
            ServerToolUseBlock,
            {"name": "web_search"},
        ),
        (
            {"type": "web_search_tool_result", "tool_use_id": "s1", "content": [{"url": "u"}]},
            WebSearchToolResultBlock,
            {"tool_use_id": "s1", "content": [{"url": "u"}], "type": "web_search_tool_result"},
        ),
        (
            {"type": "web_fetch_tool_result", "tool_use_id": "s2", "content": {"a": 1}},
            ServerToolResultBlock,
            {"type": "web_fetch_tool_result", "content": {"a": 1}},
        ),
        (
            {"type": "mcp_tool_use", "id": "m", "name": "n", "server_name": "srv", "input": {}},
            McpToolUseBlock,
            {"server_name": "srv"},
        ),
        (
            {
                "type": "mcp_tool_result",
                "tool_use_id": "m",
                "content": [{"type": "text", "text": "r"}],
            },
            McpToolResultBlock,
            {"content": [TextBlock("r", None, {"type": "text", "text": "r"})]},
        ),
        (
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "AA"},
            },
            ImageBlock,
            {"media_type": "image/png"},
        ),
        (
            {"type": "document", "source": {"type": "text"}, "title": "T"},
            DocumentBlock,
            {"title": "T"},
        ),
        ({"type": "brand_new_block", "x": 1}, UnknownBlock, {"type": "brand_new_block"}),
    ],
)
def test_content_blocks(block: dict[str, Any], cls: type, checks: dict[str, Any]) -> None:
    parsed = parse_content_block(block)
    assert type(parsed) is cls
    assert parsed.raw is block
    for name, value in checks.items():
        assert getattr(parsed, name) == value
    msg = parse_message({"type": "assistant", "message": {"content": [block]}})
    assert isinstance(msg, AssistantMessage) and msg.content == [parsed]


def test_tool_result_with_nested_blocks() -> None:
    block = {
        "type": "tool_result",
        "tool_use_id": "t",
        "content": [
            {"type": "text", "text": "see image"},
            {"type": "image", "source": {"media_type": "image/jpeg", "data": "x"}},
        ],
    }
    parsed = parse_content_block(block)
    assert isinstance(parsed, ToolResultBlock) and isinstance(parsed.content, list)
    assert [type(b) for b in parsed.content] == [TextBlock, ImageBlock]


def test_non_dict_block_items_are_kept() -> None:
    msg = parse_message({"type": "assistant", "message": {"content": ["loose", 3, None]}})
    assert isinstance(msg, AssistantMessage)
    assert [b.raw["value"] for b in msg.content] == ["loose", 3, None]
    assert all(isinstance(b, UnknownBlock) and b.type == "" for b in msg.content)


# -- malformed known messages degrade, never raise ----------------------------


def test_result_missing_fields_is_still_a_result() -> None:
    data: dict[str, Any] = {"type": "result", "subtype": "error_max_turns"}
    msg = parse_message(data)
    assert isinstance(msg, ResultMessage) and msg.raw is data
    assert msg.is_malformed
    assert set(msg.missing_fields) == {
        "is_error",
        "session_id",
        "duration_ms",
        "duration_api_ms",
        "num_turns",
    }
    assert msg.is_error is True  # derived from the subtype
    assert msg.session_id is None and msg.num_turns is None

    bare = parse_message({"type": "result"})
    assert isinstance(bare, ResultMessage) and bare.subtype == "" and bare.is_error is True
    assert "subtype" in bare.missing_fields

    success = parse_message({"type": "result", "subtype": "success", "is_error": "no"})
    assert isinstance(success, ResultMessage) and success.is_error is False
    assert "is_error" in success.missing_fields


def test_result_float_counters_are_accepted() -> None:
    msg = parse_message(
        {
            "type": "result",
            "subtype": "success",
            "is_error": False,
            "session_id": "s",
            "duration_ms": 12.0,
            "duration_api_ms": 3,
            "num_turns": 1,
            "total_cost_usd": 1,
        }
    )
    assert isinstance(msg, ResultMessage)
    assert msg.duration_ms == 12 and msg.missing_fields == () and msg.total_cost_usd == 1.0


@pytest.mark.parametrize(
    "data",
    [
        {"type": "assistant"},
        {"type": "assistant", "message": "oops"},
        {"type": "assistant", "message": {"content": "plain string"}},
        {"type": "assistant", "message": {"content": {"not": "a list"}, "model": 5}},
        {"type": "user", "message": None},
        {"type": "user", "message": {"content": 7}},
        {"type": "system"},
        {"type": "system", "subtype": ["x"]},
        {"type": "stream_event", "event": "nope"},
        {"type": ["unhashable"]},
        {"type": {"a": 1}, "message": {"content": [{"type": ["x"]}]}},
        {},
    ],
)
def test_malformed_messages_degrade(data: dict[str, Any]) -> None:
    msg = parse_message(data)
    assert msg.raw is data
    if isinstance(msg, AssistantMessage):
        assert all(isinstance(b, ContentBlock) for b in msg.content)
        assert msg.model is None or isinstance(msg.model, str)
    if data.get("message") == {"content": "plain string"}:
        assert isinstance(msg, AssistantMessage) and msg.text == "plain string"


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
KNOWN_KEYS = [
    "type", "subtype", "message", "content", "text", "session_id", "uuid", "is_error",
    "num_turns", "duration_ms", "event", "model", "id", "tool_use_id", "input", "usage",
]  # fmt: skip


def mutate(value: Any, draw: Any) -> Any:
    """Recursively replace random parts of a recorded message with random JSON."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            choice = draw(st.integers(0, 9))
            if choice == 0:
                continue  # drop the key
            out[key] = draw(json_values) if choice == 1 else mutate(item, draw)
        return out
    if isinstance(value, list):
        return [mutate(v, draw) for v in value if draw(st.integers(0, 9)) != 0]
    return value


def check_types(obj: Any) -> None:
    """Every annotated attribute holds a value of its annotated type."""
    if isinstance(obj, list):
        for item in obj:
            check_types(item)
        return
    if not attrs.has(type(obj)):
        return
    attrs.resolve_types(type(obj))
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        text = str(field.type)
        if text in ("str", "<class 'str'>"):
            assert isinstance(value, str), (field.name, value)
        elif text in ("bool", "<class 'bool'>"):
            assert isinstance(value, bool), (field.name, value)
        elif text == "str | None":
            assert value is None or isinstance(value, str), (field.name, value)
        elif text == "int | None":
            assert value is None or (isinstance(value, int) and not isinstance(value, bool))
        elif text == "float | None":
            assert value is None or isinstance(value, float), (field.name, value)
        elif text.startswith("dict[") and "None" not in text:
            assert isinstance(value, dict), (field.name, value)
        elif text.startswith("list[") and "None" not in text:
            assert isinstance(value, list), (field.name, value)
        if field.name == "content":
            check_types(value)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_recorded_lines_never_raise_and_stay_typed(data: st.DataObject) -> None:
    original = json.loads(data.draw(st.sampled_from(all_recorded_lines())))
    mutated = mutate(original, data.draw)
    if not isinstance(mutated, dict):
        return
    msg = parse_message(mutated)
    assert msg.raw is mutated
    assert type(msg) is class_of(mutated)
    check_types(msg)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(KNOWN_KEYS), json_values, max_size=8),
    st.sampled_from(
        ["assistant", "user", "result", "system", "stream_event", "rate_limit_event", "x"]
    ),
)
def test_random_dicts_never_raise(data: dict[str, Any], kind: str) -> None:
    data["type"] = kind
    msg = parse_message(data)
    assert msg.type == kind
    check_types(msg)


def test_check_types_is_not_vacuous() -> None:
    with pytest.raises(AssertionError):
        check_types(TextBlock(5))  # type: ignore[arg-type]
    with pytest.raises(AssertionError):
        check_types(ResultMessage(num_turns="3"))  # type: ignore[arg-type]
    with pytest.raises(AssertionError):
        check_types(AssistantMessage([ThinkingBlock(None)]))  # type: ignore[arg-type]


def test_parse_message_rejects_non_dicts() -> None:
    with pytest.raises(TypeError):
        parse_message([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        parse_line(b"[1, 2]")
    with pytest.raises(ValueError):
        parse_line(b"{not json")


# -- JSON decoding -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": NaN}',
        b'{"big": 123456789012345678901234567890}',
        b'{"s": "\\ud800"}',
        '{"u": "\u00e9\U0001f600"}'.encode(),
        b'  {"a": 1}\r',
    ],
)
def test_json_loads_agrees_with_stdlib(text: bytes) -> None:
    ours = json_loads(text)
    theirs = json.loads(text)
    if "NaN" in text.decode():
        assert math.isnan(ours["a"])
    elif "big" in theirs:
        # Beyond 64 bits orjson yields the nearest double: exactly the value the
        # CLI (JavaScript, where every number is a double) had.
        assert ours == ({"big": float(theirs["big"])} if _messages._orjson else theirs)
    else:
        assert ours == theirs


def test_json_loads_too_deep_raises_recursion_error() -> None:
    with pytest.raises(RecursionError):
        json_loads(b"[" * 200_000)


# -- back to the wire ------------------------------------------------------------


texts = st.text(max_size=30)
blocks = st.one_of(
    st.builds(TextBlock, texts),
    st.builds(ThinkingBlock, texts, texts),
    st.builds(ToolUseBlock, texts, texts, st.dictionaries(st.text(max_size=5), st.integers())),
    st.builds(ToolResultBlock, texts, texts | st.none(), st.booleans() | st.none()),
    st.builds(RedactedThinkingBlock, texts),
)
opt_text = texts | st.none()


@given(
    st.lists(blocks, max_size=4),
    opt_text,
    opt_text,
    opt_text,
    st.booleans(),
    st.booleans(),
)
def test_hand_built_assistant_round_trips(
    content: list[ContentBlock],
    model: str | None,
    session_id: str | None,
    parent: str | None,
    aborted: bool,
    api_err: bool,
) -> None:
    msg = AssistantMessage(
        content,
        model=model,
        message_id="msg_1",
        session_id=session_id,
        parent_tool_use_id=parent,
        aborted=aborted,
        is_api_error_message=api_err,
    )
    wire = to_dict(msg)
    assert wire["type"] == "assistant"
    back = parse_message(json.loads(json.dumps(wire)))
    assert isinstance(back, AssistantMessage)

    def strip(m: AssistantMessage) -> AssistantMessage:
        return attrs.evolve(
            m, raw={}, content=[attrs.evolve(cast(Any, b), raw={}) for b in m.content]
        )

    assert strip(back) == strip(msg)
    assert [to_dict(b) for b in back.content] == [to_dict(b) for b in content]


@given(
    st.sampled_from(["success", "error_max_turns"]),
    st.booleans(),
    st.integers(0, 10**6),
    st.floats(0, 100),
    opt_text,
)
def test_hand_built_result_round_trips(
    subtype: str, is_error: bool, ms: int, cost: float, text: str | None
) -> None:
    msg = ResultMessage(
        subtype,
        is_error,
        "sid",
        text,
        {"input_tokens": 1},
        cost,
        2,
        ms,
        ms,
        terminal_reason="completed",
    )
    back = parse_message(json.loads(json.dumps(to_dict(msg))))
    assert attrs.evolve(cast(Any, back), raw={}) == msg


def test_hand_built_user_system_partial_round_trip() -> None:
    for msg in (
        UserMessage("hello", session_id="s", uuid="u", is_replay=True),
        UserMessage([ToolResultBlock("t", [TextBlock("x")], False)], tool_use_result={"a": 1}),
        SystemMessage("init", "s", cwd="/x", tools=["Bash"], permission_mode="plan"),
        PartialAssistantMessage({"type": "message_stop"}, "s", None, "u"),
    ):
        back = parse_message(json.loads(json.dumps(to_dict(msg))))
        assert type(back) is type(msg)
        assert to_dict(attrs.evolve(cast(Any, back), raw={})) == to_dict(msg)


def test_cattrs_converter_hooks() -> None:
    line = recording("plain_text.jsonl")[-1]
    msg = converter.structure(line, Message)
    assert isinstance(msg, ResultMessage) and msg.raw is line
    assert converter.structure(line, ResultMessage).subtype == "success"
    with pytest.raises(ValueError):
        converter.structure(line, UserMessage)
    assert converter.unstructure(msg) is line
    block = converter.structure({"type": "text", "text": "t"}, ContentBlock)
    assert block == TextBlock("t", None, {"type": "text", "text": "t"})
    assert converter.unstructure(TextBlock("z")) == {"type": "text", "text": "z"}
    assert converter.structure([line], list[Message])[0].raw is line


# -- the CLI's other line types ----------------------------------------------------------


def test_background_task_recording_is_typed() -> None:
    lines = [parse_message(d) for d in recording("background_task.jsonl")]
    started = [m for m in lines if isinstance(m, _messages.TaskStartedMessage)]
    assert started and started[0].is_backgrounded and started[0].task_type == "local_bash"
    assert isinstance(started[0], SystemMessage) and started[0].data is started[0].raw
    done = [m for m in lines if isinstance(m, _messages.TaskNotificationMessage)]
    assert done[0].task_id == started[0].task_id and done[0].status == "completed"
    updated = [m for m in lines if isinstance(m, _messages.TaskUpdatedMessage)]
    assert updated[0].status == "completed"
    life = [m for m in lines if isinstance(m, _messages.CommandLifecycleMessage)]
    assert [m.state for m in life] == ["queued", "started", "completed"]
    assert {m.command_uuid for m in life} == {"11111111-1111-4111-8111-111111111111"}
    results = [m for m in lines if isinstance(m, ResultMessage)]
    assert results[0].user_message_uuids == ["11111111-1111-4111-8111-111111111111"]
    assert results[0].origin is None
    assert results[1].origin is not None and results[1].origin["kind"] == "task-notification"
    assert results[1].user_message_uuids == []
    assert results[0].usage is not None and results[0].usage.input_tokens > 0
    assert results[0].usage["input_tokens"] == results[0].usage.input_tokens
    assert results[0].model_usage
    [(_model, per_model)] = results[0].model_usage.items()
    assert per_model.cost_usd > 0 and per_model.input_tokens > 0
    assert isinstance(per_model, dict) and per_model["costUSD"] == per_model.cost_usd
    changed = [m for m in lines if isinstance(m, _messages.BackgroundTasksChangedMessage)]
    assert changed[0].tasks[0]["task_id"] == started[0].task_id and changed[-1].tasks == []


def test_hooks_and_compact_recording_is_typed() -> None:
    lines = [parse_message(d) for d in recording("hooks_and_compact.jsonl")]
    started = [m for m in lines if isinstance(m, _messages.HookStartedMessage)]
    answered = [m for m in lines if isinstance(m, _messages.HookResponseMessage)]
    assert started[0].hook_event == started[0].hook_event_name == "PreToolUse"
    assert isinstance(started[0], _messages.HookEventMessage)
    assert answered[0].hook_id == started[0].hook_id and answered[0].outcome == "success"
    assert answered[0].exit_code == 0 and "checked" in answered[0].stdout
    status = [m for m in lines if isinstance(m, _messages.StatusMessage)]
    assert status[0].status == "compacting" and status[-1].compact_result == "success"
    [boundary] = [m for m in lines if isinstance(m, _messages.CompactBoundaryMessage)]
    assert boundary.trigger == "manual" and boundary.pre_tokens and boundary.post_tokens


SCHEMA_LINES: list[tuple[dict[str, Any], type[Message], dict[str, Any]]] = [
    ({"type": "rate_limit_event", "rate_limit_info": {
        "status": "allowed_warning", "resetsAt": 1700000000, "rateLimitType": "five_hour",
        "utilization": 0.91, "overageStatus": "allowed"}, "uuid": "u", "session_id": "s"},
     _messages.RateLimitEvent, {"session_id": "s"}),
    ({"type": "tool_progress", "tool_use_id": "t", "tool_name": "Bash",
      "parent_tool_use_id": None, "elapsed_time_seconds": 5, "uuid": "u", "session_id": "s"},
     _messages.ToolProgressMessage, {"tool_name": "Bash", "elapsed_time_seconds": 5.0}),
    ({"type": "auth_status", "isAuthenticating": True, "output": ["Opening browser"],
      "uuid": "u", "session_id": "s"},
     _messages.AuthStatusMessage, {"is_authenticating": True, "output": ["Opening browser"]}),
    ({"type": "tool_use_summary", "summary": "Read 3 files", "preceding_tool_use_ids": ["a"],
      "uuid": "u", "session_id": "s"},
     _messages.ToolUseSummaryMessage, {"summary": "Read 3 files",
                                       "preceding_tool_use_ids": ["a"]}),
    ({"type": "prompt_suggestion", "suggestion": "Add tests", "uuid": "u", "session_id": "s"},
     _messages.PromptSuggestionMessage, {"suggestion": "Add tests"}),
    ({"type": "conversation_reset", "new_conversation_id": "c", "trigger": "clear",
      "uuid": "u", "session_id": "s"},
     _messages.ConversationResetMessage, {"new_conversation_id": "c", "trigger": "clear"}),
    ({"type": "system", "subtype": "task_progress", "task_id": "t", "description": "d",
      "usage": {"total_tokens": 10, "tool_uses": 1, "duration_ms": 5},
      "last_tool_name": "Read", "summary": "reading", "uuid": "u", "session_id": "s"},
     _messages.TaskProgressMessage, {"usage": {"total_tokens": 10, "tool_uses": 1,
                                               "duration_ms": 5},
                                     "progress_summary": "reading"}),
    ({"type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 10,
      "retry_delay_ms": 500, "error_status": None, "error": "overloaded", "uuid": "u",
      "session_id": "s"},
     _messages.ApiRetryMessage, {"attempt": 1, "error_status": None}),
    ({"type": "system", "subtype": "hook_progress", "hook_id": "h", "hook_name": "n",
      "hook_event": "Stop", "stdout": "o", "stderr": "", "output": "o"},
     _messages.HookProgressMessage, {"stdout": "o"}),
    ({"type": "system", "subtype": "local_command_output", "content": "Usage: ..."},
     _messages.LocalCommandOutputMessage, {"content": "Usage: ..."}),
    ({"type": "system", "subtype": "files_persisted", "files": [{"filename": "a",
                                                                 "file_id": "f"}],
      "failed": [], "processed_at": "now"},
     _messages.FilesPersistedMessage, {"files": [{"filename": "a", "file_id": "f"}]}),
    ({"type": "system", "subtype": "elicitation_complete", "mcp_server_name": "m",
      "elicitation_id": "e"}, _messages.ElicitationCompleteMessage, {"elicitation_id": "e"}),
    ({"type": "system", "subtype": "notification", "key": "k", "text": "hi",
      "priority": "low"}, _messages.NotificationMessage, {"text": "hi"}),
    ({"type": "system", "subtype": "thinking_tokens", "estimated_tokens": 40,
      "estimated_tokens_delta": 8}, _messages.ThinkingTokensMessage, {"estimated_tokens": 40}),
]


@pytest.mark.parametrize(("line", "cls", "fields"), SCHEMA_LINES,
                         ids=[c.__name__ for _, c, _ in SCHEMA_LINES])
def test_other_line_types_are_typed_and_round_trip(
        line: dict[str, Any], cls: type[Message], fields: dict[str, Any]) -> None:
    """Lines shaped as the pinned CLI's own schema describes them (it prints these only
    in situations FakeAnthropic cannot bring about: a claude.ai login, long tools...)."""
    msg = parse_message(line)
    assert type(msg) is cls and msg.raw is line
    for name, value in fields.items():
        assert getattr(msg, name) == value, name
    assert converter.structure(line, cls) == msg
    assert to_dict(msg) is line
    check_types(msg)
    # built by hand, it unstructures to the wire form and parses back the same
    rebuilt = attrs.evolve(msg, raw={})
    again = parse_message(json.loads(json.dumps(to_dict(rebuilt))))
    for name, value in fields.items():
        assert getattr(again, name) == value, name


def test_rate_limit_info_is_typed() -> None:
    msg = parse_message(SCHEMA_LINES[0][0])
    assert isinstance(msg, _messages.RateLimitEvent)
    info = msg.rate_limit_info
    assert (info.status, info.resets_at, info.rate_limit_type, info.utilization,
            info.overage_status) == ("allowed_warning", 1700000000, "five_hour", 0.91, "allowed")
    assert info.raw is SCHEMA_LINES[0][0]["rate_limit_info"]
    bad = parse_message({"type": "rate_limit_event", "rate_limit_info": "nope"})
    assert isinstance(bad, _messages.RateLimitEvent) and bad.rate_limit_info.status == ""


def test_compaction_block_and_hand_built_usage() -> None:
    block = parse_content_block({"type": "compaction", "content": "summary so far"})
    assert isinstance(block, _messages.CompactionBlock) and block.content == "summary so far"
    assert to_dict(_messages.CompactionBlock("x")) == {"type": "compaction", "content": "x"}
    usage = _messages.Usage({"input_tokens": 3, "output_tokens": "many",
                             "cache_read_input_tokens": 2.0})
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens,
            usage.total_input_tokens) == (3, 0, 2, 5)
    assert json.loads(json.dumps(usage)) == dict(usage)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from([*KNOWN_KEYS, "rate_limit_info", "task_id", "patch", "tasks",
                                     "compact_metadata", "state", "command_uuid", "origin",
                                     "user_message_uuids", "modelUsage"]),
                    json_values, max_size=8),
    st.sampled_from([*_messages.OTHER_MESSAGE_CLASSES, "system"]),
    st.sampled_from([*_messages.SYSTEM_SUBTYPE_CLASSES, "init", "other"]),
)
def test_random_other_lines_never_raise(data: dict[str, Any], kind: str, subtype: str) -> None:
    line = {**data, "type": kind, "subtype": subtype}
    msg = parse_message(line)
    assert type(msg) is class_of(line) and msg.raw is line
    check_types(msg)
