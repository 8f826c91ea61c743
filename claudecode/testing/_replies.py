"""Scripted replies of :class:`~claudecode.testing.FakeAnthropic` and the recorded requests.

A test scripts what the fake Messages API answers with plain data:

* content blocks — :class:`Text`, :class:`Thinking`, :class:`ToolUse` — each a
  one-block assistant turn on its own;
* :class:`Turn` — several blocks in one assistant message, with latency,
  stop reason, usage and an optional mid-stream disconnect;
* :class:`Echo` — the default: a text that reveals how many messages the
  request carried;
* :class:`APIError` — an HTTP error with Anthropic's JSON error body;
* :class:`Disconnect` — drop the connection without answering;
* or a callable taking the :class:`RecordedRequest` and returning any of these.

Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import attrs

JSON: TypeAlias = Any
"""A value decoded from JSON."""


def _positive(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value}")


def _non_negative(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


@attrs.frozen
class Text:
    """A text content block.

    Attributes:
        text: the text the model "writes".
        chunks: number of ``text_delta`` events the text is streamed in
            (split as evenly as possible; at most one per character).
    """

    text: str
    chunks: int = attrs.field(default=1, validator=_positive)


@attrs.frozen
class Thinking:
    """An extended-thinking content block (``thinking`` + ``signature``).

    Attributes:
        thinking: the reasoning text.
        signature: the opaque signature sent in a ``signature_delta``.
        chunks: number of ``thinking_delta`` events.
    """

    thinking: str
    signature: str = "fake-signature"
    chunks: int = attrs.field(default=1, validator=_positive)


@attrs.frozen
class ToolUse:
    """A ``tool_use`` content block: the model asks the CLI to run a tool.

    Built-in tools are named as the CLI names them (``"Read"``, ``"Write"``,
    ``"Bash"``, ...); MCP tools as ``"mcp__<server>__<tool>"``.

    Attributes:
        name: the tool name.
        input: the tool's arguments (a JSON object).
        id: the ``tool_use`` id; generated (``toolu_...``) when ``None``.
        chunks: number of ``input_json_delta`` events the JSON is streamed in.
    """

    name: str
    input: Mapping[str, JSON] = attrs.field(factory=dict)
    id: str | None = None
    chunks: int = attrs.field(default=1, validator=_positive)


Block: TypeAlias = Text | Thinking | ToolUse


def _header_pairs(
    value: Mapping[str, str] | Sequence[tuple[str, str]],
) -> tuple[tuple[str, str], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    out = tuple((str(k).lower(), str(v)) for k, v in items)
    for name, text in out:
        if not name or any(c in name + text for c in "\r\n"):
            raise ValueError(f"invalid response header {name!r}: {text!r}")
    return out
"""A content block of a scripted assistant turn."""


def _to_blocks(blocks: Block | Sequence[Block]) -> tuple[Block, ...]:
    if isinstance(blocks, Text | Thinking | ToolUse):
        return (blocks,)
    return tuple(blocks)


@attrs.frozen
class Turn:
    """One assistant message made of several content blocks.

    Attributes:
        blocks: the content blocks, in order.
        stop_reason: ``stop_reason`` of the message; ``None`` picks
            ``"tool_use"`` when a :class:`ToolUse` is present, else ``"end_turn"``.
        model: the model reported; ``None`` echoes the request's model.
        input_tokens: usage reported; ``None`` estimates it from the request.
        output_tokens: usage reported; ``None`` estimates it from the blocks.
        delay: seconds before the response starts (``math.inf`` never answers:
            the request hangs until the client gives up or the fake stops).
        chunk_delay: seconds between consecutive SSE events.
        disconnect_after: if set, drop the connection after this many SSE
            events (mid-stream disconnect); ``0`` drops it right after the headers.
        headers: extra HTTP response headers, e.g. the
            ``anthropic-ratelimit-unified-*`` headers that make the CLI print a
            ``rate_limit_event``.
    """

    blocks: tuple[Block, ...] = attrs.field(converter=_to_blocks)
    stop_reason: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    delay: float = attrs.field(default=0.0, validator=_non_negative)
    chunk_delay: float = attrs.field(default=0.0, validator=_non_negative)
    disconnect_after: int | None = None
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_header_pairs)

    @property
    def effective_stop_reason(self) -> str:
        """The stop reason sent: explicit, else derived from the blocks."""
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if any(isinstance(b, ToolUse) for b in self.blocks) else "end_turn"


@attrs.frozen
class Echo:
    """The default reply: ``"<prefix> #<N>: <last user text>"``.

    ``N`` is the number of entries in the request's ``messages`` array, so a
    test can see the conversation grow across turns. Every entry counts,
    whatever its role: user prompts, assistant messages, tool-result messages.
    CLI 2.1.328 adds one entry of its own to the first turn: a ``role:
    "system"`` environment description right after the first user message.
    So in one CLI process the first prompt is answered ``#2``, the second
    ``#4``, the k-th ``#2k`` (a tool round trip adds 2 more: the assistant
    ``tool_use`` message and the user ``tool_result`` message).

    Attributes:
        prefix: the word before ``#N``.
        chunks: number of text deltas.
        delay: seconds before the response starts.
        chunk_delay: seconds between SSE events.
    """

    prefix: str = "echo"
    chunks: int = attrs.field(default=1, validator=_positive)
    delay: float = attrs.field(default=0.0, validator=_non_negative)
    chunk_delay: float = attrs.field(default=0.0, validator=_non_negative)


_ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_ERROR_MESSAGES: Mapping[str, str] = {
    "invalid_request_error": "Invalid request (scripted by FakeAnthropic)",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "overloaded_error": "Overloaded",
}


@attrs.frozen
class APIError:
    """An HTTP error answer with Anthropic's JSON error body.

    The body is ``{"type": "error", "error": {"type": ..., "message": ...},
    "request_id": ...}``.

    Attributes:
        status: HTTP status (e.g. 400, 429, 529).
        message: ``error.message``; a typical message for the type when ``None``.
        error_type: ``error.type``; derived from ``status`` when ``None``
            (429 → ``rate_limit_error``, 529 → ``overloaded_error``, ...).
        should_retry: if not ``None``, sent as the ``x-should-retry`` header
            (the Anthropic SDKs honour it: ``false`` stops their retries).
        retry_after: if not ``None``, sent as the ``retry-after`` header (seconds).
        delay: seconds before answering.
    """

    status: int
    message: str | None = None
    error_type: str | None = None
    should_retry: bool | None = None
    retry_after: float | None = None
    delay: float = attrs.field(default=0.0, validator=_non_negative)

    @property
    def effective_type(self) -> str:
        """``error.type`` as sent."""
        if self.error_type is not None:
            return self.error_type
        if self.status in _ERROR_TYPES:
            return _ERROR_TYPES[self.status]
        return "api_error" if self.status >= 500 else "invalid_request_error"

    @property
    def effective_message(self) -> str:
        """``error.message`` as sent."""
        if self.message is not None:
            return self.message
        return _ERROR_MESSAGES.get(self.effective_type, "Error (scripted by FakeAnthropic)")


@attrs.frozen
class Disconnect:
    """Close the connection without sending any response.

    Attributes:
        delay: seconds to wait before closing.
    """

    delay: float = attrs.field(default=0.0, validator=_non_negative)


@attrs.frozen
class RecordedRequest:
    """One HTTP request the fake received (every path, not only messages).

    Attributes:
        index: 0-based position in :attr:`FakeAnthropic.requests`.
        method: the HTTP method, e.g. ``"POST"``.
        path: the path without the query string, e.g. ``"/v1/messages"``.
        query: the query parameters (last value wins), e.g. ``{"beta": "true"}``.
        headers: header names lower-cased; repeated headers joined with ``", "``.
        body: the raw (decoded, if it was compressed) body.
        json: the body parsed as JSON, or ``None`` if empty or not JSON.
        received_at: ``time.monotonic()`` when the request was complete.
    """

    index: int
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    json: JSON
    received_at: float

    @property
    def is_messages(self) -> bool:
        """Whether this is a ``POST /v1/messages`` (a model turn)."""
        return self.method == "POST" and self.path == "/v1/messages"

    @property
    def _body(self) -> Mapping[str, JSON]:
        return self.json if isinstance(self.json, dict) else {}

    @property
    def model(self) -> str | None:
        """The ``model`` field of the body."""
        value = self._body.get("model")
        return value if isinstance(value, str) else None

    @property
    def stream(self) -> bool:
        """Whether the client asked for SSE streaming (``"stream": true``)."""
        return self._body.get("stream") is True

    @property
    def messages(self) -> list[JSON]:
        """The ``messages`` array of the body (empty if absent)."""
        value = self._body.get("messages")
        return value if isinstance(value, list) else []

    @property
    def tool_names(self) -> list[str]:
        """Names of the tools offered in the request."""
        tools = self._body.get("tools")
        if not isinstance(tools, list):
            return []
        return [t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)]

    @property
    def system_text(self) -> str:
        """The system prompt, its text blocks joined with newlines."""
        return _joined_text(self._body.get("system"))

    @property
    def last_user_text(self) -> str:
        """The text the user typed last.

        Taken from the last ``user`` message that has a text block not
        starting with ``<system-reminder>`` (the CLI wraps its own context in
        such blocks); tool results are skipped. Empty if there is none.
        """
        for message in reversed(self.messages):
            if not isinstance(message, dict) or message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                texts = [
                    b["text"]
                    for b in content
                    if isinstance(b, dict)
                    and b.get("type") == "text"
                    and isinstance(b.get("text"), str)
                    and not b["text"].lstrip().startswith("<system-reminder>")
                ]
                if texts:
                    return str(texts[-1])
        return ""

    @property
    def tool_results(self) -> list[Mapping[str, JSON]]:
        """The ``tool_result`` blocks of the last message (what the tools returned)."""
        if not self.messages or not isinstance(self.messages[-1], dict):
            return []
        content = self.messages[-1].get("content")
        if not isinstance(content, list):
            return []
        return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]

    def tool_result_text(self, tool_use_id: str | None = None) -> str:
        """The text of a tool result in the last message.

        Args:
            tool_use_id: which result; the first one when ``None``.

        Returns:
            The result's text (text blocks joined), or ``""`` if there is none.
        """
        for block in self.tool_results:
            if tool_use_id is None or block.get("tool_use_id") == tool_use_id:
                return _joined_text(block.get("content"))
        return ""

    def describe(self) -> str:
        """A one-line summary for logs, e.g. ``POST /v1/messages model=... messages=3``."""
        extra = ""
        if self.is_messages:
            extra = f" model={self.model} messages={len(self.messages)} stream={self.stream}"
        elif self.body and self.json is None:
            extra = f" body={len(self.body)}B"
        query = "?" + "&".join(f"{k}={v}" for k, v in self.query.items()) if self.query else ""
        return f"{self.method} {self.path}{query}{extra}"


def _joined_text(value: JSON) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(
            b["text"]
            for b in value
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        )
    return ""


Reply: TypeAlias = Text | Thinking | ToolUse | Turn | Echo | APIError | Disconnect
"""A scripted answer to one ``POST /v1/messages``."""

ReplyFn: TypeAlias = Callable[[RecordedRequest], "Reply | ReplyFn"]
"""A function choosing the reply from the request (it may return another function)."""

ReplyLike: TypeAlias = Reply | ReplyFn
"""What :meth:`FakeAnthropic.script` accepts."""


def as_turn(reply: Text | Thinking | ToolUse | Turn) -> Turn:
    """Wrap a lone content block into a one-block :class:`Turn`.

    Args:
        reply: a block or a turn.

    Returns:
        The turn.
    """
    return reply if isinstance(reply, Turn) else Turn(reply)


def parse_json(body: bytes) -> JSON:
    """Parse a request body as JSON, returning ``None`` if it is empty or not JSON.

    Args:
        body: raw bytes.

    Returns:
        The decoded value or ``None``.
    """
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
