"""Streams: one query's messages, consumed as an async iterator in an otpy process.

``claudecode.stream(session, prompt)`` returns a :class:`Stream` at once and
does nothing else: the query is sent to the session on the first ``async
for`` step (or ``await stream.collect()``...). From then on the session
sends the turn's messages to the consuming process's mailbox, and the stream
reads them with a selective receive, so other messages of that process are
left alone. The stream monitors the session: if the session dies without a
word, the stream fails with the session's exit reason.

Ending early is safe and cheap: leaving ``async with claudecode.stream(...)``,
``await stream.aclose()``, a per-stream ``timeout`` expiring, the consuming
process exiting, or the stream object being garbage collected all tell the
session, which interrupts the CLI's turn so it does not run on unseen.

Errors: :class:`~claudecode._errors.StreamError` (typed ``.reason``) when the
turn cannot complete; :class:`~claudecode._errors.ResultError` from
:meth:`Stream.final_text` / :meth:`Stream.final_result` when the turn ended
with an error result (``collect`` reports ``is_error`` instead).

Streaming input: the prompt may be an async iterable of user messages
(strings, content-block lists, or claude-agent-sdk's ``{"type": "user",
"message": {...}}`` dicts). A feeder process, linked to the consumer, sends
each one to the CLI as it comes; the CLI may answer them in one turn or in
several, and the stream ends after the last answer once the iterable is
exhausted. An iterable that raises fails the stream with
``StreamError(otpy.Crash(exc))``.

Helpers in the spirit of the Elixir ``ClaudeCode.Stream``: the consuming
ones (:meth:`Stream.text_content`, :meth:`Stream.filter_type`,
:meth:`Stream.until_result`, :meth:`Stream.tool_results_by_name`,
:meth:`Stream.content_deltas`...) are async iterators over the same
messages; :meth:`Stream.tap` and :meth:`Stream.on_tool_use` register
observers and return the stream, so they chain::

    text = await stream.tap(log).on_tool_use(show_progress).final_text()
"""

from __future__ import annotations

import contextlib
import uuid as uuid_mod
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any, Final

import attrs
import trio

import otpy
from claudecode._errors import ResultError, StreamError
from claudecode._messages import (
    AssistantMessage,
    ContentBlock,
    Message,
    PartialAssistantMessage,
    ResultMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)
from claudecode._protocol import _plain
from claudecode._session import ABANDON_TAG, INPUT_TAG, STREAM_TAG, start_owned, stop
from otpy import Down, Pid, Ref
from otpy._process import Process, current

__all__ = ["Collected", "ContentDelta", "Stream", "query", "stream"]

Prompt = str | Sequence[ContentBlock | dict[str, Any]] | AsyncIterable[Any]
"""A prompt: text, content blocks, or an async iterable of user messages."""

_UNSET: Final[Any] = object()
#: How long the session may take to accept a query (it answers at once unless busy starting).
_QUERY_CALL_TIMEOUT: Final = 30.0


@attrs.frozen
class Collected:
    """Everything a turn produced, gathered by :meth:`Stream.collect`.

    Attributes:
        text: the text of every assistant text block, concatenated.
        tool_calls: ``(tool_use, tool_result)`` pairs in call order; the
            result is ``None`` if none arrived (e.g. interrupted).
        thinking: the thinking text, concatenated.
        result: the final result text (``ResultMessage.result``).
        is_error: whether the turn ended with an error result.
        session_id: the conversation's session id.
        usage: total token usage of the turn.
        total_cost_usd: the session's cost so far, as the CLI reports it.
        stop_reason: the last API stop reason.
        num_turns: agentic turns taken.
        result_message: the ``ResultMessage`` itself.
        messages: every message of the turn, in order.
    """

    text: str
    tool_calls: list[tuple[ToolUseBlock, ToolResultBlock | None]]
    thinking: str
    result: str | None
    is_error: bool
    session_id: str | None
    usage: dict[str, Any] | None
    total_cost_usd: float | None
    stop_reason: str | None
    num_turns: int | None
    result_message: ResultMessage | None = None
    messages: list[Message] = attrs.field(factory=list, repr=False)


@attrs.frozen
class ContentDelta:
    """One piece of a content block as it streams (``include_partial_messages=True``).

    Attributes:
        type: ``"text_delta"``, ``"input_json_delta"``, ``"thinking_delta"``,
            ``"signature_delta"``...
        index: the content block it belongs to.
        text: the text piece (``text_delta``).
        partial_json: the piece of a tool's JSON input (``input_json_delta``).
        thinking: the thinking piece (``thinking_delta``).
        raw: the ``delta`` object as sent.
    """

    type: str
    index: int | None
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)


