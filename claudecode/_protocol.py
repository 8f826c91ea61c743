"""Sans-IO state machine for the Claude Code CLI's stdin/stdout JSON-lines protocol.

The machine does no I/O (h11 style). The transport layer hands it the bytes
read from the CLI's stdout with :meth:`CLIProtocol.feed` and writes the bytes
returned by the outgoing helpers to the CLI's stdin::

    proto = CLIProtocol()
    stdin.write(proto.user_message("hello"))
    for event in proto.feed(chunk_from_stdout):
        ...  # messages, control requests/responses, line errors

Events returned by :meth:`~CLIProtocol.feed`, in stdout order:

* a :class:`~claudecode._messages.Message` (``AssistantMessage``,
  ``ResultMessage``...) for every ordinary line;
* :class:`ControlRequest` (or its typed subclasses :class:`CanUseToolRequest`,
  :class:`HookCallbackRequest`, :class:`McpMessageRequest`) when the CLI asks
  the host something; answer with :meth:`~CLIProtocol.control_response_success`
  or :meth:`~CLIProtocol.control_response_error`;
* :class:`ControlCancelRequest` when the CLI withdraws such a request;
* :class:`ControlResponse` / :class:`ControlErrorResponse` answering one of
  *our* pending requests (matched by id, carrying the original subtype);
* :class:`UnmatchedControlResponse` for a response to an id we are not
  waiting for (late after a timeout, duplicated, or made up): never a crash;
* :class:`MalformedLine` for a line that is not a JSON object (raw bytes kept)
  and :class:`OversizedLine` for a line longer than ``max_buffer_size``.

Guarantees (property-tested): ``feed`` never raises for any bytes; the events
do not depend on how the stream is cut into chunks; a line over the limit is
discarded up to its newline without being held in memory, and the lines after
it parse normally. Blank lines are ignored.

Turn tracking: :meth:`~CLIProtocol.user_message` opens a turn and the next
``result`` line closes it (:attr:`~CLIProtocol.turn_active`,
:attr:`~CLIProtocol.last_result`). An oversized line that contained
``"type":"result"`` also closes it (``OversizedLine.maybe_result``), so a lost
result fails the request instead of hanging it. The session id is captured
from the ``system`` and ``result`` lines (every turn has both) and from
unknown line types (:attr:`~CLIProtocol.session_id`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any, Final, TypeAlias

import attrs

from claudecode._messages import (
    _MESSAGE_PARSERS,
    _PARSE_RESULT,
    _PARSE_SYSTEM,
    ContentBlock,
    Message,
    ResultMessage,
    UnknownMessage,
    _fast_loads,
    json_loads,
    to_dict,
)
from claudecode._protocol_errors import (
    ControlRequestError,
    EncodeError,
    MalformedLineError,
    OversizedLineError,
    ProtocolStateError,
)

__all__ = [
    "DEFAULT_MAX_BUFFER_SIZE",
    "CLIProtocol",
    "CanUseToolRequest",
    "ControlCancelRequest",
    "ControlErrorResponse",
    "ControlRequest",
    "ControlResponse",
    "Event",
    "HookCallbackRequest",
    "MalformedLine",
    "McpMessageRequest",
    "OversizedLine",
    "UnmatchedControlResponse",
    "encode_line",
]

DEFAULT_MAX_BUFFER_SIZE: Final = 64 * 1024 * 1024
"""Default longest accepted stdout line: 64 MiB.

Large enough for tool results carrying several base64 images (the usual
cause of "buffer limit exceeded" failures in other SDKs with a 1 MiB limit),
small enough to bound a runaway line. A line over the limit is reported and
skipped, never fatal.
"""

_LOADS: Final = _fast_loads if _fast_loads is not None else json_loads
"""The hot-path decoder (orjson when installed)."""

_HEAD_KEPT: Final = 256
"""Bytes of an oversized line kept for diagnostics."""

_RESULT: Final = b'"type":"result"'
"""How a ``result`` line's type looks on the wire (inside a JSON string it would be escaped)."""


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------


