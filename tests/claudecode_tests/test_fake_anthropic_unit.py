"""FakeAnthropic without the CLI: the sans-IO rendering, the script, and the HTTP server.

The HTTP tests talk to the server with a small h11 client over real loopback
sockets.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from pathlib import Path
from typing import Any

import h11
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from claudecode.testing import (
    APIError,
    Disconnect,
    Echo,
    FakeAnthropic,
    RecordedRequest,
    ScriptError,
    Text,
    Thinking,
    ToolUse,
    Turn,
)
from claudecode.testing._render import (
    Body,
    Drop,
    Finish,
    Head,
    IdSource,
    Wait,
    encode_sse,
    message_object,
    plan_reply,
    render_turn,
    split_text,
    stream_events,
)
from claudecode.testing._script import Script

# -- helpers -----------------------------------------------------------------


def _request(body: Any, method: str = "POST", path: str = "/v1/messages") -> RecordedRequest:
    raw = json.dumps(body).encode() if body is not None else b""
    return RecordedRequest(
        index=0,
        method=method,
        path=path,
        query={},
        headers={},
        body=raw,
        json=body,
        received_at=0.0,
    )


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _parse_sse(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in data.decode().split("\n\n"):
        if not frame:
            continue
        fields = dict(line.split(": ", 1) for line in frame.split("\n"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def _accumulate(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Rebuild the final message from SSE events, as an API client does."""
    message: dict[str, Any] = {}
    partial_json: dict[int, str] = {}
    for name, data in events:
        assert data["type"] == name
        if name == "message_start":
            message = dict(data["message"])
            message["content"] = []
        elif name == "content_block_start":
            assert data["index"] == len(message["content"])
            message["content"].append(dict(data["content_block"]))
        elif name == "content_block_delta":
            block, delta = message["content"][data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            else:
                assert delta["type"] == "input_json_delta"
                partial_json[data["index"]] = (
                    partial_json.get(data["index"], "") + (delta["partial_json"])
                )
        elif name == "content_block_stop":
            index = data["index"]
            if index in partial_json:
                message["content"][index]["input"] = json.loads(partial_json[index])
        elif name == "message_delta":
            message.update(data["delta"])
            message["usage"] = {**message["usage"], **data["usage"]}
    return message


class Client:
    """A minimal keep-alive HTTP/1.1 client (h11) for the tests."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def connect(cls, fake: FakeAnthropic) -> Client:
        return cls(await trio.open_tcp_stream("127.0.0.1", fake.port))

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: list[tuple[str, str]] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        if self.conn.our_state is h11.DONE:
            self.conn.start_next_cycle()
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        all_headers = [("host", "127.0.0.1"), ("content-length", str(len(data)))]
        if body is not None:
            all_headers.append(("content-type", "application/json"))
        all_headers += headers or []
        await self.stream.send_all(
            self.conn.send(h11.Request(method=method, target=path, headers=all_headers)) or b""
        )
        await self.stream.send_all(self.conn.send(h11.Data(data=data)) or b"")
        await self.stream.send_all(self.conn.send(h11.EndOfMessage()) or b"")
        status, response_headers, chunks = 0, {}, []
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some(65536))
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                response_headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return status, response_headers, b"".join(chunks)
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("server closed the connection")

    async def aclose(self) -> None:
        await self.stream.aclose()


MESSAGES_BODY = {"model": "claude-test", "max_tokens": 10, "messages": [_user("hi")]}

# -- sans-IO: rendering ------------------------------------------------------


@given(st.text(max_size=200), st.integers(min_value=1, max_value=50))
def test_split_text_pieces_concatenate_back(text: str, chunks: int) -> None:
    pieces = split_text(text, chunks)
    assert "".join(pieces) == text
    if text:
        assert len(pieces) == min(chunks, len(text))
        assert all(pieces)
        assert max(map(len, pieces)) - min(map(len, pieces)) <= 1
    else:
        assert pieces == [""]


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
_blocks = st.one_of(
    st.builds(Text, st.text(max_size=60), st.integers(1, 8)),
    st.builds(Thinking, st.text(max_size=60), st.text(min_size=1, max_size=10), st.integers(1, 8)),
    st.builds(
        ToolUse,
        st.sampled_from(["Read", "Bash", "mcp__srv__tool"]),
        st.dictionaries(st.text(max_size=8), _json_values, max_size=4),
        st.none(),
        st.integers(1, 8),
    ),
)


@given(st.lists(_blocks, min_size=1, max_size=4), st.integers(0, 2**32))
def test_stream_events_rebuild_the_non_streaming_message(blocks: list[Any], seed: int) -> None:
    turn = Turn(blocks)
    rendered = render_turn(turn, _request(MESSAGES_BODY), IdSource(random.Random(seed)))
    events = stream_events(turn, rendered)
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == len(blocks)
    assert names.count("content_block_stop") == len(blocks)
    wire = b"".join(encode_sse(name, data) for name, data in events)
    assert _accumulate(_parse_sse(wire)) == message_object(rendered)


def test_rendered_turn_has_realistic_ids_usage_and_stop_reason() -> None:
    ids = IdSource(random.Random(1))
    request = _request(MESSAGES_BODY)
    tool_turn = render_turn(Turn([Text("a"), ToolUse("Read", {"file_path": "/x"})]), request, ids)
    assert tool_turn.message_id.startswith("msg_01") and len(tool_turn.message_id) == 28
    assert tool_turn.blocks[1]["id"].startswith("toolu_01")
    assert tool_turn.stop_reason == "tool_use"
    assert tool_turn.model == "claude-test"
    assert tool_turn.input_tokens == len(request.body) // 4
    text_turn = render_turn(Turn(Text("x" * 40), model="m", output_tokens=7), request, ids)
    assert (text_turn.stop_reason, text_turn.model, text_turn.output_tokens) == ("end_turn", "m", 7)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
        (418, "invalid_request_error"),
        (503, "api_error"),
    ],
)
def test_api_error_type_follows_the_status(status: int, kind: str) -> None:
    error = APIError(status)
    assert error.effective_type == kind
    assert error.effective_message
    assert APIError(status, error_type="custom", message="m").effective_type == "custom"


def test_reply_validation() -> None:
    with pytest.raises(ValueError):
        Text("x", chunks=0)
    with pytest.raises(ValueError):
        Turn(Text("x"), delay=-1)


def test_plans_for_disconnects_delays_and_non_streaming() -> None:
    ids = IdSource(random.Random(2))
    streaming = _request({**MESSAGES_BODY, "stream": True})
    plan = plan_reply(Turn(Text("abcdef", chunks=3), disconnect_after=4), streaming, ids)
    assert isinstance(plan[0], Head) and isinstance(plan[-1], Drop)
    assert sum(isinstance(step, Body) for step in plan) == 4
    plan = plan_reply(Turn(Text("ab"), delay=1.5, chunk_delay=0.25), streaming, ids)
    assert plan[0] == Wait(1.5) and isinstance(plan[-1], Finish)
    assert plan.count(Wait(0.25)) == sum(isinstance(s, Body) for s in plan) - 1
    plan = plan_reply(Text("whole"), _request(MESSAGES_BODY), ids)
    assert [type(s) for s in plan] == [Head, Body, Finish]
    body = plan[1]
    assert isinstance(body, Body)
    assert json.loads(body.data)["content"] == [{"type": "text", "text": "whole"}]
    assert plan_reply(Disconnect(delay=2), streaming, ids) == [Wait(2), Drop()]


# -- sans-IO: requests and the script ------------------------------------------


def test_recorded_request_views() -> None:
    body = {
        "model": "m",
        "stream": True,
        "system": [{"type": "text", "text": "sys A"}, {"type": "text", "text": "sys B"}],
        "tools": [{"name": "Read"}, {"name": "Bash"}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>\nctx\n</system-reminder>"},
                    {"type": "text", "text": "the question"},
                ],
            },
            {"role": "system", "content": "env"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read"}]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "file body"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "t2",
                        "content": [{"type": "text", "text": "second"}],
                    },
                ],
            },
        ],
    }
    request = _request(body)
    assert request.is_messages and request.stream and request.model == "m"
    assert request.system_text == "sys A\nsys B"
    assert request.tool_names == ["Read", "Bash"]
    assert request.last_user_text == "the question"
    assert request.tool_result_text() == "file body"
    assert request.tool_result_text("t2") == "second"
    assert request.tool_result_text("nope") == ""
    assert "messages=4" in request.describe()
    odd = _request(["not", "an", "object"])
    assert (odd.messages, odd.model, odd.last_user_text, odd.tool_results) == ([], None, "", [])


def test_script_is_fifo_with_conditions_times_and_a_default() -> None:
    script = Script()
    plain = _request(MESSAGES_BODY)
    tooled = _request({**MESSAGES_BODY, "tools": [{"name": "Read"}]})
    script.add(Text("needs tools"), when=lambda r: bool(r.tool_names))
    script.add(Text("a"), Text("b"), times=2)
    assert len(script) == 5
    assert script.next_reply(plain) == Text("a")  # passes the conditional entry by
    assert script.next_reply(tooled) == Text("needs tools")
    assert [script.next_reply(plain) for _ in range(3)] == [Text("b"), Text("a"), Text("b")]
    assert script.next_reply(plain) == Echo()
    script.default = APIError(529)
    assert script.next_reply(plain) == APIError(529)


def test_script_resolves_functions_and_reports_their_mistakes() -> None:
    script = Script()
    request = _request(MESSAGES_BODY)
    script.add(lambda r: lambda r2: Text(f"{len(r2.messages)} message"))
    assert script.next_reply(request) == Text("1 message")
    script.add(lambda r: 1 / 0)  # type: ignore[arg-type, return-value]
    with pytest.raises(ScriptError, match="ZeroDivisionError"):
        script.next_reply(request)
    script.add(lambda r: "not a reply")  # type: ignore[arg-type, return-value]
    with pytest.raises(ScriptError, match="not a scripted reply"):
        script.next_reply(request)
    with pytest.raises(ScriptError):
        script.add(42)  # type: ignore[arg-type]
    script.add(Text("unreachable"), when=lambda r: 1 / 0 > 0)
    with pytest.raises(ScriptError, match="condition"):
        script.next_reply(request)
    assert len(script) == 0


# -- the HTTP server -----------------------------------------------------------


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async with FakeAnthropic.serve() as fake:
        client = await Client.connect(fake)
        status, _, body = await client.request("POST", "/v1/messages/count_tokens", MESSAGES_BODY)
        assert status == 200 and json.loads(body)["input_tokens"] > 0
        status, headers, body = await client.request(
            "POST", "/v1/messages?beta=true", MESSAGES_BODY
        )
        assert status == 200 and headers["content-type"] == "application/json"
        message = json.loads(body)
        assert message["content"] == [{"type": "text", "text": "echo #1: hi"}]
        assert message["usage"]["input_tokens"] > 0 and message["id"].startswith("msg_")
        status, _, body = await client.request("HEAD", "/api/hello")
        assert (status, body) == (200, b"")
        status, _, body = await client.request("GET", "/v1/models")
        assert status == 200 and json.loads(body)["data"]
        await client.aclose()
    assert [r.path for r in fake.requests] == [
        "/v1/messages/count_tokens",
        "/v1/messages",
        "/api/hello",
        "/v1/models",
    ]
    assert fake.requests[1].query == {"beta": "true"}
    assert [r.index for r in fake.requests] == [0, 1, 2, 3]


async def test_unknown_paths_get_a_json_404() -> None:
    async with FakeAnthropic.serve() as fake:
        client = await Client.connect(fake)
        status, _, body = await client.request("GET", "/v1/nothing/here")
        assert status == 404
        error = json.loads(body)
        assert error["type"] == "error" and error["error"]["type"] == "not_found_error"
        assert error["request_id"].startswith("req_")
        await client.aclose()


async def test_streaming_reply_is_valid_sse() -> None:
    async with FakeAnthropic.serve() as fake:
        fake.script(Turn([Thinking("hmm"), Text("streamed answer", chunks=5)]))
        client = await Client.connect(fake)
        status, headers, body = await client.request(
            "POST", "/v1/messages", {**MESSAGES_BODY, "stream": True}
        )
        await client.aclose()
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = _parse_sse(body)
    text_deltas = [d["delta"]["text"] for n, d in events if d.get("delta", {}).get("text")]
    assert len(text_deltas) == 5
    message = _accumulate(events)
    assert [b["type"] for b in message["content"]] == ["thinking", "text"]
    assert message["content"][1]["text"] == "streamed answer"
    assert message["stop_reason"] == "end_turn"


async def test_api_error_status_headers_and_body() -> None:
    async with FakeAnthropic.serve() as fake:
        fake.script(APIError(429, retry_after=2, should_retry=False))
        client = await Client.connect(fake)
        status, headers, body = await client.request("POST", "/v1/messages", MESSAGES_BODY)
        await client.aclose()
    assert status == 429
    assert headers["retry-after"] == "2" and headers["x-should-retry"] == "false"
    assert json.loads(body)["error"]["type"] == "rate_limit_error"


async def test_disconnect_and_mid_stream_drop_close_the_connection() -> None:
    async with FakeAnthropic.serve() as fake:
        fake.script(Disconnect(), Turn(Text("partial"), disconnect_after=2))
        for _ in range(2):
            client = await Client.connect(fake)
            with pytest.raises((ConnectionError, h11.RemoteProtocolError)):
                await client.request("POST", "/v1/messages", {**MESSAGES_BODY, "stream": True})
            await client.aclose()
        # The server is still fine.
        client = await Client.connect(fake)
        status, _, _ = await client.request("POST", "/v1/messages", MESSAGES_BODY)
        assert status == 200
        await client.aclose()


async def test_a_failing_reply_function_gives_a_500_and_is_recorded() -> None:
    async with FakeAnthropic.serve() as fake:
        fake.script(lambda request: {"not": "a reply"})  # type: ignore[arg-type, return-value]
        client = await Client.connect(fake)
        status, _, body = await client.request("POST", "/v1/messages", MESSAGES_BODY)
        await client.aclose()
    assert status == 500 and "not a scripted reply" in json.loads(body)["error"]["message"]
    assert len(fake.script_errors) == 1


async def test_garbage_gets_a_400_and_a_closed_connection() -> None:
    async with FakeAnthropic.serve() as fake:
        stream = await trio.open_tcp_stream("127.0.0.1", fake.port)
        await stream.send_all(b"THIS IS NOT HTTP\r\n\r\n")
        received = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                received += chunk
        await stream.aclose()
    assert received.startswith(b"HTTP/1.1 400")
    assert fake.requests == []


async def test_gzip_bodies_are_decoded() -> None:
    async with FakeAnthropic.serve() as fake:
        client = await Client.connect(fake)
        raw = gzip.compress(json.dumps(MESSAGES_BODY).encode())
        status, _, body = await client.request(
            "POST", "/v1/messages", raw=raw, headers=[("content-encoding", "gzip")]
        )
        await client.aclose()
    assert status == 200 and json.loads(body)["content"][0]["text"] == "echo #1: hi"
    assert fake.requests[0].json == MESSAGES_BODY


async def test_a_hanging_reply_does_not_block_other_connections() -> None:
    async with FakeAnthropic.serve() as fake:
        fake.script(Turn(Text("never"), delay=math.inf))
        hung = await Client.connect(fake)
        with trio.move_on_after(0.3) as scope:
            await hung.request("POST", "/v1/messages", MESSAGES_BODY)
        assert scope.cancelled_caught
        await hung.aclose()
        client = await Client.connect(fake)
        status, _, _ = await client.request("POST", "/v1/messages", MESSAGES_BODY)
        assert status == 200
        await client.aclose()
        assert len(await fake.wait_for_requests(2, lambda r: r.is_messages)) == 2


async def test_chunk_delay_spreads_the_stream_over_time() -> None:
    async with FakeAnthropic.serve() as fake:
        fake.script(Turn(Text("abc", chunks=3), chunk_delay=0.05))
        client = await Client.connect(fake)
        started = trio.current_time()
        await client.request("POST", "/v1/messages", {**MESSAGES_BODY, "stream": True})
        elapsed = trio.current_time() - started
        await client.aclose()
    # message_start, ping, block start, 3 deltas, block stop, message_delta, message_stop.
    assert 8 * 0.05 <= elapsed < 3


async def test_fake_in_an_existing_nursery_and_base_url_lifecycle() -> None:
    fake = FakeAnthropic(seed=7)
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    async with trio.open_nursery() as nursery:
        started = await nursery.start(fake.run)
        assert started is fake
        assert fake.base_url == f"http://127.0.0.1:{fake.port}"
        env = fake.env(max_retries=0)
        assert env["ANTHROPIC_BASE_URL"] == fake.base_url
        assert env["CLAUDE_CODE_MAX_RETRIES"] == "0"
        assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
        nursery.cancel_scope.cancel()
    with pytest.raises(RuntimeError):
        _ = fake.base_url


def test_usable_from_plain_trio_run() -> None:
    async def main() -> str:
        async with FakeAnthropic.serve() as fake:
            fake.script(Text("from trio.run"))
            client = await Client.connect(fake)
            _, _, body = await client.request("POST", "/v1/messages", MESSAGES_BODY)
            await client.aclose()
            return str(json.loads(body)["content"][0]["text"])

    assert trio.run(main) == "from trio.run"


# -- the committed recordings --------------------------------------------------

RECORDINGS = Path(__file__).resolve().parent / "recordings"


@pytest.mark.parametrize("name", sorted(p.stem for p in RECORDINGS.glob("*.jsonl")))
def test_recordings_are_complete_stream_json(name: str) -> None:
    lines = [json.loads(raw) for raw in (RECORDINGS / f"{name}.jsonl").read_bytes().splitlines()]
    assert all(isinstance(line, dict) and isinstance(line.get("type"), str) for line in lines)
    assert lines[-1]["type"] == "result"
    assert any(line.get("subtype") == "init" for line in lines)
    session_ids = {line["session_id"] for line in lines if "session_id" in line}
    assert len(session_ids) == 1


def test_all_recording_scenarios_are_present() -> None:
    names = {p.stem for p in RECORDINGS.glob("*.jsonl")}
    assert {
        "plain_text",
        "partial_messages",
        "tool_use_read",
        "api_error_529",
        "interrupt",
    } <= names