def _input_item(item: Any) -> tuple[Any, str]:
    """``(content, uuid)`` for one message of a streaming prompt."""
    if isinstance(item, str):
        return item, str(uuid_mod.uuid4())
    if isinstance(item, dict):
        if item.get("type") != "user" or not isinstance(item.get("message"), dict):
            raise TypeError("a streamed message dict must be {'type': 'user', 'message': "
                            f"{{'role': 'user', 'content': ...}}}}, got {item!r}")
        content = item["message"].get("content")
        uid = item.get("uuid")
        if not isinstance(content, str | list):
            raise TypeError(f"a streamed message needs str or list content, got {content!r}")
        return (content if isinstance(content, str) else _plain(content),
                uid if isinstance(uid, str) else str(uuid_mod.uuid4()))
    if isinstance(item, Sequence) and not isinstance(item, bytes | bytearray):
        return _plain(list(item)), str(uuid_mod.uuid4())
    raise TypeError(f"a streamed message is a str, a list of content blocks or a user "
                    f"message dict, not {type(item).__name__}")


async def _feed(session: Pid, ref: Ref, consumer: Pid, prompt: AsyncIterable[Any]) -> None:
    """A streaming prompt's feeder: each message to the session, then the end."""
    from claudecode._protocol import encode_line

    try:
        async for item in prompt:
            content, uid = _input_item(item)
            encode_line(content)  # fail here, in the consumer's terms, not in the session
            otpy.send(session, (INPUT_TAG, ref, "input", content, uid))
    except Exception as exc:
        otpy.send(consumer, (STREAM_TAG, ref, "input_error", exc))
        return
    otpy.send(session, (INPUT_TAG, ref, "end"))