@attrs.define
class ControlRequest:
    """The CLI asks the host something (``control_request`` line).

    Attributes:
        request_id: the CLI's id; quote it in the answer.
        subtype: what is asked (``"can_use_tool"``, ``"hook_callback"``,
            ``"mcp_message"``...).
        request: the ``request`` object as sent (includes ``subtype``).
        raw: the whole line.
    """

    request_id: str
    subtype: str
    request: dict[str, Any]
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.define
class CanUseToolRequest(ControlRequest):
    """Permission prompt (``--permission-prompt-tool stdio``): may the tool run?

    Answer ``{"behavior": "allow", "updatedInput": {...}}`` or
    ``{"behavior": "deny", "message": ..., "interrupt": bool}``.

    Attributes:
        tool_name: the tool.
        input: its arguments.
        tool_use_id: the tool-use id, when sent.
        permission_suggestions: rule updates the CLI proposes, when sent.
        decision_reason: why the CLI is asking, when sent.
        blocked_path: the path that triggered the prompt, when sent.
    """

    tool_name: str = ""
    input: dict[str, Any] = attrs.field(factory=dict)
    tool_use_id: str | None = None
    permission_suggestions: list[Any] | None = None
    decision_reason: Any = None
    blocked_path: str | None = None


@attrs.define
class HookCallbackRequest(ControlRequest):
    """Run a host-side hook registered in ``initialize`` (``hook_callback``).

    Attributes:
        callback_id: which callback (``"hook_0"``...).
        input: the hook input object (``hook_event_name``, ``tool_name``...).
        tool_use_id: the related tool-use id, if any.
    """

    callback_id: str = ""
    input: Any = None
    tool_use_id: str | None = None


@attrs.define
class McpMessageRequest(ControlRequest):
    """A JSON-RPC message for an in-process MCP server (``mcp_message``).

    Answer ``{"mcp_response": <JSON-RPC response>}`` (also for notifications).

    Attributes:
        server_name: the ``mcp_servers`` key of the server.
        message: the JSON-RPC request or notification.
    """

    server_name: str = ""
    message: Any = None


@attrs.define
class ControlCancelRequest:
    """The CLI withdraws one of its control requests; do not answer it.

    Attributes:
        request_id: the withdrawn request's id (``""`` if the line had none).
        raw: the whole line.
    """

    request_id: str
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.define
class ControlResponse:
    """The CLI answered one of our control requests successfully.

    Attributes:
        request_id: our request's id.
        subtype: our request's subtype (``"initialize"``, ``"interrupt"``...).
        response: the answer payload (``{}`` when the CLI sent none).
        raw: the whole line.
    """

    request_id: str
    subtype: str
    response: dict[str, Any]
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.define
class ControlErrorResponse:
    """The CLI answered one of our control requests with an error.

    Attributes:
        request_id: our request's id.
        subtype: our request's subtype.
        error: the error message.
        error_code: the CLI's error code, if any (e.g. ``"unsupported_request"``).
        raw: the whole line.
    """

    request_id: str
    subtype: str
    error: str
    error_code: Any = None
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)

    def exception(self) -> ControlRequestError:
        """The typed exception for this error, to raise at the requester."""
        return ControlRequestError(self.request_id, self.subtype, self.error, self.error_code)


@attrs.define
class UnmatchedControlResponse:
    """A control response for an id we are not waiting for (or with no id).

    Attributes:
        request_id: the id in the response, or ``None`` if it had none.
        raw: the whole line.
    """

    request_id: str | None
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.define
class MalformedLine:
    """A stdout line that is not a JSON object; nothing else is affected.

    Attributes:
        line: the line's bytes (without the newline).
        reason: the decoder's complaint.
    """

    line: bytes
    reason: str

    def error(self) -> MalformedLineError:
        """The typed exception for this line."""
        return MalformedLineError(self.line, self.reason)


@attrs.define
class OversizedLine:
    """A stdout line longer than ``max_buffer_size``; its bytes were discarded.

    If the line contained ``"type":"result"`` (unescaped, i.e. as JSON
    structure) it was very likely the turn's ``result``: ``maybe_result`` is
    set and the machine ends the open turn, so the session can fail the
    request with :meth:`error` instead of waiting forever.

    Attributes:
        size: the line's length in bytes (without the newline).
        limit: the limit it exceeded.
        head: its first bytes, for diagnostics.
        maybe_result: the line looks like the turn's ``result`` line.
    """

    size: int
    limit: int
    head: bytes
    maybe_result: bool = False

    def error(self) -> OversizedLineError:
        """The typed exception for this line."""
        return OversizedLineError(self.size, self.limit, self.head)


