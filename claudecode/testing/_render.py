"""Render scripted replies as Anthropic Messages API wire data (sans-IO).

:func:`stream_events` turns a :class:`~claudecode.testing._replies.Turn` into
the server-sent events the API streams (``message_start``,
``content_block_start``/``delta``/``stop``, ``ping``, ``message_delta``,
``message_stop``); :func:`encode_sse` frames one event; :func:`message_object`
builds the equivalent non-streaming JSON message; :func:`error_body` builds the
JSON error body. :func:`plan_response` turns a request and its reply into a
:data:`Plan` — the steps (wait, send head, send body bytes, finish, drop) that
the trio server then carries out. All functions are pure: ids come from an
:class:`IdSource`.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from typing import Any

import attrs

from claudecode.testing._replies import (
    JSON,
    APIError,
    Block,
    Disconnect,
    Echo,
    RecordedRequest,
    Reply,
    Text,
    Thinking,
    ToolUse,
    Turn,
    as_turn,
)

DEFAULT_MODEL = "claude-sonnet-4-5-20250929"
"""Model name reported when neither the turn nor the request names one."""

_ID_ALPHABET = string.ascii_letters + string.digits

Event = tuple[str, dict[str, Any]]
"""One SSE event: its name and its JSON data."""


@attrs.define
class IdSource:
    """Generates realistic-looking ids (``msg_01...``, ``toolu_01...``, ``req_01...``).

    Attributes:
        rng: the random source; seed it for reproducible ids.
    """

    rng: random.Random = attrs.field(factory=random.Random)

    def make(self, prefix: str) -> str:
        """Return a fresh id such as ``msg_01AbC...`` (24 characters after the prefix).

        Args:
            prefix: ``"msg"``, ``"toolu"``, ``"req"``, ...

        Returns:
            The id.
        """
        return f"{prefix}_01" + "".join(self.rng.choice(_ID_ALPHABET) for _ in range(22))


def estimate_tokens(text: str) -> int:
    """A rough token count (about 4 characters a token, at least 1).

    Args:
        text: any text.

    Returns:
        The estimate.
    """
    return max(1, (len(text) + 3) // 4)


def estimate_input_tokens(request: RecordedRequest) -> int:
    """Estimate the input tokens of a request from the size of its JSON body.

    Args:
        request: the recorded request.

    Returns:
        The estimate.
    """
    return max(1, len(request.body) // 4)


def split_text(text: str, chunks: int) -> list[str]:
    """Split ``text`` into at most ``chunks`` non-empty consecutive pieces.

    Args:
        text: the text; an empty text gives ``[""]``.
        chunks: the wanted number of pieces (>= 1).

    Returns:
        Pieces whose concatenation is ``text``.
    """
    if not text:
        return [""]
    n = max(1, min(chunks, len(text)))
    size, extra = divmod(len(text), n)
    pieces: list[str] = []
    pos = 0
    for i in range(n):
        end = pos + size + (1 if i < extra else 0)
        pieces.append(text[pos:end])
        pos = end
    return pieces


def _tool_id(block: ToolUse, ids: IdSource) -> str:
    return block.id if block.id is not None else ids.make("toolu")


@attrs.frozen
class RenderedTurn:
    """A turn with every generated value fixed, ready to be sent.

    Attributes:
        message_id: the ``msg_...`` id.
        model: the model reported.
        blocks: the content blocks as the final message holds them.
        stop_reason: the message's stop reason.
        input_tokens: reported input usage.
        output_tokens: reported output usage.
    """

    message_id: str
    model: str
    blocks: tuple[dict[str, Any], ...]
    stop_reason: str
    input_tokens: int
    output_tokens: int


def _block_json(block: Block, ids: IdSource) -> dict[str, Any]:
    if isinstance(block, Text):
        return {"type": "text", "text": block.text}
    if isinstance(block, Thinking):
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    return {
        "type": "tool_use",
        "id": _tool_id(block, ids),
        "name": block.name,
        "input": dict(block.input),
    }


def _block_output_tokens(block: dict[str, Any]) -> int:
    if block["type"] == "text":
        return estimate_tokens(block["text"])
    if block["type"] == "thinking":
        return estimate_tokens(block["thinking"])
    return estimate_tokens(json.dumps(block["input"]))


def render_turn(turn: Turn, request: RecordedRequest, ids: IdSource) -> RenderedTurn:
    """Fix the ids, model and usage of a turn for one request.

    Args:
        turn: the scripted turn.
        request: the request it answers (for the model and usage estimates).
        ids: the id source.

    Returns:
        The rendered turn.
    """
    blocks = tuple(_block_json(b, ids) for b in turn.blocks)
    output = turn.output_tokens
    if output is None:
        output = sum(_block_output_tokens(b) for b in blocks) or 1
    return RenderedTurn(
        message_id=ids.make("msg"),
        model=turn.model or request.model or DEFAULT_MODEL,
        blocks=blocks,
        stop_reason=turn.effective_stop_reason,
        input_tokens=(
            turn.input_tokens if turn.input_tokens is not None else estimate_input_tokens(request)
        ),
        output_tokens=output,
    )


def _usage(rendered: RenderedTurn, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": rendered.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message_object(rendered: RenderedTurn) -> dict[str, Any]:
    """The non-streaming response body (a complete ``message`` object).

    Args:
        rendered: the rendered turn.

    Returns:
        The JSON object.
    """
    return {
        "id": rendered.message_id,
        "type": "message",
        "role": "assistant",
        "model": rendered.model,
        "content": [dict(b) for b in rendered.blocks],
        "stop_reason": rendered.stop_reason,
        "stop_sequence": None,
        "usage": _usage(rendered, rendered.output_tokens),
    }


def _block_events(index: int, block: dict[str, Any], source: Block) -> Iterator[Event]:
    kind = block["type"]
    if kind == "text":
        assert isinstance(source, Text)
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            },
        )
        for piece in split_text(block["text"], source.chunks):
            yield (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
    elif kind == "thinking":
        assert isinstance(source, Thinking)
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
        )
        for piece in split_text(block["thinking"], source.chunks):
            yield (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "thinking_delta", "thinking": piece},
                },
            )
        yield (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "signature_delta", "signature": block["signature"]},
            },
        )
    else:
        assert isinstance(source, ToolUse)
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {
                    "type": "tool_use",
                    "id": block["id"],
                    "name": block["name"],
                    "input": {},
                },
            },
        )
        for piece in split_text(json.dumps(block["input"]), source.chunks):
            yield (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": piece},
                },
            )
    yield "content_block_stop", {"type": "content_block_stop", "index": index}


def stream_events(turn: Turn, rendered: RenderedTurn) -> list[Event]:
    """The SSE events that stream one turn, in order.

    Layout: ``message_start``, ``ping``, then per block ``content_block_start``,
    its deltas and ``content_block_stop``, then ``message_delta`` (stop reason
    and output usage) and ``message_stop``.

    Args:
        turn: the scripted turn (for chunking).
        rendered: the same turn rendered by :func:`render_turn`.

    Returns:
        The list of ``(event name, data)`` pairs.
    """
    start = message_object(rendered)
    start["content"] = []
    start["stop_reason"] = None
    start["usage"] = _usage(rendered, 1)
    events: list[Event] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
    ]
    for index, (block, source) in enumerate(zip(rendered.blocks, turn.blocks, strict=True)):
        events.extend(_block_events(index, block, source))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": rendered.stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": rendered.output_tokens},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def encode_sse(name: str, data: JSON) -> bytes:
    """Frame one server-sent event.

    Args:
        name: the ``event:`` name.
        data: the JSON payload (serialised on one line).

    Returns:
        ``b"event: NAME\\ndata: {...}\\n\\n"``.
    """
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {name}\ndata: {payload}\n\n".encode()


def error_body(error: APIError, request_id: str) -> dict[str, Any]:
    """Anthropic's JSON error body for a scripted :class:`APIError`.

    Args:
        error: the scripted error.
        request_id: the ``req_...`` id to include.

    Returns:
        ``{"type": "error", "error": {"type", "message"}, "request_id"}``.
    """
    return {
        "type": "error",
        "error": {"type": error.effective_type, "message": error.effective_message},
        "request_id": request_id,
    }


def error_headers(error: APIError) -> list[tuple[str, str]]:
    """Extra response headers of a scripted :class:`APIError`.

    Args:
        error: the scripted error.

    Returns:
        ``x-should-retry`` and ``retry-after`` headers where set.
    """
    headers: list[tuple[str, str]] = []
    if error.should_retry is not None:
        headers.append(("x-should-retry", "true" if error.should_retry else "false"))
    if error.retry_after is not None:
        headers.append(("retry-after", f"{error.retry_after:g}"))
    return headers


def count_tokens_body(request: RecordedRequest) -> dict[str, Any]:
    """Body of a ``POST /v1/messages/count_tokens`` answer.

    Args:
        request: the request.

    Returns:
        ``{"input_tokens": N}``.
    """
    return {"input_tokens": estimate_input_tokens(request)}


# -- response plans ---------------------------------------------------------


@attrs.frozen
class Wait:
    """Pause before the next step (``math.inf``: never go on)."""

    seconds: float


@attrs.frozen
class Head:
    """Send the status line and headers."""

    status: int
    headers: tuple[tuple[str, str], ...]


@attrs.frozen
class Body:
    """Send a piece of the body."""

    data: bytes


@attrs.frozen
class Finish:
    """End the response normally (the connection stays open for the next request)."""


@attrs.frozen
class Drop:
    """Close the connection abruptly, leaving the response unfinished."""


Step = Wait | Head | Body | Finish | Drop
"""One step of a response plan."""

Plan = list[Step]
"""The steps that answer one request, in order."""


def _json_response(
    status: int,
    body: JSON,
    ids: IdSource,
    *,
    head_only: bool,
    extra: tuple[tuple[str, str], ...] = (),
) -> Plan:
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = (
        ("content-type", "application/json"),
        ("content-length", str(len(data))),
        ("request-id", ids.make("req")),
        *extra,
    )
    plan: Plan = [Head(status, headers)]
    if not head_only:
        plan.append(Body(data))
    plan.append(Finish())
    return plan


def _waiting(seconds: float, plan: Plan) -> Plan:
    return [Wait(seconds), *plan] if seconds > 0 else plan


def plan_error(error: APIError, ids: IdSource, *, head_only: bool = False) -> Plan:
    """The plan answering with a scripted HTTP error.

    Args:
        error: the error.
        ids: id source (for ``request_id``).
        head_only: omit the body (answering a ``HEAD`` request).

    Returns:
        The plan.
    """
    request_id = ids.make("req")
    plan = _json_response(
        error.status,
        error_body(error, request_id),
        ids,
        head_only=head_only,
        extra=tuple(error_headers(error)),
    )
    return _waiting(error.delay, plan)


def plan_turn(turn: Turn, request: RecordedRequest, ids: IdSource) -> Plan:
    """The plan answering a ``POST /v1/messages`` with an assistant turn.

    Streams SSE events when the request asked for ``stream: true``, else
    sends one JSON message. Honours the turn's ``delay``, ``chunk_delay`` and
    ``disconnect_after``.

    Args:
        turn: the turn.
        request: the request it answers.
        ids: id source.

    Returns:
        The plan.
    """
    rendered = render_turn(turn, request, ids)
    if not request.stream:
        if turn.disconnect_after is not None:
            return _waiting(turn.delay, [Drop()])
        return _waiting(
            turn.delay,
            _json_response(200, message_object(rendered), ids, head_only=False,
                           extra=turn.headers),
        )
    plan: Plan = [
        Head(
            200,
            (
                ("content-type", "text/event-stream; charset=utf-8"),
                ("cache-control", "no-cache"),
                ("request-id", ids.make("req")),
                *turn.headers,
            ),
        )
    ]
    for number, (name, data) in enumerate(stream_events(turn, rendered)):
        if turn.disconnect_after is not None and number >= turn.disconnect_after:
            plan.append(Drop())
            return _waiting(turn.delay, plan)
        if number and turn.chunk_delay > 0:
            plan.append(Wait(turn.chunk_delay))
        plan.append(Body(encode_sse(name, data)))
    plan.append(Finish())
    return _waiting(turn.delay, plan)


def plan_reply(reply: Reply, request: RecordedRequest, ids: IdSource) -> Plan:
    """The plan answering a ``POST /v1/messages`` with any resolved reply.

    Args:
        reply: a block, turn, echo, error or disconnect (not a function).
        request: the request.
        ids: id source.

    Returns:
        The plan.
    """
    if isinstance(reply, Disconnect):
        return _waiting(reply.delay, [Drop()])
    if isinstance(reply, APIError):
        return plan_error(reply, ids)
    if isinstance(reply, Echo):
        return plan_turn(echo_turn(reply, request), request, ids)
    return plan_turn(as_turn(reply), request, ids)


def echo_turn(echo: Echo, request: RecordedRequest) -> Turn:
    """The turn an :class:`Echo` answers ``request`` with.

    Args:
        echo: the echo settings.
        request: the request (its message count and last user text are used).

    Returns:
        A one-text turn ``"<prefix> #<len(messages)>: <last user text>"``.
    """
    text = f"{echo.prefix} #{len(request.messages)}: {request.last_user_text}"
    return Turn(Text(text, chunks=echo.chunks), delay=echo.delay, chunk_delay=echo.chunk_delay)


def plan_other(request: RecordedRequest, ids: IdSource) -> Plan:
    """The plan answering any request that is not ``POST /v1/messages``.

    ``POST /v1/messages/count_tokens`` gets a token count, ``GET /v1/models``
    a one-model list, ``HEAD``/``GET /api/hello`` (the CLI's connectivity
    probe) an empty 200, everything else a 404 with Anthropic's error body.

    Args:
        request: the request.
        ids: id source.

    Returns:
        The plan.
    """
    head_only = request.method == "HEAD"
    if request.method == "POST" and request.path == "/v1/messages/count_tokens":
        return _json_response(200, count_tokens_body(request), ids, head_only=False)
    if request.method in ("GET", "HEAD") and request.path == "/v1/models":
        return _json_response(200, models_body(), ids, head_only=head_only)
    if request.method in ("GET", "HEAD") and request.path == "/api/hello":
        return _json_response(200, {}, ids, head_only=head_only)
    error = APIError(404, message=f"Not found: {request.method} {request.path}")
    return plan_error(error, ids, head_only=head_only)


def models_body() -> dict[str, Any]:
    """Body of a ``GET /v1/models`` answer: one model, :data:`DEFAULT_MODEL`.

    Returns:
        The JSON object.
    """
    return {
        "data": [
            {
                "type": "model",
                "id": DEFAULT_MODEL,
                "display_name": "Claude (FakeAnthropic)",
                "created_at": "2025-09-29T00:00:00Z",
            }
        ],
        "has_more": False,
        "first_id": DEFAULT_MODEL,
        "last_id": DEFAULT_MODEL,
    }