class Stream:
    """The messages of one query. Create it with :func:`stream`.

    Iterate it (``async for message in stream``) in an otpy process; the
    last message is the turn's ``ResultMessage``. A stream is consumed once:
    the helper methods below all read from the same iterator. Use it as an
    async context manager to stop early safely.
    """

    def __init__(self, session: Any, prompt: Prompt,
                 *, timeout: float | None = _UNSET) -> None:
        self._input: AsyncIterable[Any] | None = None
        if isinstance(prompt, str):
            content: Any = prompt
        elif isinstance(prompt, AsyncIterable):
            content = None
            self._input = prompt
        elif isinstance(prompt, Sequence) and not isinstance(prompt, bytes | bytearray):
            content = _plain(list(prompt))
        else:
            raise TypeError(f"a prompt is a str, a list of content blocks or an async "
                            f"iterable of messages, not {type(prompt).__name__}")
        if timeout is not _UNSET and timeout is not None and (
                not isinstance(timeout, int | float) or isinstance(timeout, bool)
                or not timeout > 0):
            raise ValueError(f"timeout must be positive seconds or None, got {timeout!r}")
        self._session = session
        self._content = content
        self._timeout: float | None = timeout
        self._state = "new"  # new | running | done | closed
        self._ref: Ref | None = None
        self._proc: Process | None = None
        self._session_pid: Pid | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._result: ResultMessage | None = None
        self._feeder: Pid | None = None
        self._observers: list[Callable[[Message], Any]] = []

    def __repr__(self) -> str:
        return f"<claudecode.Stream {self._state} session={self._session!r}>"

    # -- lifecycle -----------------------------------------------------------

    async def _start(self) -> None:
        proc = current()
        self._proc = proc
        self._token = trio.lowlevel.current_trio_token()
        ref = otpy.monitor(self._session)
        self._ref = ref
        self._state = "running"
        request: tuple[Any, ...] = ("query", ref, self._content, proc.pid)
        extra: dict[str, Any] = {}
        if self._input is not None:
            extra["streaming"] = True
        if self._timeout is not _UNSET:
            extra["timeout"] = self._timeout  # how long it may wait for a CLI slot
        if extra:
            request = (*request, extra)
        try:
            reply = await otpy.call(self._session, request, _QUERY_CALL_TIMEOUT)
        except otpy.CallError as err:
            self._finish()
            raise StreamError(err.reason, "the session could not take the query") from None
        except BaseException:
            self._abandon()
            raise
        if reply[0] != "ok":
            self._finish()
            if reply[1] == "prompt":
                raise TypeError(reply[2])
            raise StreamError(otpy.as_reason(reply), str(reply[2]))
        _, self._session_pid, default_timeout = reply
        if self._timeout is _UNSET:
            self._timeout = default_timeout
        if self._input is not None:
            assert self._session_pid is not None
            self._feeder = otpy.spawn(_feed, self._session_pid, ref, proc.pid, self._input,
                                      link=True)

    def _finish(self) -> None:
        """The stream is over: stop watching the session."""
        self._state = "done"
        proc, ref = self._proc, self._ref
        if proc is not None and ref is not None and proc.alive:
            proc.node.demonitor(proc, ref, True)
        self._stop_feeder()

    def _stop_feeder(self) -> None:
        """Stop a streaming prompt's feeder that is still running (unlinked first)."""
        feeder, proc = self._feeder, self._proc
        self._feeder = None
        if feeder is None or proc is None or not proc.alive:
            return
        with contextlib.suppress(Exception):
            proc.node.unlink(proc, feeder)
            proc.node.signal_exit(feeder, proc.pid, otpy.Kill(), link=False)

    def _abandon(self) -> None:
        """Tell the session we are gone, stop watching it, drop what it already sent.

        Synchronous on purpose: it runs from ``aclose``, from cancellation
        paths and (through the trio token) from ``__del__``.
        """
        if self._state != "running":
            return
        self._state = "closed"
        proc, ref = self._proc, self._ref
        if proc is None or ref is None:
            return
        self._stop_feeder()
        target = self._session_pid if self._session_pid is not None else self._session
        with contextlib.suppress(Exception):
            proc.node.send(target, (ABANDON_TAG, ref))
        if proc.alive:
            proc.node.demonitor(proc, ref, True)
            box = proc.mailbox
            if box:
                keep = [m for m in box if not _is_ours(m, ref)]
                if len(keep) != len(box):
                    box.clear()
                    box.extend(keep)

    async def aclose(self) -> None:
        """Stop consuming: the session interrupts the turn if it is still running."""
        if self._state == "running":
            self._abandon()
        elif self._state == "new":
            self._state = "closed"

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if getattr(self, "_state", None) != "running":
            return
        token = self._token
        if token is None:
            return
        with contextlib.suppress(trio.RunFinishedError, RuntimeError):
            token.run_sync_soon(self._abandon)

    # -- iteration -----------------------------------------------------------

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Message:
        if self._state == "new":
            await self._start()
        if self._state != "running":
            raise StopAsyncIteration
        proc = self._proc
        if proc is not None and current() is not proc:
            raise RuntimeError("a stream must be consumed by the process that started it")
        ref = self._ref
        assert ref is not None

        def match(m: Any) -> bool:
            return _is_ours(m, ref)

        timeout = self._timeout
        while True:
            try:
                msg = await otpy.receive(match, timeout=timeout)
            except otpy.Timeout:
                self._abandon()
                raise StreamError(otpy.Timeout(),
                                  f"no message within {timeout} s; the turn was interrupted"
                                  ) from None
            except BaseException:
                # Cancelled while waiting: the session is told, the turn interrupted.
                self._abandon()
                raise
            if type(msg) is Down or msg[2] != "waiting":
                break
            # The query waits for a CLI slot; the session fails it with
            # CLISlotTimeout after msg[3] seconds, so wait that long more.
            left = msg[3]
            timeout = None if left is None or self._timeout is None else left + self._timeout
        if type(msg) is Down:
            self._state = "done"
            raise StreamError(msg.reason, "the session exited")
        kind = msg[2]
        if kind == "message":
            message: Message = msg[3]
            if isinstance(message, ResultMessage):
                self._result = message
                if self._input is None:
                    self._finish()
            for observe in self._observers:
                try:
                    observe(message)
                except BaseException:
                    self._abandon()
                    raise
            return message
        if kind == "end":
            self._finish()
            raise StopAsyncIteration
        if kind == "input_error":
            self._abandon()
            exc = msg[3]
            raise StreamError(otpy.Crash(exc), f"the prompt's messages failed: {exc!r}")
        self._finish()
        raise StreamError(msg[3])

    # -- helpers ----------------------------------------------------------------

    async def text_content(self) -> AsyncIterator[str]:
        """The text of each assistant text block, as it completes."""
        async for message in self:
            if isinstance(message, AssistantMessage):
                for block in message.content:
                    if isinstance(block, TextBlock):
                        yield block.text

    async def thinking_content(self) -> AsyncIterator[str]:
        """The text of each thinking block, as it completes."""
        async for message in self:
            if isinstance(message, AssistantMessage):
                for block in message.content:
                    if isinstance(block, ThinkingBlock):
                        yield block.thinking

    async def text_deltas(self) -> AsyncIterator[str]:
        """Text as it is generated (needs ``include_partial_messages=True``)."""
        async for message in self:
            if isinstance(message, PartialAssistantMessage):
                delta = message.text_delta
                if delta:
                    yield delta

    async def thinking_deltas(self) -> AsyncIterator[str]:
        """Thinking as it is generated (needs ``include_partial_messages=True``)."""
        async for message in self:
            if isinstance(message, PartialAssistantMessage):
                delta = message.thinking_delta
                if delta:
                    yield delta

    async def tool_uses(self) -> AsyncIterator[ToolUseBlock]:
        """Each tool call the model makes."""
        async for message in self:
            if isinstance(message, AssistantMessage):
                for block in message.tool_uses:
                    yield block

    async def tool_results(self) -> AsyncIterator[ToolResultBlock]:
        """Each tool result sent back to the model."""
        async for message in self:
            if isinstance(message, UserMessage):
                for block in message.tool_results:
                    yield block

    def tap(self, fn: Callable[[Message], Any]) -> Stream:
        """Call ``fn(message)`` for every message as it is consumed; returns the stream.

        The messages are not changed or filtered; chain it with any other
        helper (``await stream.tap(log).final_text()``). If ``fn`` raises, the
        stream is abandoned (the turn interrupted) and the error propagates.

        Args:
            fn: a plain function of one message.

        Returns:
            This stream.
        """
        self._observers.append(fn)
        return self

    def on_tool_use(self, fn: Callable[[ToolUseBlock], Any]) -> Stream:
        """Call ``fn(block)`` for every tool call the model makes; returns the stream.

        Args:
            fn: a plain function of one :class:`~claudecode.ToolUseBlock`.

        Returns:
            This stream.
        """

        def observe(message: Message) -> None:
            if isinstance(message, AssistantMessage):
                for block in message.tool_uses:
                    fn(block)

        return self.tap(observe)

    async def filter_type(self, kind: str | type[Message] | tuple[type[Message], ...]
                          ) -> AsyncIterator[Message]:
        """The messages of one kind.

        Args:
            kind: a wire type (``"assistant"``, ``"result"``, ``"system"``,
                ``"stream_event"``, ``"rate_limit_event"``...) or a message
                class (or a tuple of them, e.g. ``claudecode.TaskStartedMessage``).

        Yields:
            The matching messages.
        """
        async for message in self:
            if isinstance(kind, str):
                if message.type == kind:
                    yield message
            elif isinstance(message, kind):
                yield message

    async def until_result(self) -> AsyncIterator[Message]:
        """The messages up to and including the first ``ResultMessage``.

        For a streaming prompt answered in several turns this stops after
        the first answer (the rest of the stream is abandoned when you stop
        iterating: use ``async with``).

        Yields:
            The messages.
        """
        async for message in self:
            yield message
            if isinstance(message, ResultMessage):
                return

    async def tool_results_by_name(self, name: str) -> AsyncIterator[ToolResultBlock]:
        """The results of one tool's calls (matched to its calls by tool-use id).

        Args:
            name: the tool's name as the model calls it (``"Bash"``,
                ``"mcp__calc__add"``...).

        Yields:
            Its :class:`~claudecode.ToolResultBlock` s.
        """
        ids: set[str] = set()
        async for message in self:
            if isinstance(message, AssistantMessage):
                ids.update(b.id for b in message.tool_uses if b.name == name)
            elif isinstance(message, UserMessage):
                for block in message.tool_results:
                    if block.tool_use_id in ids:
                        yield block

    async def content_deltas(self) -> AsyncIterator[ContentDelta]:
        """Every content delta as it streams: text, tool input JSON, thinking
        (needs ``include_partial_messages=True``).

        Yields:
            :class:`ContentDelta` objects.
        """
        async for message in self:
            if isinstance(message, PartialAssistantMessage) and \
                    message.event_type == "content_block_delta":
                delta = message.delta or {}
                index = message.event.get("index")
                kind = delta.get("type")
                yield ContentDelta(
                    kind if isinstance(kind, str) else "",
                    index if type(index) is int else None,
                    text=_opt(delta.get("text")),
                    partial_json=_opt(delta.get("partial_json")),
                    thinking=_opt(delta.get("thinking")),
                    raw=delta,
                )

    async def filter_event_type(self, event_type: str) -> AsyncIterator[PartialAssistantMessage]:
        """The partial messages of one API event type (``"content_block_delta"``...).

        Args:
            event_type: the SSE event type.

        Yields:
            The matching :class:`~claudecode.PartialAssistantMessage` s.
        """
        async for message in self:
            if isinstance(message, PartialAssistantMessage) and message.event_type == event_type:
                yield message

    async def final_result(self) -> ResultMessage:
        """Consume the stream and return its ``ResultMessage``.

        Raises:
            ResultError: the result has ``is_error`` set (``.result`` holds it).
            StreamError: the turn could not complete.
        """
        async for _ in self:
            pass
        result = self._result
        if result is None:
            raise StreamError(otpy.Normal(), "the stream was closed before its result")
        if result.is_error:
            raise ResultError(result)
        return result

    async def final_text(self) -> str:
        """Consume the stream and return the final result text.

        Raises:
            ResultError: the result has ``is_error`` set.
            StreamError: the turn could not complete.
        """
        result = await self.final_result()
        return result.result or ""

    async def collect(self) -> Collected:
        """Consume the stream and gather everything (never raises ``ResultError``).

        Raises:
            StreamError: the turn could not complete.
        """
        messages: list[Message] = []
        text: list[str] = []
        thinking: list[str] = []
        calls: dict[str, int] = {}
        tool_calls: list[tuple[ToolUseBlock, ToolResultBlock | None]] = []
        async for message in self:
            messages.append(message)
            if isinstance(message, AssistantMessage):
                for block in message.content:
                    if isinstance(block, TextBlock):
                        text.append(block.text)
                    elif isinstance(block, ThinkingBlock):
                        thinking.append(block.thinking)
                    elif isinstance(block, ToolUseBlock):
                        calls[block.id] = len(tool_calls)
                        tool_calls.append((block, None))
            elif isinstance(message, UserMessage):
                for result_block in message.tool_results:
                    i = calls.get(result_block.tool_use_id)
                    if i is not None:
                        tool_calls[i] = (tool_calls[i][0], result_block)
        result = self._result
        if result is None:
            raise StreamError(otpy.Normal(), "the stream was closed before its result")
        return Collected(
            text="".join(text),
            tool_calls=tool_calls,
            thinking="".join(thinking),
            result=result.result,
            is_error=result.is_error,
            session_id=result.session_id,
            usage=result.usage,
            total_cost_usd=result.total_cost_usd,
            stop_reason=result.stop_reason,
            num_turns=result.num_turns,
            result_message=result,
            messages=messages,
        )

    @property
    def result(self) -> ResultMessage | None:
        """The ``ResultMessage`` once the stream reached it."""
        return self._result


