"""The sans-IO CLI protocol machine: line framing, limits, control protocol, real CLI."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import trio
from _proto_driver import open_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from claudecode._messages import (
    AssistantMessage,
    PartialAssistantMessage,
    ResultMessage,
    SystemMessage,
    TextBlock,
    UnknownMessage,
    UserMessage,
)
from claudecode._options import Options, build_hooks_config, initialize_payload
from claudecode._protocol import (
    DEFAULT_MAX_BUFFER_SIZE,
    CanUseToolRequest,
    CLIProtocol,
    ControlCancelRequest,
    ControlErrorResponse,
    ControlRequest,
    ControlResponse,
    Event,
    HookCallbackRequest,
    MalformedLine,
    McpMessageRequest,
    OversizedLine,
    UnmatchedControlResponse,
    encode_line,
)
from claudecode._protocol_errors import (
    ControlRequestError,
    EncodeError,
    MalformedLineError,
    OversizedLineError,
    ProtocolStateError,
)
from claudecode.testing import FakeAnthropic, Text, ToolUse, Turn

RECORDINGS = Path(__file__).parent / "recordings"


@functools.cache
def recorded_stream() -> bytes:
    """All recordings concatenated: real CLI stdout bytes."""
    return b"".join(p.read_bytes() for p in sorted(RECORDINGS.glob("*.jsonl")))


def feed_chunks(data: bytes, cuts: list[int], **kw: Any) -> list[Event]:
    proto = CLIProtocol(**kw)
    events: list[Event] = []
    last = 0
    for cut in sorted(set(cuts)):
        events += proto.feed(data[last:cut])
        last = cut
    events += proto.feed(data[last:])
    events += proto.feed_eof()
    return events


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\n"


# -- framing -------------------------------------------------------------------


def test_recordings_parse_completely() -> None:
    data = recorded_stream()
    events = feed_chunks(data, [])
    lines = [raw for raw in data.split(b"\n") if raw.strip()]
    assert len(events) == len(lines)
    assert not any(isinstance(e, (MalformedLine, OversizedLine)) for e in events)
    kinds = {type(e) for e in events}
    assert {SystemMessage, AssistantMessage, UserMessage, ResultMessage} <= kinds
    assert PartialAssistantMessage in kinds and UnmatchedControlResponse in kinds


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 200_000), max_size=40))
def test_any_chunking_of_recorded_output_gives_the_same_events(cuts: list[int]) -> None:
    data = recorded_stream()
    whole = feed_chunks(data, [])
    cuts = [c % (len(data) + 1) for c in cuts]
    assert feed_chunks(data, cuts) == whole


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b'{"type":"assistant","message":{"content":[{"type":"text","text":"hi\\n"}]}}',
                b'{"type":"result","subtype":"success"}',
                b"not json at all",
                b"[1,2,3]",
                b"",
                b"   ",
                b'{"type":"control_cancel_request","request_id":"x"}',
                b'{"type":"new_thing","x":' + b"9" * 50 + b"}",
                b'{"type":"stream_event","event":{"type":"ping"},"pad":"' + b"p" * 300 + b'"}',
                '{"type":"user","message":{"content":"\u00e9\u2603"}}'.encode(),
                b'{"type":"system"}\r',
            ]
        ),
        max_size=30,
    ),
    st.lists(st.integers(0, 10_000), max_size=20),
    st.sampled_from([64, 100, 1024, DEFAULT_MAX_BUFFER_SIZE]),
)
def test_chunking_invariance_with_limits(lines: list[bytes], cuts: list[int], limit: int) -> None:
    data = b"\n".join(lines)
    cuts = [c % (len(data) + 1) for c in cuts]
    assert feed_chunks(data, cuts, max_buffer_size=limit) == feed_chunks(
        data, [], max_buffer_size=limit
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=10), st.integers(1, 500))
def test_arbitrary_bytes_never_raise(data: bytes, cuts: list[int], limit: int) -> None:
    proto = CLIProtocol(max_buffer_size=limit)
    events: list[Event] = []
    last = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        events += proto.feed(data[last:cut])
        assert proto.buffered <= limit
        last = cut
    events += proto.feed(data[last:]) + proto.feed_eof()
    for event in events:
        if isinstance(event, MalformedLine):
            assert event.line.strip() and len(event.line) <= limit
            assert isinstance(event.error(), MalformedLineError)
        if isinstance(event, OversizedLine):
            assert event.size > limit and len(event.head) <= 256


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 400), min_size=1, max_size=12),
    st.lists(st.integers(0, 6000), max_size=15),
)
def test_oversized_lines_are_skipped_and_later_lines_parse(
    sizes: list[int], cuts: list[int]
) -> None:
    limit = 200
    lines = [
        json.dumps({"type": "x", "i": i, "pad": "a" * n}).encode() for i, n in enumerate(sizes)
    ]
    data = b"\n".join(lines) + b"\n"
    cuts = [c % (len(data) + 1) for c in cuts]
    events = feed_chunks(data, cuts, max_buffer_size=limit)
    assert len(events) == len(lines)
    for raw, event in zip(lines, events, strict=True):
        if len(raw) > limit:
            assert isinstance(event, OversizedLine)
            assert event.size == len(raw) and event.limit == limit
            assert event.head == raw[:256]
            err = event.error()
            assert isinstance(err, OversizedLineError) and str(len(raw)) in str(err)
        else:
            assert isinstance(event, UnknownMessage) and event.raw == json.loads(raw)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 3000), st.lists(st.integers(0, 5000), max_size=12), st.booleans())
def test_oversized_result_line_ends_the_turn(position: int, cuts: list[int], marker: bool) -> None:
    pad = "x" * 3000
    obj = {"a": pad[:position], "type": "result" if marker else "other", "b": pad[position:]}
    data = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
    proto = CLIProtocol(max_buffer_size=1024)
    proto.user_message("hi")
    events: list[Event] = []
    last = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        events += proto.feed(data[last:cut])
        last = cut
    events += proto.feed(data[last:])
    (event,) = events
    assert isinstance(event, OversizedLine) and event.maybe_result is marker
    assert proto.turn_active is not marker
    assert proto.turns_completed == int(marker) and proto.last_result is None


def test_escaped_result_marker_in_text_does_not_count() -> None:
    text = 'see {"type":"result"} ' * 100
    data = line({"type": "assistant", "message": {"content": [{"type": "text", "text": text}]}})
    proto = CLIProtocol(max_buffer_size=1024)
    proto.user_message("hi")
    (event,) = proto.feed(data)
    assert isinstance(event, OversizedLine) and not event.maybe_result and proto.turn_active


def test_huge_line_is_not_held_in_memory() -> None:
    proto = CLIProtocol(max_buffer_size=1024)
    chunk = b"x" * 65536
    for _ in range(100):  # 6.4 MB of one line
        assert proto.feed(chunk) == []
        assert proto.buffered == 0
    events = proto.feed(b'tail\n{"type":"result","subtype":"success"}\n')
    assert isinstance(events[0], OversizedLine) and events[0].size == 6_553_604
    assert events[0].head == b"x" * 256
    assert isinstance(events[1], ResultMessage) and events[1].subtype == "success"


def test_default_limit_accepts_big_lines() -> None:
    big = line({"type": "user", "message": {"content": "z" * 5_000_000}})
    (event,) = CLIProtocol().feed(big)
    assert isinstance(event, UserMessage) and len(event.text) == 5_000_000


def test_malformed_lines_keep_their_bytes() -> None:
    proto = CLIProtocol()
    events = proto.feed(b'[SandboxDebug] hello\n{bad json}\n"str"\n\xff\xfe\n[' * 1 + b"\n")
    assert [type(e) for e in events] == [MalformedLine] * 5
    assert [e.line for e in events] == [  # type: ignore[union-attr]
        b"[SandboxDebug] hello",
        b"{bad json}",
        b'"str"',
        b"\xff\xfe",
        b"[",
    ]
    assert "object" in events[2].reason  # type: ignore[union-attr]


def test_deep_nesting_is_a_malformed_line() -> None:
    (event,) = CLIProtocol().feed(b"[" * 100_000 + b"\n")
    assert isinstance(event, MalformedLine)


def test_feed_eof_flushes_the_last_line_and_closes() -> None:
    proto = CLIProtocol(max_buffer_size=100)
    assert proto.feed(b'{"type":"result","subtype":"success"}') == []
    (event,) = proto.feed_eof()
    assert isinstance(event, ResultMessage)
    assert proto.feed_eof() == []
    with pytest.raises(ProtocolStateError):
        proto.feed(b"more")
    other = CLIProtocol(max_buffer_size=100)
    other.feed(b"y" * 500)
    (over,) = other.feed_eof()
    assert isinstance(over, OversizedLine) and over.size == 500


def test_bad_max_buffer_size() -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError):
            CLIProtocol(max_buffer_size=bad)  # type: ignore[arg-type]


# -- turn tracking and session id -------------------------------------------------


def test_turn_tracking_and_session_id() -> None:
    proto = CLIProtocol()
    assert not proto.turn_active and proto.session_id is None
    sent = json.loads(proto.user_message("hello", uuid="u-1"))
    assert sent == {
        "type": "user",
        "message": {"role": "user", "content": "hello"},
        "parent_tool_use_id": None,
        "session_id": "default",
        "uuid": "u-1",
    }
    assert proto.turn_active
    data = (RECORDINGS / "two_turns.jsonl").read_bytes()
    first_result = data.index(b'"type":"result"')
    cut = data.index(b"\n", first_result) + 1
    events = proto.feed(data[:cut])
    assert isinstance(events[-1], ResultMessage)
    assert not proto.turn_active and proto.turns_completed == 1
    assert proto.last_result is events[-1]
    assert proto.session_id == events[-1].session_id
    proto.user_message([TextBlock("again"), {"type": "text", "text": "!"}])
    assert proto.turn_active
    events = proto.feed(data[cut:])
    assert proto.turns_completed == 2 and not proto.turn_active


def test_user_message_blocks_and_extra() -> None:
    proto = CLIProtocol()
    out = json.loads(
        proto.user_message(
            [TextBlock("a"), {"type": "image", "source": {"type": "base64", "data": "x"}}],
            session_id="s",
            parent_tool_use_id="toolu_1",
            extra={"priority": "now"},
        )
    )
    assert out["message"]["content"] == [
        {"type": "text", "text": "a"},
        {"type": "image", "source": {"type": "base64", "data": "x"}},
    ]
    assert out["parent_tool_use_id"] == "toolu_1" and out["priority"] == "now"


def test_encode_line() -> None:
    assert encode_line({"a": "é\n"}) == '{"a":"é\\n"}\n'.encode()
    surrogate = encode_line({"s": "\ud800"})
    assert surrogate.decode("utf-8") == '{"s":"\\ud800"}\n'
    for bad in ({"x": object()}, {"n": float("nan")}, {1j: 1}):
        with pytest.raises(EncodeError):
            encode_line(bad)
    with pytest.raises(EncodeError):
        CLIProtocol().control_request("set_model", {"model": object()})


# -- control protocol ------------------------------------------------------------


def success(rid: str, payload: Any = None) -> bytes:
    body: dict[str, Any] = {"subtype": "success", "request_id": rid}
    if payload is not None:
        body["response"] = payload
    return line({"type": "control_response", "response": body})


def test_our_requests_are_matched_by_id() -> None:
    proto = CLIProtocol()
    rid1, _ = proto.control_request("interrupt")
    rid2, l2 = proto.control_request("set_model", {"model": "opus", "subtype": "ignored"})
    assert rid1 != rid2 and rid1.startswith("req_1_") and rid2.startswith("req_2_")
    assert json.loads(l2) == {
        "type": "control_request",
        "request_id": rid2,
        "request": {"subtype": "set_model", "model": "opus"},
    }
    assert proto.pending_requests == {rid1: "interrupt", rid2: "set_model"}
    (r2,) = proto.feed(success(rid2))
    assert r2 == ControlResponse(rid2, "set_model", {}, json.loads(success(rid2)))
    error = line(
        {
            "type": "control_response",
            "response": {
                "subtype": "error",
                "request_id": rid1,
                "error": "nope",
                "error_code": "unsupported_request",
            },
        }
    )
    (r1,) = proto.feed(error)
    assert isinstance(r1, ControlErrorResponse)
    assert (r1.request_id, r1.subtype, r1.error, r1.error_code) == (
        rid1,
        "interrupt",
        "nope",
        "unsupported_request",
    )
    exc = r1.exception()
    assert isinstance(exc, ControlRequestError) and "unsupported_request" in str(exc)
    assert proto.pending_requests == {}
    # A duplicate, an unknown id, a missing id, a junk response: typed, never a crash.
    events = proto.feed(
        success(rid2)
        + success("req_999")
        + line({"type": "control_response", "response": {"subtype": "success"}})
        + line({"type": "control_response", "response": "junk"})
    )
    assert [type(e) for e in events] == [UnmatchedControlResponse] * 4
    assert [e.request_id for e in events] == [rid2, "req_999", None, None]  # type: ignore[union-attr]


def test_forget_and_abandon() -> None:
    proto = CLIProtocol()
    rid, _ = proto.control_request("initialize", {"hooks": None})
    assert proto.forget_request(rid) == "initialize"
    assert proto.forget_request(rid) is None
    (late,) = proto.feed(success(rid, {"commands": []}))
    assert isinstance(late, UnmatchedControlResponse)
    a, _ = proto.control_request("mcp_status")
    b, _ = proto.control_request("interrupt")
    assert proto.abandon_pending() == {a: "mcp_status", b: "interrupt"}
    assert proto.pending_requests == {}


def test_error_response_without_message() -> None:
    proto = CLIProtocol()
    rid, _ = proto.control_request("interrupt")
    weird = line({"type": "control_response", "response": {"subtype": "boom", "request_id": rid}})
    (event,) = proto.feed(weird)
    assert isinstance(event, ControlErrorResponse) and "boom" in event.error


def test_incoming_requests() -> None:
    proto = CLIProtocol()
    events = proto.feed(
        line(
            {
                "type": "control_request",
                "request_id": "c1",
                "request": {
                    "subtype": "can_use_tool",
                    "tool_name": "Bash",
                    "input": {"command": "ls"},
                    "tool_use_id": "toolu_1",
                    "permission_suggestions": [{"type": "addRules"}],
                    "decision_reason": "ask",
                    "blocked_path": "/x",
                },
            }
        )
        + line(
            {
                "type": "control_request",
                "request_id": "c2",
                "request": {
                    "subtype": "hook_callback",
                    "callback_id": "hook_3",
                    "input": {"hook_event_name": "PreToolUse"},
                    "tool_use_id": None,
                },
            }
        )
        + line(
            {
                "type": "control_request",
                "request_id": "c3",
                "request": {"subtype": "mcp_message", "server_name": "s", "message": {"id": 1}},
            }
        )
        + line({"type": "control_request", "request_id": "c4", "request": {"subtype": "future"}})
        + line({"type": "control_request", "request_id": 5, "request": None})
    )
    can, hook, mcp, other, junk = events
    assert isinstance(can, CanUseToolRequest)
    assert (can.tool_name, can.input, can.tool_use_id, can.blocked_path) == (
        "Bash",
        {"command": "ls"},
        "toolu_1",
        "/x",
    )
    assert can.permission_suggestions == [{"type": "addRules"}] and can.decision_reason == "ask"
    assert isinstance(hook, HookCallbackRequest) and hook.callback_id == "hook_3"
    assert hook.input == {"hook_event_name": "PreToolUse"} and hook.tool_use_id is None
    assert isinstance(mcp, McpMessageRequest) and mcp.server_name == "s"
    assert mcp.message == {"id": 1}
    assert type(other) is ControlRequest and other.subtype == "future"
    assert type(junk) is ControlRequest and junk.request_id == "5" and junk.subtype == ""
    assert set(proto.incoming_requests) == {"c1", "c2", "c3", "c4", "5"}

    answer = json.loads(proto.control_response_success("c1", {"behavior": "allow"}))
    assert answer == {
        "type": "control_response",
        "response": {"subtype": "success", "request_id": "c1", "response": {"behavior": "allow"}},
    }
    assert json.loads(proto.control_response_success("c4"))["response"]["response"] == {}
    err = json.loads(proto.control_response_error("c2", "hook crashed"))
    assert err["response"] == {"subtype": "error", "request_id": "c2", "error": "hook crashed"}
    (cancel,) = proto.feed(line({"type": "control_cancel_request", "request_id": "c3"}))
    assert cancel == ControlCancelRequest(
        "c3", {"type": "control_cancel_request", "request_id": "c3"}
    )
    assert not proto.is_incoming_pending("c3") and proto.is_incoming_pending("5")
    assert set(proto.incoming_requests) == {"5"}


# -- against the real CLI -----------------------------------------------------------


class FakeMcpServer:
    """Just enough of an in-process MCP server for the options and the wire test."""

    __claudecode_sdk_mcp_server__ = True

    def __init__(self, name: str) -> None:
        self.name = name

    def answer(self, message: dict[str, Any]) -> dict[str, Any]:
        method = message.get("method")
        if method == "initialize":
            result: dict[str, Any] = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": self.name, "version": "1.0"},
            }
        elif method == "tools/list":
            schema = {"type": "object", "properties": {"a": {"type": "number"}}}
            result = {"tools": [{"name": "add", "description": "Add", "inputSchema": schema}]}
        elif method == "tools/call":
            args = message["params"]["arguments"]
            result = {"content": [{"type": "text", "text": str(args["a"] + args["b"])}]}
        else:  # notifications are acknowledged too
            return {"jsonrpc": "2.0", "result": {}}
        return {"jsonrpc": "2.0", "id": message["id"], "result": result}


def _hook(*args: Any) -> None:  # pragma: no cover - never called (the test answers)
    pass


async def _allow(*args: Any) -> None:  # pragma: no cover - never called
    pass


async def test_real_cli_hooks_permissions_and_in_process_mcp() -> None:
    server = FakeMcpServer("calc")
    options = Options(
        mcp_servers={"calc": server},
        can_use_tool=_allow,
        hooks={
            "PreToolUse": [{"matcher": "mcp__calc__add", "hooks": [_hook]}],
            "PostToolUse": [_hook],
        },
    )
    hooks_config, specs = build_hooks_config(options.hooks)
    assert [s.callback_id for s in specs] == ["hook_0", "hook_1"]
    order: list[str] = []
    async with FakeAnthropic.serve(seed=3) as fake:
        fake.script(
            Turn([Text("adding"), ToolUse("mcp__calc__add", {"a": 2, "b": 3})]),
            Text("the sum is 5"),
        )
        with tempfile.TemporaryDirectory() as tmp:
            async with open_cli(fake, options, Path(tmp)) as cli:
                assert "--permission-prompt-tool=stdio" in cli.argv
                init_id, init_line = cli.proto.control_request(
                    "initialize", initialize_payload(options, hooks_config)
                )
                await cli.send(init_line)
                await cli.send(cli.proto.user_message("add 2 and 3"))
                while True:
                    event = await cli.next_event()
                    if isinstance(event, McpMessageRequest):
                        assert event.server_name == "calc"
                        method = event.message.get("method")
                        order.append(f"mcp:{method}")
                        if init_id in cli.proto.pending_requests:
                            order.append("mcp-while-initialize-pending")
                        reply = {"mcp_response": server.answer(event.message)}
                        await cli.send(cli.proto.control_response_success(event.request_id, reply))
                    elif isinstance(event, CanUseToolRequest):
                        order.append(f"can_use_tool:{event.tool_name}")
                        allow = {"behavior": "allow", "updatedInput": event.input}
                        await cli.send(cli.proto.control_response_success(event.request_id, allow))
                    elif isinstance(event, HookCallbackRequest):
                        order.append(f"hook:{event.callback_id}:{event.input['hook_event_name']}")
                        await cli.send(cli.proto.control_response_success(event.request_id, {}))
                    elif isinstance(event, ControlResponse):
                        assert event.request_id == init_id and event.subtype == "initialize"
                        assert isinstance(event.response.get("commands"), list)
                        order.append("initialized")
                    elif isinstance(event, ResultMessage):
                        break
                    else:
                        assert not isinstance(event, (MalformedLine, OversizedLine))
                assert event.subtype == "success" and event.result == "the sum is 5"
                assert not cli.proto.turn_active and cli.proto.session_id == event.session_id
    assert order[0] == "mcp:initialize" and order[1] == "mcp-while-initialize-pending"
    assert "initialized" in order
    tool_part = [o for o in order if o.startswith(("hook", "can_use", "mcp:tools/call"))]
    assert tool_part == [
        "hook:hook_0:PreToolUse",
        "can_use_tool:mcp__calc__add",
        "mcp:tools/call",
        "hook:hook_1:PostToolUse",
    ]


async def test_real_cli_interrupt_and_unsupported_request() -> None:
    options = Options(include_partial_messages=True)
    async with FakeAnthropic.serve(seed=4) as fake:
        fake.script(Turn([Text("one two three four five six", chunks=30)], chunk_delay=0.05))
        with tempfile.TemporaryDirectory() as tmp:
            async with open_cli(fake, options, Path(tmp), max_buffer_size=1 << 20) as cli:
                await cli.send(cli.proto.user_message("talk slowly"))
                await cli.next_event(
                    lambda e: isinstance(e, PartialAssistantMessage) and e.text_delta is not None
                )
                rid, interrupt = cli.proto.control_request("interrupt")
                await cli.send(interrupt)
                answer = await cli.next_event(lambda e: isinstance(e, ControlResponse))
                assert isinstance(answer, ControlResponse)
                assert answer.request_id == rid and answer.subtype == "interrupt"
                result = await cli.next_event(lambda e: isinstance(e, ResultMessage))
                assert isinstance(result, ResultMessage)
                assert result.subtype == "error_during_execution"
                assert result.terminal_reason == "aborted_streaming"
                assert not cli.proto.turn_active

                bogus, bogus_line = cli.proto.control_request("no_such_subtype", {"x": 1})
                await cli.send(bogus_line)
                error = await cli.next_event(lambda e: isinstance(e, ControlErrorResponse))
                assert isinstance(error, ControlErrorResponse)
                assert error.request_id == bogus and error.error_code == "unsupported_request"
                assert cli.proto.pending_requests == {}

                await cli.send(cli.proto.user_message("still there?"))
                final = await cli.next_event(lambda e: isinstance(e, ResultMessage))
                assert isinstance(final, ResultMessage) and final.subtype == "success"
                assert cli.proto.turns_completed == 2
                assert not any(isinstance(e, (MalformedLine, OversizedLine)) for e in cli.events)


async def test_real_cli_oversized_tool_result_does_not_wedge() -> None:
    """A tool result line over the limit is skipped; the turn still completes."""
    options = Options(allowed_tools=["Bash"])
    async with FakeAnthropic.serve(seed=5) as fake:
        fake.script(
            ToolUse("Bash", {"command": "true", "description": "d" * 100_000}),
            Text("done"),
        )
        with tempfile.TemporaryDirectory() as tmp:
            async with open_cli(fake, options, Path(tmp), max_buffer_size=64 * 1024) as cli:
                await cli.send(cli.proto.user_message("print a lot"))
                result = await cli.next_event(lambda e: isinstance(e, ResultMessage))
                assert isinstance(result, ResultMessage) and result.result == "done"
                oversized = [e for e in cli.events if isinstance(e, OversizedLine)]
                assert oversized and all(e.size > 64 * 1024 for e in oversized)
                assert oversized[0].head.startswith(b'{"type":"assistant"')
                with trio.fail_after(1):
                    assert cli.proto.buffered < 64 * 1024