Event: TypeAlias = (
    Message
    | ControlRequest
    | ControlCancelRequest
    | ControlResponse
    | ControlErrorResponse
    | UnmatchedControlResponse
    | MalformedLine
    | OversizedLine
)
"""Anything :meth:`CLIProtocol.feed` returns."""


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------


def encode_line(obj: Any) -> bytes:
    """Encode one JSON object as a stdin line (compact JSON + ``\\n``).

    Non-ASCII text is written as UTF-8; strings with lone surrogates fall back
    to ASCII escapes so the line is always valid UTF-8.

    Args:
        obj: a JSON-serialisable value.

    Returns:
        The line, ending in exactly one newline (JSON never contains a raw one).

    Raises:
        EncodeError: ``obj`` holds something JSON cannot represent.
    """
    try:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        try:
            return text.encode("utf-8") + b"\n"
        except UnicodeEncodeError:
            text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
            return text.encode("ascii") + b"\n"
    except (TypeError, ValueError, RecursionError) as exc:
        raise EncodeError(f"cannot encode message as JSON: {exc}") from exc


def _plain(value: Any) -> Any:
    """Turn content blocks (anywhere in lists) into their wire dicts."""
    if isinstance(value, ContentBlock):
        return to_dict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


# ---------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------


class CLIProtocol:
    """The host side of one CLI connection, as a pure state machine.

    Args:
        max_buffer_size: longest accepted stdout line in bytes (without the
            newline); longer lines become :class:`OversizedLine` events.
        request_id_prefix: prefix of our control request ids (``req``).

    Raises:
        ValueError: ``max_buffer_size`` is not a positive integer.
    """

    def __init__(
        self, *, max_buffer_size: int = DEFAULT_MAX_BUFFER_SIZE, request_id_prefix: str = "req"
    ) -> None:
        if (
            not isinstance(max_buffer_size, int)
            or isinstance(max_buffer_size, bool)
            or max_buffer_size <= 0
        ):
            raise ValueError(f"max_buffer_size must be a positive int, got {max_buffer_size!r}")
        self.max_buffer_size: Final = max_buffer_size
        self._prefix = request_id_prefix
        self._salt = secrets.token_hex(4)
        self._counter = 0
        # Partial-line state.
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._discarding = False  # inside an oversized line
        self._discarded = 0
        self._discard_head = b""
        self._discard_tail = b""  # last bytes seen, to find the marker across chunks
        self._discard_result = False  # the marker was seen in the discarded line
        self._eof = False
        # Control-protocol state.
        self._outgoing: dict[str, str] = {}  # our request id -> subtype
        self._incoming: dict[str, str] = {}  # CLI request id -> subtype
        # Conversation state.
        self.session_id: str | None = None
        """The session id most recently seen on a message (``None`` before any)."""
        self.turn_active = False
        """A user message was sent and its ``result`` has not arrived yet."""
        self.turns_completed = 0
        """Number of ``result`` lines seen."""
        self.last_result: ResultMessage | None = None
        """The most recent ``result`` message."""

    # -- incoming -----------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Consume bytes read from the CLI's stdout.

        Args:
            data: any chunk; lines may be split anywhere, several may arrive at once.

        Returns:
            The events completed by this chunk, in order (often empty).

        Raises:
            ProtocolStateError: called after :meth:`feed_eof`.
        """
        if self._eof:
            raise ProtocolStateError("feed() after feed_eof()")
        if not isinstance(data, bytes):
            data = bytes(data)
        events: list[Event] = []
        start = 0
        end = len(data)
        limit = self.max_buffer_size
        find = data.find
        # The first line may continue a partial or oversized one from an
        # earlier chunk; every later line of this chunk starts fresh.
        while start < end and (self._discarding or self._pending):
            nl = find(b"\n", start)
            if nl < 0:
                self._stash(data, start, end)
                return events
            if self._discarding:
                self._grow_head(data, start, nl)
                self._scan(data, start, nl)
                events.append(self._end_discard(nl - start))
            else:
                self._pending.append(data[start:nl])
                line = b"".join(self._pending)
                self._pending.clear()
                self._pending_len = 0
                if len(line) > limit:
                    events.append(self._oversized(len(line), line[:_HEAD_KEPT], _RESULT in line))
                else:
                    self._line(line, events)
            start = nl + 1
        if start >= end:
            return events
        # Whole lines: split in C, then parse each.
        parts = (data if start == 0 else data[start:]).split(b"\n")
        tail = parts.pop()  # the bytes after the last newline (maybe empty)
        clean: list[bytes] = []
        for line in parts:
            if len(line) > limit:
                self._lines(clean, events)
                clean = []
                events.append(self._oversized(len(line), line[:_HEAD_KEPT], _RESULT in line))
            elif line:
                clean.append(line)
        self._lines(clean, events)
        if tail:
            self._stash(data, end - len(tail), end)
        return events

    def feed_eof(self) -> list[Event]:
        """Signal the end of stdout; a final line without a newline is processed.

        Returns:
            The events of that final partial line (empty if there was none).
        """
        if self._eof:
            return []
        events: list[Event] = []
        if self._discarding:
            events.append(self._end_discard(0))
        elif self._pending:
            line = b"".join(self._pending)
            self._pending.clear()
            self._pending_len = 0
            self._line(line, events)
        self._eof = True
        return events

    @property
    def buffered(self) -> int:
        """Bytes of the current partial line held in memory."""
        return self._pending_len

    def _stash(self, data: bytes, start: int, end: int) -> None:
        """Keep the tail of a chunk that has no newline yet."""
        size = end - start
        if self._discarding:
            self._grow_head(data, start, end)
            self._scan(data, start, end)
            self._discarded += size
            return
        if self._pending_len + size > self.max_buffer_size:
            # Over the limit: remember only the size, a head and a few facts; drop the rest.
            held = b"".join(self._pending)
            self._discarding = True
            self._discarded = self._pending_len + size
            self._discard_head = (held + data[start : min(end, start + _HEAD_KEPT)])[:_HEAD_KEPT]
            self._discard_result = False
            self._discard_tail = b""
            self._scan(held, 0, len(held))
            self._scan(data, start, end)
            self._pending.clear()
            self._pending_len = 0
            return
        self._pending.append(data[start:end])
        self._pending_len += size

    def _grow_head(self, data: bytes, start: int, end: int) -> None:
        """Complete the kept head of an oversized line, so it never depends on chunking."""
        need = _HEAD_KEPT - len(self._discard_head)
        if need > 0:
            self._discard_head += data[start : min(end, start + need)]

    def _scan(self, data: bytes, start: int, end: int) -> None:
        """Look for the ``result`` marker in discarded bytes, across chunk boundaries."""
        if self._discard_result or start >= end:
            return
        keep = len(_RESULT) - 1
        seam = self._discard_tail + data[start : min(end, start + keep)]
        if _RESULT in seam or data.find(_RESULT, start, end) >= 0:
            self._discard_result = True
            return
        self._discard_tail = (self._discard_tail + data[max(start, end - keep) : end])[-keep:]

    def _end_discard(self, extra: int) -> OversizedLine:
        event = self._oversized(self._discarded + extra, self._discard_head, self._discard_result)
        self._discarding = False
        self._discarded = 0
        self._discard_head = b""
        self._discard_tail = b""
        self._discard_result = False
        return event

    def _oversized(self, size: int, head: bytes, maybe_result: bool) -> OversizedLine:
        """The event for a skipped line; a lost ``result`` still ends the open turn."""
        if maybe_result:
            self.turn_active = False
            self.turns_completed += 1
        return OversizedLine(size, self.max_buffer_size, head, maybe_result)

    def _line(self, line: bytes, events: list[Event]) -> None:
        """Decode one complete line and append its event (if any)."""
        try:
            data = _LOADS(line)
        except (ValueError, RecursionError):
            try:
                data = json_loads(line)  # the stdlib accepts a few more documents
            except (ValueError, RecursionError) as exc:
                if line.strip():
                    events.append(MalformedLine(line, str(exc) or type(exc).__name__))
                return
        self._decoded(line, data, events)

    def _lines(self, lines: list[bytes], events: list[Event]) -> None:
        """Decode whole lines: one JSON array parse for all of them when they are
        clean (the common case), line by line otherwise (so a bad line is
        reported on its own and loses nothing)."""
        if len(lines) > 1:
            try:
                values = _LOADS(b"[" + b",".join(lines) + b"]")
            except (ValueError, RecursionError):
                values = None
            if values is not None and len(values) == len(lines):
                decoded = self._decoded
                for line, data in zip(lines, values, strict=True):
                    decoded(line, data, events)
                return
        line_fn = self._line
        for line in lines:
            line_fn(line, events)

    def _decoded(self, line: bytes, data: Any, events: list[Event]) -> None:
        """Append the event of one decoded line."""
        if data.__class__ is not dict:
            events.append(MalformedLine(line, f"expected a JSON object, got {type(data).__name__}"))
            return
        typ = data.get("type")
        parser = _MESSAGE_PARSERS.get(typ) if typ.__class__ is str else None
        if parser is not None:
            msg = parser(data)
            events.append(msg)
            # Every turn starts with system/init and ends with result; both carry
            # the session id, so the other (hotter) line types need no bookkeeping.
            if parser is _PARSE_RESULT:
                self.turn_active = False
                self.turns_completed += 1
                self.last_result = msg  # type: ignore[assignment]
                if msg.session_id is not None:  # type: ignore[attr-defined]
                    self.session_id = msg.session_id  # type: ignore[attr-defined]
            elif parser is _PARSE_SYSTEM:
                sid = msg.session_id  # type: ignore[attr-defined]
                if sid is not None:
                    self.session_id = sid
        elif typ == "control_request":
            events.append(self._control_request(data))
        elif typ == "control_response":
            events.append(self._control_response(data))
        elif typ == "control_cancel_request":
            rid = data.get("request_id")
            rid = rid if isinstance(rid, str) else ""
            self._incoming.pop(rid, None)
            events.append(ControlCancelRequest(rid, data))
        else:
            sid = data.get("session_id")
            if sid.__class__ is str:
                self.session_id = sid
            events.append(UnknownMessage(data))

    def _control_request(self, data: dict[str, Any]) -> ControlRequest:
        rid = data.get("request_id")
        rid = rid if isinstance(rid, str) else str(rid) if rid is not None else ""
        req = data.get("request")
        if not isinstance(req, dict):
            req = {}
        subtype = req.get("subtype")
        subtype = subtype if isinstance(subtype, str) else ""
        self._incoming[rid] = subtype
        if subtype == "can_use_tool":
            inp = req.get("input")
            sugg = req.get("permission_suggestions")
            return CanUseToolRequest(
                rid,
                subtype,
                req,
                data,
                tool_name=_opt_str(req.get("tool_name")) or "",
                input=inp if isinstance(inp, dict) else {},
                tool_use_id=_opt_str(req.get("tool_use_id")),
                permission_suggestions=sugg if isinstance(sugg, list) else None,
                decision_reason=req.get("decision_reason"),
                blocked_path=_opt_str(req.get("blocked_path")),
            )
        if subtype == "hook_callback":
            return HookCallbackRequest(
                rid,
                subtype,
                req,
                data,
                callback_id=_opt_str(req.get("callback_id")) or "",
                input=req.get("input"),
                tool_use_id=_opt_str(req.get("tool_use_id")),
            )
        if subtype == "mcp_message":
            return McpMessageRequest(
                rid,
                subtype,
                req,
                data,
                server_name=_opt_str(req.get("server_name")) or "",
                message=req.get("message"),
            )
        return ControlRequest(rid, subtype, req, data)

    def _control_response(
        self, data: dict[str, Any]
    ) -> ControlResponse | ControlErrorResponse | UnmatchedControlResponse:
        resp = data.get("response")
        if not isinstance(resp, dict):
            return UnmatchedControlResponse(None, data)
        rid = resp.get("request_id")
        if not isinstance(rid, str) or rid not in self._outgoing:
            return UnmatchedControlResponse(rid if isinstance(rid, str) else None, data)
        subtype = self._outgoing.pop(rid)
        if resp.get("subtype") == "success":
            payload = resp.get("response")
            return ControlResponse(rid, subtype, payload if isinstance(payload, dict) else {}, data)
        error = resp.get("error")
        if not isinstance(error, str):
            kind = resp.get("subtype")
            error = (
                json.dumps(error)
                if error is not None
                else f"control response of unexpected subtype {kind!r}"
            )
        return ControlErrorResponse(rid, subtype, error, resp.get("error_code"), data)

    # -- outgoing -----------------------------------------------------------

    def user_message(
        self,
        content: str | Iterable[ContentBlock | dict[str, Any]],
        *,
        session_id: str = "default",
        uuid: str | None = None,
        parent_tool_use_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> bytes:
        """Encode a prompt for stdin and mark a turn as started.

        Args:
            content: the prompt text, or content blocks (objects or wire dicts).
            session_id: the ``session_id`` field (the CLI keeps its own id; the
                conventional value is ``"default"``).
            uuid: optional transcript id for this message.
            parent_tool_use_id: for subagent replies; normally ``None``.
            extra: further top-level fields to send as-is (e.g. ``priority``).

        Returns:
            The stdin line.

        Raises:
            EncodeError: the content cannot be encoded as JSON.
        """
        body: Any = content if isinstance(content, str) else _plain(list(content))
        obj: dict[str, Any] = {
            "type": "user",
            "message": {"role": "user", "content": body},
            "parent_tool_use_id": parent_tool_use_id,
            "session_id": session_id,
        }
        if uuid is not None:
            obj["uuid"] = uuid
        if extra:
            obj.update(extra)
        line = encode_line(obj)
        self.turn_active = True
        return line

    def next_request_id(self) -> str:
        """A fresh control request id (``req_<n>_<8 hex>``), unique per machine."""
        self._counter += 1
        return f"{self._prefix}_{self._counter}_{self._salt}"

    def control_request(
        self, subtype: str, payload: dict[str, Any] | None = None
    ) -> tuple[str, bytes]:
        """Encode a control request of ours and start waiting for its answer.

        Args:
            subtype: ``"initialize"``, ``"interrupt"``, ``"set_model"``...
            payload: the other fields of the ``request`` object.

        Returns:
            ``(request_id, line)``; the answer arrives as a
            :class:`ControlResponse` or :class:`ControlErrorResponse` with this id.

        Raises:
            EncodeError: the payload cannot be encoded as JSON.
        """
        rid = self.next_request_id()
        request = {"subtype": subtype, **(payload or {})}
        request["subtype"] = subtype
        line = encode_line({"type": "control_request", "request_id": rid, "request": request})
        self._outgoing[rid] = subtype
        return rid, line

    def control_response_success(self, request_id: str, payload: Any = None) -> bytes:
        """Encode a successful answer to one of the CLI's control requests.

        Args:
            request_id: the CLI request's id.
            payload: the answer object (``{}`` when ``None``).

        Returns:
            The stdin line.

        Raises:
            EncodeError: the payload cannot be encoded as JSON.
        """
        line = encode_line(
            {
                "type": "control_response",
                "response": {
                    "subtype": "success",
                    "request_id": request_id,
                    "response": {} if payload is None else payload,
                },
            }
        )
        self._incoming.pop(request_id, None)
        return line

    def control_response_error(self, request_id: str, message: str) -> bytes:
        """Encode an error answer to one of the CLI's control requests.

        Args:
            request_id: the CLI request's id.
            message: what went wrong (shown to the model / in the CLI's logs).

        Returns:
            The stdin line.
        """
        line = encode_line(
            {
                "type": "control_response",
                "response": {"subtype": "error", "request_id": request_id, "error": str(message)},
            }
        )
        self._incoming.pop(request_id, None)
        return line

    # -- bookkeeping ----------------------------------------------------------

    @property
    def pending_requests(self) -> dict[str, str]:
        """Our control requests still awaiting an answer: ``{request_id: subtype}``."""
        return dict(self._outgoing)

    @property
    def incoming_requests(self) -> dict[str, str]:
        """The CLI's control requests not yet answered or cancelled."""
        return dict(self._incoming)

    def is_incoming_pending(self, request_id: str) -> bool:
        """Whether the CLI still waits for an answer to ``request_id``.

        Args:
            request_id: a CLI control request id.

        Returns:
            ``False`` once answered or cancelled (then do not write an answer).
        """
        return request_id in self._incoming

    def forget_request(self, request_id: str) -> str | None:
        """Stop waiting for one of our requests (e.g. after a timeout).

        A later answer then arrives as :class:`UnmatchedControlResponse`.

        Args:
            request_id: our request's id.

        Returns:
            The request's subtype, or ``None`` if it was not pending.
        """
        return self._outgoing.pop(request_id, None)

    def abandon_pending(self) -> dict[str, str]:
        """Forget every pending request of ours (the CLI exited).

        Returns:
            The abandoned ``{request_id: subtype}``, so each waiter can be failed.
        """
        out = self._outgoing
        self._outgoing = {}
        self._incoming.clear()
        return out

    def reset_turn(self) -> None:
        """Forget the open turn (e.g. the CLI died mid-turn and was restarted)."""
        self.turn_active = False