def _opt(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _is_ours(m: Any, ref: Ref) -> bool:
    t = type(m)
    if t is tuple:
        return len(m) == 4 and m[0] == STREAM_TAG and m[1] == ref
    return t is Down and m.ref == ref


def stream(session: Any, prompt: Prompt, *, timeout: float | None = _UNSET) -> Stream:
    """A stream of the messages of one query to ``session``.

    Nothing is sent until the stream is first iterated (or awaited with
    ``collect`` / ``final_text`` / ``final_result``). Consume it inside an
    otpy process.

    Args:
        session: a session pid or name (local, ``otpy.Global``, ``otpy.Via``).
        prompt: the prompt text, a list of content blocks (objects or dicts),
            or an async iterable of user messages (streaming input).
        timeout: seconds to wait for each next message; ``None`` waits
            forever; default: the session's ``timeout`` option. On expiry the
            stream fails with ``StreamError(otpy.Timeout())`` and the turn is
            interrupted.

    Returns:
        The :class:`Stream`.
    """
    return Stream(session, prompt, timeout=timeout)


async def query(prompt: Prompt, **options: Any) -> ResultMessage:
    """One-off query: start a temporary session, run one turn, stop the session.

    The session is not linked to the caller but stops if the caller exits,
    and is always stopped (with its CLI) before this returns. A ``name``
    option is ignored (the session is private to this call).

    Args:
        prompt: the prompt.
        **options: session options (as for ``start_link``); ``timeout``
            applies to the stream.

    Returns:
        The turn's ``ResultMessage`` (``.result`` is the text).

    Raises:
        ResultError: the turn ended with an error result.
        StreamError: the turn could not complete.
        OptionError / CLINotFoundError: as for ``start_link``.
    """
    options.pop("name", None)
    session = await start_owned(otpy.self(), **options)
    try:
        return await stream(session, prompt).final_result()
    finally:
        with trio.CancelScope(shield=True), contextlib.suppress(otpy.CallError):
            await stop(session)
