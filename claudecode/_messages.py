"""Typed messages and content blocks of the Claude Code CLI's ``stream-json`` output.

Every line the CLI prints on stdout is one JSON object with a ``"type"``. This
module turns such a decoded object into an attrs instance:

======================  ====================================================
wire ``type``           class
======================  ====================================================
``system``              :class:`SystemMessage`, or by ``subtype`` one of its
                        subclasses (:data:`SYSTEM_SUBTYPE_CLASSES`):
                        :class:`TaskStartedMessage`,
                        :class:`TaskProgressMessage`,
                        :class:`TaskNotificationMessage`,
                        :class:`TaskUpdatedMessage`,
                        :class:`BackgroundTasksChangedMessage`,
                        :class:`HookStartedMessage`,
                        :class:`HookProgressMessage`,
                        :class:`HookResponseMessage`,
                        :class:`CompactBoundaryMessage`,
                        :class:`StatusMessage`, :class:`ApiRetryMessage`,
                        :class:`ThinkingTokensMessage`,
                        :class:`LocalCommandOutputMessage`,
                        :class:`FilesPersistedMessage`,
                        :class:`ElicitationCompleteMessage`,
                        :class:`NotificationMessage`
``assistant``           :class:`AssistantMessage`
``user``                :class:`UserMessage`
``result``              :class:`ResultMessage`
``stream_event``        :class:`PartialAssistantMessage`
``rate_limit_event``    :class:`RateLimitEvent`
``tool_progress``       :class:`ToolProgressMessage`
``auth_status``         :class:`AuthStatusMessage`
``tool_use_summary``    :class:`ToolUseSummaryMessage`
``prompt_suggestion``   :class:`PromptSuggestionMessage`
``conversation_reset``  :class:`ConversationResetMessage`
``command_lifecycle``   :class:`CommandLifecycleMessage`
anything else           :class:`UnknownMessage` (kept whole, for CLIs to come)
======================  ====================================================

Content blocks inside ``message.content`` become :class:`TextBlock`,
:class:`ThinkingBlock`, :class:`RedactedThinkingBlock`, :class:`ToolUseBlock`,
:class:`ToolResultBlock`, :class:`ServerToolUseBlock`,
:class:`ServerToolResultBlock` (:class:`WebSearchToolResultBlock` for web
search), :class:`McpToolUseBlock`, :class:`McpToolResultBlock`,
:class:`ImageBlock`, :class:`DocumentBlock`, :class:`CompactionBlock` or
:class:`UnknownBlock`. Token usage is a :class:`~claudecode._usage.Usage` (a
dict with typed properties), per-model usage a
:class:`~claudecode._usage.ModelUsage`.

Rules (decided here, relied on by the session layer):

* **Nothing is lost.** Every message and block keeps the dict it was built
  from in ``.raw`` (the same object, not a copy), so fields this module does
  not model are still there. Objects built in code have ``raw == {}`` and
  :func:`to_dict` rebuilds their wire form from the fields.
* **Never raise on input.** Unknown ``type`` values become
  :class:`UnknownMessage` / :class:`UnknownBlock`. A *known* type with missing
  or ill-typed fields is still returned as its class: absent values degrade to
  ``None`` (or an empty string/list where the field is not optional) and, for
  :class:`ResultMessage`, the names of missing required fields are listed in
  ``missing_fields``. A malformed result therefore still ends the turn instead
  of hanging the stream.
* **Fast.** :func:`parse_message` is a dict dispatch on ``type`` into
  hand-written structure functions (the rarer line types use one generic
  lenient function per class, derived from its attrs fields); JSON is
  decoded with ``orjson`` when it is installed (falling back to :mod:`json`
  for anything orjson refuses, e.g. ``NaN`` or huge integers). The cattrs
  :data:`converter` is registered with the very same functions, so
  ``converter.structure(d, Message)`` costs no more than :func:`parse_message`.

Instances are plain mutable attrs classes (mutability keeps construction
cheap); treat them as read-only values.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from math import isfinite as _isfinite
from typing import Any, ClassVar, Final, TypeAlias, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from claudecode._lenient import lenient as _lenient
from claudecode._lenient import register
from claudecode._usage import ModelUsage, Usage, model_usage_of, usage_of

_orjson: Any
try:  # optional accelerator: 3-5x faster decoding than the stdlib
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised only without orjson
    _orjson = None

__all__ = [
    "OTHER_MESSAGE_CLASSES",
    "SYSTEM_SUBTYPE_CLASSES",
    "ApiRetryMessage",
    "AssistantMessage",
    "AuthStatusMessage",
    "BackgroundTasksChangedMessage",
    "CommandLifecycleMessage",
    "CompactBoundaryMessage",
    "CompactionBlock",
    "ContentBlock",
    "ConversationResetMessage",
    "DeferredToolUse",
    "DocumentBlock",
    "ElicitationCompleteMessage",
    "FilesPersistedMessage",
    "HookEventMessage",
    "HookProgressMessage",
    "HookResponseMessage",
    "HookStartedMessage",
    "ImageBlock",
    "LocalCommandOutputMessage",
    "McpToolResultBlock",
    "McpToolUseBlock",
    "Message",
    "ModelUsage",
    "NotificationMessage",
    "PartialAssistantMessage",
    "PromptSuggestionMessage",
    "RateLimitEvent",
    "RateLimitInfo",
    "RedactedThinkingBlock",
    "ResultMessage",
    "ServerToolResultBlock",
    "ServerToolUseBlock",
    "StatusMessage",
    "SystemMessage",
    "TaskNotificationMessage",
    "TaskProgressMessage",
    "TaskStartedMessage",
    "TaskUpdatedMessage",
    "TextBlock",
    "ThinkingBlock",
    "ThinkingTokensMessage",
    "ToolProgressMessage",
    "ToolResultBlock",
    "ToolUseBlock",
    "ToolUseSummaryMessage",
    "UnknownBlock",
    "UnknownMessage",
    "Usage",
    "UserMessage",
    "WebSearchToolResultBlock",
    "converter",
    "json_loads",
    "parse_content_block",
    "parse_line",
    "parse_message",
    "to_dict",
]

RawDict: TypeAlias = dict[str, Any]
"""A decoded JSON object."""


# ---------------------------------------------------------------------------
# JSON decoding
# ---------------------------------------------------------------------------

_std_loads: Final = json.loads

if _orjson is not None:
    _fast_loads: Callable[[Any], Any] | None = _orjson.loads
    _FastDecodeError: type[Exception] = _orjson.JSONDecodeError
else:  # pragma: no cover
    _fast_loads = None
    _FastDecodeError = ValueError


def json_loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode one JSON document, as fast as the installed libraries allow.

    ``orjson`` is tried first; whatever it refuses (``NaN``, lone surrogate
    escapes, very deep nesting) is retried with the standard library, so every
    document the stdlib accepts decodes. One difference is kept on purpose:
    integers beyond 64 bits become the nearest float, which is exactly the
    value the CLI had (it is JavaScript: all its numbers are doubles).

    Args:
        data: UTF-8 bytes or text of exactly one JSON document.

    Returns:
        The decoded value.

    Raises:
        ValueError: not valid JSON (``json.JSONDecodeError`` or
            ``UnicodeDecodeError``, both ``ValueError`` subclasses).
        RecursionError: nesting too deep even for the standard library.
    """
    if _fast_loads is not None:
        try:
            return _fast_loads(data)
        except _FastDecodeError:
            pass
    if isinstance(data, (bytearray, memoryview)):
        return _std_loads(bytes(data))
    return _std_loads(data)


# ---------------------------------------------------------------------------
# Content blocks
# ---------------------------------------------------------------------------


@attrs.define
class ContentBlock:
    """Base class of content blocks (``message.content`` items)."""

    TYPE: ClassVar[str] = ""

    @property
    def type(self) -> str:
        """The wire ``type`` of this block (e.g. ``"text"``)."""
        return self.TYPE

    @property
    def raw(self) -> RawDict:
        """The dict the block was built from (every subclass stores it as a field)."""
        raise NotImplementedError  # pragma: no cover - shadowed by the subclass field


@attrs.define
class TextBlock(ContentBlock):
    """Plain text written by the model (or by the user).

    Attributes:
        text: the text.
        citations: citation objects, when the API attached any.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "text"
    text: str = ""
    citations: list[Any] | None = None
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class ThinkingBlock(ContentBlock):
    """Extended-thinking text.

    Attributes:
        thinking: the reasoning text.
        signature: the API's signature over it.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "thinking"
    thinking: str = ""
    signature: str = ""
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class RedactedThinkingBlock(ContentBlock):
    """Thinking the API returned encrypted.

    Attributes:
        data: the opaque payload.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "redacted_thinking"
    data: str = ""
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class ToolUseBlock(ContentBlock):
    """The model asks to run a (client-side) tool.

    Attributes:
        id: the tool-use id that the matching :class:`ToolResultBlock` refers to.
        name: the tool's name (``"Bash"``, ``"mcp__server__tool"``...).
        input: the tool's arguments.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "tool_use"
    id: str = ""
    name: str = ""
    input: dict[str, Any] = attrs.field(factory=dict)
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class ToolResultBlock(ContentBlock):
    """The result of a tool run, sent back to the model in a user message.

    Attributes:
        tool_use_id: id of the :class:`ToolUseBlock` this answers.
        content: a string, a list of blocks (text, images...) or ``None``.
        is_error: whether the tool failed (``None`` when not stated).
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "tool_result"
    tool_use_id: str = ""
    content: str | list[ContentBlock] | None = None
    is_error: bool | None = None
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class ServerToolUseBlock(ContentBlock):
    """A tool the API runs itself (web search, web fetch, code execution...).

    Attributes:
        id: the server tool-use id.
        name: which server tool (``"web_search"``...).
        input: its arguments.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "server_tool_use"
    id: str = ""
    name: str = ""
    input: dict[str, Any] = attrs.field(factory=dict)
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class ServerToolResultBlock(ContentBlock):
    """The result of a server tool (any ``*_tool_result`` block but ``tool_result``).

    :attr:`type` is the wire type as received (``"web_fetch_tool_result"``,
    ``"code_execution_tool_result"``...).

    Attributes:
        tool_use_id: id of the :class:`ServerToolUseBlock` it answers.
        content: the result payload, as sent.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "server_tool_result"
    tool_use_id: str = ""
    content: Any = None
    raw: RawDict = attrs.field(factory=dict, repr=False)

    @property
    def type(self) -> str:
        """The wire ``type`` as received (the class default for hand-built blocks)."""
        value = self.raw.get("type")
        return value if isinstance(value, str) else self.TYPE


@attrs.define
class WebSearchToolResultBlock(ServerToolResultBlock):
    """Results of the server-side web search tool (``web_search_tool_result``)."""

    TYPE: ClassVar[str] = "web_search_tool_result"


@attrs.define
class McpToolUseBlock(ContentBlock):
    """A remote MCP tool call made by the API (``mcp_tool_use``).

    Attributes:
        id: the tool-use id.
        name: the tool name.
        server_name: the MCP server.
        input: the arguments.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "mcp_tool_use"
    id: str = ""
    name: str = ""
    server_name: str = ""
    input: dict[str, Any] = attrs.field(factory=dict)
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class McpToolResultBlock(ContentBlock):
    """The result of a remote MCP tool call (``mcp_tool_result``).

    Attributes:
        tool_use_id: id of the :class:`McpToolUseBlock`.
        content: the result (string or list of blocks).
        is_error: whether it failed.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "mcp_tool_result"
    tool_use_id: str = ""
    content: str | list[ContentBlock] | None = None
    is_error: bool | None = None
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class ImageBlock(ContentBlock):
    """An image (in a prompt or in a tool result).

    Attributes:
        source: ``{"type": "base64", "media_type": ..., "data": ...}`` or a URL source.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "image"
    source: dict[str, Any] = attrs.field(factory=dict)
    raw: RawDict = attrs.field(factory=dict, repr=False)

    @property
    def media_type(self) -> str | None:
        """The image's MIME type, when the source states it."""
        value = self.source.get("media_type")
        return value if isinstance(value, str) else None


@attrs.define
class DocumentBlock(ContentBlock):
    """A document (PDF, plain text...) given to the model.

    Attributes:
        source: the document source object.
        title: its title, if any.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "document"
    source: dict[str, Any] = attrs.field(factory=dict)
    title: str | None = None
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class CompactionBlock(ContentBlock):
    """A summary of earlier context the API compacted (``compaction``).

    Attributes:
        content: the summary text (``None`` when the compaction failed).
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "compaction"
    content: str | None = None
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class UnknownBlock(ContentBlock):
    """A block of a type this module does not model; everything is in ``raw``."""

    raw: RawDict = attrs.field(factory=dict)

    @property
    def type(self) -> str:
        """The wire ``type`` (``""`` when the block had none)."""
        value = self.raw.get("type")
        return value if isinstance(value, str) else ""


# ---------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------


@attrs.define
class Message:
    """Base class of every parsed stdout line."""

    TYPE: ClassVar[str] = ""

    @property
    def type(self) -> str:
        """The wire ``type`` (``"assistant"``, ``"result"``...)."""
        return self.TYPE

    @property
    def raw(self) -> RawDict:
        """The line as received (every subclass stores it as a field)."""
        raise NotImplementedError  # pragma: no cover - shadowed by the subclass field


@attrs.define
class SystemMessage(Message):
    """A ``system`` line: ``init`` at the start of every turn, ``status``, hooks...

    The ``init`` fields are filled from the line when present (``None``
    otherwise); every other field of any subtype is in :attr:`data`.

    Attributes:
        subtype: ``"init"``, ``"status"``, ``"compact_boundary"``...
        session_id: the session id.
        uuid: the line's uuid.
        cwd: the CLI's working directory (``init``).
        model: the model in use (``init``).
        tools: names of the available tools (``init``).
        mcp_servers: ``[{"name", "status"}]`` (``init``).
        permission_mode: the CLI's permission mode, e.g. ``"acceptEdits"`` (``init``).
        api_key_source: where the CLI found credentials (``init``).
        claude_code_version: the CLI version (``init``).
        slash_commands: available slash commands (``init``).
        agents: available agent names (``init``).
        skills: available skills (``init``).
        plugins: loaded plugins (``init``).
        output_style: the output style (``init``).
        raw: the source dict (also available as :attr:`data`).
    """

    TYPE: ClassVar[str] = "system"
    subtype: str = ""
    session_id: str | None = None
    uuid: str | None = None
    cwd: str | None = None
    model: str | None = None
    tools: list[str] | None = None
    mcp_servers: list[dict[str, Any]] | None = None
    permission_mode: str | None = attrs.field(default=None, metadata={"wire": "permissionMode"})
    api_key_source: str | None = attrs.field(default=None, metadata={"wire": "apiKeySource"})
    claude_code_version: str | None = None
    slash_commands: list[str] | None = None
    agents: list[Any] | None = None
    skills: list[Any] | None = None
    plugins: list[Any] | None = None
    output_style: str | None = None
    raw: RawDict = attrs.field(factory=dict, repr=False)

    @property
    def data(self) -> RawDict:
        """The whole line as received (same object as :attr:`raw`)."""
        return self.raw

    @property
    def is_init(self) -> bool:
        """Whether this is the ``init`` line that opens a turn."""
        return self.subtype == "init"


@attrs.define
class AssistantMessage(Message):
    """An ``assistant`` line: the CLI prints one per content block.

    Attributes:
        content: the blocks (usually exactly one).
        model: the model that wrote it (``"<synthetic>"`` for CLI-made errors).
        message_id: the API message id, shared by the lines of one response.
        stop_reason: the API stop reason, when known.
        usage: token usage (a :class:`~claudecode._usage.Usage`: a dict with
            typed properties).
        parent_tool_use_id: set when a subagent (Task tool) produced it.
        session_id: the session id.
        uuid: the line's uuid.
        error: the CLI's error category (``"rate_limit"``, ``"unknown"``...).
        is_api_error_message: the CLI made this message up to report an API error.
        api_error_status: the HTTP status of that API error.
        aborted: the turn was interrupted while this message streamed.
        agent_id: the subagent that wrote it (with ``forward_subagent_text``).
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "assistant"
    content: list[ContentBlock] = attrs.field(factory=list)
    model: str | None = None
    message_id: str | None = None
    stop_reason: str | None = None
    usage: Usage | None = None
    parent_tool_use_id: str | None = None
    session_id: str | None = None
    uuid: str | None = None
    error: str | None = None
    is_api_error_message: bool = False
    api_error_status: int | None = None
    aborted: bool = False
    agent_id: str | None = None
    raw: RawDict = attrs.field(factory=dict, repr=False)

    @property
    def text(self) -> str:
        """The concatenated text of the :class:`TextBlock` s in :attr:`content`."""
        return "".join([b.text for b in self.content if isinstance(b, TextBlock)])

    @property
    def tool_uses(self) -> list[ToolUseBlock]:
        """The :class:`ToolUseBlock` s in :attr:`content`."""
        return [b for b in self.content if isinstance(b, ToolUseBlock)]


@attrs.define
class UserMessage(Message):
    """A ``user`` line: tool results, replayed prompts, interruption notices.

    Attributes:
        content: a plain string or a list of blocks.
        tool_use_result: the CLI's structured description of a tool result.
        parent_tool_use_id: set when it belongs to a subagent.
        session_id: the session id.
        uuid: the line's (transcript) uuid.
        is_synthetic: the CLI generated it (e.g. "[Request interrupted by user]").
        is_replay: an echo of our own input (``--replay-user-messages``).
        origin: who produced this message, when the CLI says (``{"kind":
            "task-notification", ...}`` for a turn the CLI started itself,
            ``{"kind": "human"}``...); ``None`` otherwise.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "user"
    content: str | list[ContentBlock] = ""
    tool_use_result: Any = None
    parent_tool_use_id: str | None = None
    session_id: str | None = None
    uuid: str | None = None
    is_synthetic: bool = False
    is_replay: bool = False
    origin: dict[str, Any] | None = None
    raw: RawDict = attrs.field(factory=dict, repr=False)

    @property
    def text(self) -> str:
        """The text of the message: the string, or its text blocks concatenated."""
        if isinstance(self.content, str):
            return self.content
        return "".join([b.text for b in self.content if isinstance(b, TextBlock)])

    @property
    def tool_results(self) -> list[ToolResultBlock]:
        """The :class:`ToolResultBlock` s in :attr:`content`."""
        if isinstance(self.content, str):
            return []
        return [b for b in self.content if isinstance(b, ToolResultBlock)]


@attrs.define
class DeferredToolUse:
    """A tool call a ``PreToolUse`` hook deferred (``permissionDecision: "defer"``).

    Attributes:
        id: the tool-use id.
        name: the tool.
        input: its arguments.
    """

    id: str = ""
    name: str = ""
    input: dict[str, Any] = attrs.field(factory=dict)


RESULT_REQUIRED_FIELDS: Final = (
    "subtype",
    "is_error",
    "session_id",
    "duration_ms",
    "duration_api_ms",
    "num_turns",
)
"""Fields a well-formed ``result`` line always carries."""


@attrs.define
class ResultMessage(Message):
    """The ``result`` line that ends every turn.

    A result with missing or ill-typed required fields is still a
    ``ResultMessage`` (so the turn ends); their names are in
    :attr:`missing_fields` and their values are ``None`` (``is_error`` then
    defaults to ``subtype != "success"``).

    Attributes:
        subtype: ``"success"``, ``"error_max_turns"``, ``"error_during_execution"``,
            ``"error_max_budget_usd"``... (``""`` when missing).
        is_error: whether the turn failed.
        session_id: the session id.
        result: the final text (success) or error text.
        usage: total token usage (a :class:`~claudecode._usage.Usage`).
        total_cost_usd: the cost of the session so far.
        num_turns: agentic turns taken.
        duration_ms: wall time of the turn.
        duration_api_ms: time spent in API calls.
        permission_denials: tools the permission system refused.
        terminal_reason: why the loop ended (``"api_error"``, ``"aborted_streaming"``...).
        structured_output: the validated object when ``output_format`` was given.
        stop_reason: the last API stop reason.
        model_usage: per-model usage and cost (wire name ``modelUsage``), each a
            :class:`~claudecode._usage.ModelUsage`.
        errors: error strings of error subtypes.
        api_error_status: HTTP status of an API error, if any.
        uuid: the line's uuid.
        origin: what started this turn, when the CLI says: ``{"kind":
            "task-notification", ...}`` for a turn the CLI began by itself
            (a background task finished), ``None`` for an ordinary prompt.
        user_message_uuids: the uuids of the user messages this turn answered.
        deferred_tool_use: the tool call a ``PreToolUse`` hook deferred, if any.
        missing_fields: names of required fields that were absent or ill-typed.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "result"
    subtype: str = ""
    is_error: bool = False
    session_id: str | None = None
    result: str | None = None
    usage: dict[str, Any] | None = None
    total_cost_usd: float | None = None
    num_turns: int | None = None
    duration_ms: int | None = None
    duration_api_ms: int | None = None
    permission_denials: list[Any] = attrs.field(factory=list)
    terminal_reason: str | None = None
    structured_output: Any = None
    stop_reason: str | None = None
    model_usage: dict[str, ModelUsage] | None = None
    errors: list[str] = attrs.field(factory=list)
    api_error_status: int | None = None
    uuid: str | None = None
    origin: dict[str, Any] | None = None
    user_message_uuids: list[str] = attrs.field(factory=list)
    deferred_tool_use: DeferredToolUse | None = None
    missing_fields: tuple[str, ...] = ()
    raw: RawDict = attrs.field(factory=dict, repr=False)

    @property
    def is_malformed(self) -> bool:
        """Whether required fields were missing or ill-typed."""
        return bool(self.missing_fields)


@attrs.define
class PartialAssistantMessage(Message):
    """A ``stream_event`` line (``--include-partial-messages``): one raw API SSE event.

    Attributes:
        event: the Anthropic stream event (``message_start``, ``content_block_delta``...).
        session_id: the session id.
        parent_tool_use_id: set when a subagent produced it.
        uuid: the line's uuid.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "stream_event"
    event: dict[str, Any] = attrs.field(factory=dict)
    session_id: str | None = None
    parent_tool_use_id: str | None = None
    uuid: str | None = None
    raw: RawDict = attrs.field(factory=dict, repr=False)

    @property
    def event_type(self) -> str | None:
        """The SSE event's ``type`` (``"content_block_delta"``...)."""
        value = self.event.get("type")
        return value if isinstance(value, str) else None

    @property
    def delta(self) -> dict[str, Any] | None:
        """The ``delta`` object of a delta event, else ``None``."""
        value = self.event.get("delta")
        return value if isinstance(value, dict) else None

    @property
    def text_delta(self) -> str | None:
        """The text of a ``text_delta``, else ``None``."""
        delta = self.delta
        if delta is not None and delta.get("type") == "text_delta":
            text = delta.get("text")
            return text if isinstance(text, str) else None
        return None

    @property
    def thinking_delta(self) -> str | None:
        """The text of a ``thinking_delta``, else ``None``."""
        delta = self.delta
        if delta is not None and delta.get("type") == "thinking_delta":
            text = delta.get("thinking")
            return text if isinstance(text, str) else None
        return None


# ---------------------------------------------------------------------------
# System subtypes (each a SystemMessage: ``isinstance(m, SystemMessage)`` holds)
# ---------------------------------------------------------------------------


@attrs.define
class TaskStartedMessage(SystemMessage):
    """``system/task_started``: a task began (a background ``Bash``, a subagent...).

    Attributes:
        task_id: the task's id (for :func:`claudecode.stop_task`).
        description: what it does.
        tool_use_id: the tool call that started it.
        task_type: ``"local_bash"``, ``"local_agent"``...
        subagent_type: the agent type of a subagent task.
        is_backgrounded: whether it runs in the background.
        prompt: what a subagent was asked.
    """

    task_id: str = ""
    description: str = ""
    tool_use_id: str | None = None
    task_type: str | None = None
    subagent_type: str | None = None
    is_backgrounded: bool | None = None
    prompt: str | None = None


@attrs.define
class TaskProgressMessage(SystemMessage):
    """``system/task_progress``: a running task reports progress.

    Attributes:
        task_id: the task.
        description: what it does.
        usage: ``{"total_tokens", "tool_uses", "duration_ms"}`` so far.
        tool_use_id: the tool call that started it.
        last_tool_name: the tool it used last.
        progress_summary: a one-line status, when the CLI made one (wire ``summary``).
    """

    task_id: str = ""
    description: str = ""
    usage: dict[str, Any] = attrs.field(factory=dict)
    tool_use_id: str | None = None
    last_tool_name: str | None = None
    progress_summary: str | None = attrs.field(default=None, metadata={"wire": "summary"})


@attrs.define
class TaskNotificationMessage(SystemMessage):
    """``system/task_notification``: a task completed, failed or was stopped.

    Between turns (a background task finishing after the turn's result) it
    reaches :func:`claudecode.subscribe`; the CLI then usually starts a turn
    of its own to tell the model.

    Attributes:
        task_id: the task.
        status: ``"completed"``, ``"failed"`` or ``"stopped"``.
        output_file: where the task's output was written (``""`` if nowhere).
        summary: what happened, in one line.
        tool_use_id: the tool call that started it.
        usage: ``{"total_tokens", "tool_uses", "duration_ms"}``, when reported.
    """

    task_id: str = ""
    status: str = ""
    output_file: str = ""
    summary: str = ""
    tool_use_id: str | None = None
    usage: dict[str, Any] | None = None


@attrs.define
class TaskUpdatedMessage(SystemMessage):
    """``system/task_updated``: fields of a task changed (``patch``).

    A task's end can arrive only this way (``patch["status"]`` terminal:
    ``completed``, ``failed``, ``killed``).

    Attributes:
        task_id: the task.
        patch: the changed fields.
    """

    task_id: str = ""
    patch: dict[str, Any] = attrs.field(factory=dict)

    @property
    def status(self) -> str | None:
        """``patch["status"]``, when the patch has one."""
        value = self.patch.get("status")
        return value if isinstance(value, str) else None


@attrs.define
class BackgroundTasksChangedMessage(SystemMessage):
    """``system/background_tasks_changed``: the set of background tasks now running.

    Attributes:
        tasks: one dict per task (``task_id``, ``task_type``, ``description``...).
    """

    tasks: list[dict[str, Any]] = attrs.field(factory=list)


@attrs.define
class HookEventMessage(SystemMessage):
    """Base of the hook lifecycle lines (``include_hook_events=True``).

    Attributes:
        hook_id: the hook run's id.
        hook_name: the hook's name (``"PreToolUse:Bash"``...).
        hook_event: the event (``"PreToolUse"``...).
    """

    hook_id: str = ""
    hook_name: str = ""
    hook_event: str = ""

    @property
    def hook_event_name(self) -> str:
        """The event name (claude-agent-sdk's spelling of :attr:`hook_event`)."""
        return self.hook_event


@attrs.define
class HookStartedMessage(HookEventMessage):
    """``system/hook_started``: a hook began."""


@attrs.define
class HookProgressMessage(HookEventMessage):
    """``system/hook_progress``: a hook's output so far.

    Attributes:
        stdout: its standard output so far.
        stderr: its standard error so far.
        output: both, interleaved.
    """

    stdout: str = ""
    stderr: str = ""
    output: str = ""


@attrs.define
class HookResponseMessage(HookEventMessage):
    """``system/hook_response``: a hook finished.

    Attributes:
        outcome: ``"success"``, ``"error"`` or ``"cancelled"``.
        exit_code: its exit status, when it was a command.
        stdout: its standard output.
        stderr: its standard error.
        output: both, interleaved.
    """

    outcome: str = ""
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    output: str = ""


@attrs.define
class CompactBoundaryMessage(SystemMessage):
    """``system/compact_boundary``: the conversation was compacted here.

    Attributes:
        compact_metadata: everything the CLI reports (``trigger``,
            ``pre_tokens``, ``post_tokens``, ``duration_ms``...).
    """

    compact_metadata: dict[str, Any] = attrs.field(factory=dict)

    @property
    def trigger(self) -> str | None:
        """``"manual"`` (``/compact``) or ``"auto"``."""
        value = self.compact_metadata.get("trigger")
        return value if isinstance(value, str) else None

    @property
    def pre_tokens(self) -> int | None:
        """Context tokens before compaction."""
        value = self.compact_metadata.get("pre_tokens")
        return value if type(value) is int else None

    @property
    def post_tokens(self) -> int | None:
        """Context tokens after compaction."""
        value = self.compact_metadata.get("post_tokens")
        return value if type(value) is int else None


@attrs.define
class StatusMessage(SystemMessage):
    """``system/status``: the CLI's activity changed (``"requesting"``,
    ``"compacting"``, ``None`` for idle...).

    Attributes:
        status: the new status, or ``None``.
        compact_result: ``"success"`` / ``"failed"`` at the end of a compaction.
        compact_error: why a compaction failed.
    """

    status: str | None = None
    compact_result: str | None = None
    compact_error: str | None = None


@attrs.define
class ApiRetryMessage(SystemMessage):
    """``system/api_retry``: an API call failed and will be retried.

    Attributes:
        attempt: this retry's number (from 1).
        max_retries: how many retries are allowed.
        retry_delay_ms: the wait before the retry.
        error_status: the HTTP status (``None`` for a connection error).
        error: the CLI's error category.
    """

    attempt: int | None = None
    max_retries: int | None = None
    retry_delay_ms: int | None = None
    error_status: int | None = None
    error: Any = None


@attrs.define
class ThinkingTokensMessage(SystemMessage):
    """``system/thinking_tokens``: the running estimate of thinking tokens.

    Attributes:
        estimated_tokens: the estimate for the current thinking block.
        estimated_tokens_delta: the change since the last line.
    """

    estimated_tokens: int | None = None
    estimated_tokens_delta: int | None = None


@attrs.define
class LocalCommandOutputMessage(SystemMessage):
    """``system/local_command_output``: what a local slash command printed.

    Attributes:
        content: the output.
    """

    content: str = ""


@attrs.define
class FilesPersistedMessage(SystemMessage):
    """``system/files_persisted``: files were uploaded.

    Attributes:
        files: ``[{"filename", "file_id"}]``.
        failed: ``[{"filename", "error"}]``.
        processed_at: when.
    """

    files: list[dict[str, Any]] = attrs.field(factory=list)
    failed: list[dict[str, Any]] = attrs.field(factory=list)
    processed_at: str | None = None


@attrs.define
class ElicitationCompleteMessage(SystemMessage):
    """``system/elicitation_complete``: an MCP server finished a URL elicitation.

    Attributes:
        mcp_server_name: the server.
        elicitation_id: the elicitation.
    """

    mcp_server_name: str = ""
    elicitation_id: str = ""


@attrs.define
class NotificationMessage(SystemMessage):
    """``system/notification``: a text notice from the CLI.

    Attributes:
        key: its key.
        text: the text.
        priority: ``"low"`` ... ``"immediate"``.
    """

    key: str = ""
    text: str = ""
    priority: str | None = None


# ---------------------------------------------------------------------------
# Other line types
# ---------------------------------------------------------------------------


@attrs.define
class RateLimitInfo:
    """The rate-limit state in a :class:`RateLimitEvent` (camelCase on the wire).

    Attributes:
        status: ``"allowed"``, ``"allowed_warning"`` or ``"rejected"``.
        resets_at: when the window resets (Unix seconds).
        rate_limit_type: ``"five_hour"``, ``"seven_day"``, ``"overage"``...
        utilization: the part of the limit used (0..1).
        overage_status: the status of pay-as-you-go overage.
        overage_resets_at: when the overage window resets.
        overage_disabled_reason: why overage is unavailable.
        raw: the source dict.
    """

    status: str = ""
    resets_at: int | None = attrs.field(default=None, metadata={"wire": "resetsAt"})
    rate_limit_type: str | None = attrs.field(default=None, metadata={"wire": "rateLimitType"})
    utilization: float | None = None
    overage_status: str | None = attrs.field(default=None, metadata={"wire": "overageStatus"})
    overage_resets_at: int | None = attrs.field(default=None,
                                                metadata={"wire": "overageResetsAt"})
    overage_disabled_reason: str | None = attrs.field(
        default=None, metadata={"wire": "overageDisabledReason"})
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class RateLimitEvent(Message):
    """A ``rate_limit_event`` line: the account's rate-limit state changed.

    The pinned CLI prints it for claude.ai subscription logins (not with an
    API key).

    Attributes:
        rate_limit_info: the new state.
        session_id: the session id.
        uuid: the line's uuid.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "rate_limit_event"
    rate_limit_info: RateLimitInfo = attrs.field(factory=RateLimitInfo)
    session_id: str | None = None
    uuid: str | None = None
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class ToolProgressMessage(Message):
    """A ``tool_progress`` line: a tool is still running.

    Attributes:
        tool_use_id: the tool call.
        tool_name: the tool.
        elapsed_time_seconds: how long it has run.
        parent_tool_use_id: set inside a subagent.
        task_id: the task running it, if any.
        session_id: the session id.
        uuid: the line's uuid.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "tool_progress"
    tool_use_id: str = ""
    tool_name: str = ""
    elapsed_time_seconds: float | None = None
    parent_tool_use_id: str | None = None
    task_id: str | None = None
    session_id: str | None = None
    uuid: str | None = None
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class AuthStatusMessage(Message):
    """An ``auth_status`` line: progress of an authentication flow.

    Attributes:
        is_authenticating: whether authentication is under way (wire ``isAuthenticating``).
        output: lines of output from the flow.
        error: what went wrong, if anything.
        session_id: the session id.
        uuid: the line's uuid.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "auth_status"
    is_authenticating: bool = attrs.field(default=False, metadata={"wire": "isAuthenticating"})
    output: list[str] = attrs.field(factory=list)
    error: str | None = None
    session_id: str | None = None
    uuid: str | None = None
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class ToolUseSummaryMessage(Message):
    """A ``tool_use_summary`` line: a one-line summary of the preceding tool calls.

    Attributes:
        summary: e.g. ``"Read 3 files"``.
        preceding_tool_use_ids: the tool calls it summarises.
        session_id: the session id.
        uuid: the line's uuid.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "tool_use_summary"
    summary: str = ""
    preceding_tool_use_ids: list[str] = attrs.field(factory=list)
    session_id: str | None = None
    uuid: str | None = None
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class PromptSuggestionMessage(Message):
    """A ``prompt_suggestion`` line (``prompt_suggestions=True``): a likely next prompt.

    Attributes:
        suggestion: the suggested prompt.
        session_id: the session id.
        uuid: the line's uuid.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "prompt_suggestion"
    suggestion: str = ""
    session_id: str | None = None
    uuid: str | None = None
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class ConversationResetMessage(Message):
    """A ``conversation_reset`` line: the CLI discarded the conversation (``/clear``...).

    Attributes:
        new_conversation_id: an id for the fresh conversation (not the next session id).
        trigger: ``"clear"``, ``"plan_mode_exit"``..., when stated.
        session_id: the session that was reset.
        uuid: the line's uuid.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "conversation_reset"
    new_conversation_id: str = ""
    trigger: str | None = None
    session_id: str | None = None
    uuid: str | None = None
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class CommandLifecycleMessage(Message):
    """A ``command_lifecycle`` line: a user message we sent was queued, started, completed.

    The CLI prints these for user messages that carry a ``uuid`` (the session
    always sends one); the session uses them to tell its own turns from the
    turns the CLI starts by itself.

    Attributes:
        command_uuid: the user message's uuid.
        state: ``"queued"``, ``"started"``, ``"completed"``...
        session_id: the session id.
        uuid: the line's uuid.
        raw: the source dict.
    """

    TYPE: ClassVar[str] = "command_lifecycle"
    command_uuid: str = ""
    state: str = ""
    session_id: str | None = None
    uuid: str | None = None
    raw: RawDict = attrs.field(factory=dict, repr=False)


@attrs.define
class UnknownMessage(Message):
    """A line whose ``type`` this module does not model (``rate_limit_event``...)."""

    raw: RawDict = attrs.field(factory=dict)

    @property
    def type(self) -> str:
        """The wire ``type`` (``""`` when the line had none)."""
        value = self.raw.get("type")
        return value if isinstance(value, str) else ""


# ---------------------------------------------------------------------------
# Structuring (the hot path)
# ---------------------------------------------------------------------------


def _str(value: object) -> str:
    """``value`` if it is a string, else ``""``."""
    return value if value.__class__ is str else ""


def _opt_str(value: object) -> str | None:
    """``value`` if it is a string, else ``None``."""
    return value if value.__class__ is str else None


def _opt_dict(value: object) -> dict[str, Any] | None:
    return value if value.__class__ is dict else None


def _opt_list(value: object) -> list[Any] | None:
    return value if value.__class__ is list else None


def _opt_int(value: object) -> int | None:
    if value.__class__ is int:
        return value
    if value.__class__ is float and _isfinite(value):
        return int(value)
    return None


def _opt_float(value: object) -> float | None:
    cls = value.__class__
    if cls is float or cls is int:
        return float(value)  # type: ignore[arg-type]
    return None


def _opt_bool(value: object) -> bool | None:
    return value if value.__class__ is bool else None


def _block_text(b: RawDict) -> ContentBlock:
    text = b.get("text")
    if text.__class__ is not str:
        text = ""
    citations = b.get("citations")
    return TextBlock(text, citations if citations.__class__ is list else None, b)


def _block_thinking(b: RawDict) -> ContentBlock:
    return ThinkingBlock(_str(b.get("thinking")), _str(b.get("signature")), b)


def _block_redacted_thinking(b: RawDict) -> ContentBlock:
    return RedactedThinkingBlock(_str(b.get("data")), b)


def _block_tool_use(b: RawDict) -> ContentBlock:
    get = b.get
    id_ = get("id")
    name = get("name")
    inp = get("input")
    return ToolUseBlock(
        id_ if id_.__class__ is str else "",
        name if name.__class__ is str else "",
        inp if inp.__class__ is dict else {},
        b,
    )


def _result_content(value: object) -> str | list[ContentBlock] | None:
    if value.__class__ is str:
        return value
    if value.__class__ is list:
        return _blocks(value)
    return None


def _block_tool_result(b: RawDict) -> ContentBlock:
    get = b.get
    tid = get("tool_use_id")
    content = get("content")
    is_error = get("is_error")
    return ToolResultBlock(
        tid if tid.__class__ is str else "",
        content if content.__class__ is str else _result_content(content),
        is_error if is_error.__class__ is bool else None,
        b,
    )


def _block_server_tool_use(b: RawDict) -> ContentBlock:
    inp = b.get("input")
    return ServerToolUseBlock(
        _str(b.get("id")), _str(b.get("name")), inp if inp.__class__ is dict else {}, b
    )


def _block_server_tool_result(b: RawDict) -> ContentBlock:
    return ServerToolResultBlock(_str(b.get("tool_use_id")), b.get("content"), b)


def _block_web_search_result(b: RawDict) -> ContentBlock:
    return WebSearchToolResultBlock(_str(b.get("tool_use_id")), b.get("content"), b)


def _block_mcp_tool_use(b: RawDict) -> ContentBlock:
    inp = b.get("input")
    return McpToolUseBlock(
        _str(b.get("id")),
        _str(b.get("name")),
        _str(b.get("server_name")),
        inp if inp.__class__ is dict else {},
        b,
    )


def _block_mcp_tool_result(b: RawDict) -> ContentBlock:
    return McpToolResultBlock(
        _str(b.get("tool_use_id")),
        _result_content(b.get("content")),
        _opt_bool(b.get("is_error")),
        b,
    )


def _block_image(b: RawDict) -> ContentBlock:
    src = b.get("source")
    return ImageBlock(src if src.__class__ is dict else {}, b)


def _block_document(b: RawDict) -> ContentBlock:
    src = b.get("source")
    return DocumentBlock(src if src.__class__ is dict else {}, _opt_str(b.get("title")), b)


def _block_compaction(b: RawDict) -> ContentBlock:
    return CompactionBlock(_opt_str(b.get("content")), b)


_BLOCK_PARSERS: Final[dict[str, Callable[[RawDict], ContentBlock]]] = {
    "text": _block_text,
    "thinking": _block_thinking,
    "redacted_thinking": _block_redacted_thinking,
    "tool_use": _block_tool_use,
    "tool_result": _block_tool_result,
    "server_tool_use": _block_server_tool_use,
    "web_search_tool_result": _block_web_search_result,
    "mcp_tool_use": _block_mcp_tool_use,
    "mcp_tool_result": _block_mcp_tool_result,
    "image": _block_image,
    "document": _block_document,
    "compaction": _block_compaction,
}


def parse_content_block(block: object) -> ContentBlock:
    """Build the typed content block for one decoded ``content`` item.

    Args:
        block: a decoded JSON value (normally a dict with a ``"type"``).

    Returns:
        The matching block class; :class:`UnknownBlock` for unknown types and
        for non-dict items (then ``raw`` is ``{"type": None, "value": item}``).
    """
    if block.__class__ is not dict:
        if isinstance(block, dict):
            block = dict(block)
        else:
            return UnknownBlock({"type": None, "value": block})
    typ = block.get("type")
    parser = _BLOCK_PARSERS.get(typ) if typ.__class__ is str else None
    if parser is not None:
        return parser(block)
    if typ.__class__ is str and typ.endswith("_tool_result"):
        return _block_server_tool_result(block)
    return UnknownBlock(block)


def _blocks(items: list[Any]) -> list[ContentBlock]:
    parsers = _BLOCK_PARSERS
    out: list[ContentBlock] = []
    append = out.append
    for b in items:
        if b.__class__ is dict:
            typ = b.get("type")
            if typ == "text":  # the common case, inlined
                text = b.get("text")
                cites = b.get("citations")
                append(
                    TextBlock(
                        text if text.__class__ is str else "",
                        cites if cites.__class__ is list else None,
                        b,
                    )
                )
                continue
            parser = parsers.get(typ) if typ.__class__ is str else None
            if parser is not None:
                append(parser(b))
                continue
        append(parse_content_block(b))
    return out


_EMPTY: Final[RawDict] = {}


def _parse_assistant(d: RawDict) -> Message:
    # Inline class checks instead of helper calls: this is the hottest function.
    m = d.get("message")
    if m.__class__ is not dict:
        m = _EMPTY
    content = m.get("content")
    if content.__class__ is list:
        blocks = _blocks(content)
    elif content.__class__ is str:
        blocks = [TextBlock(content, None, {"type": "text", "text": content})]
    else:
        blocks = []
    get = d.get
    model = m.get("model")
    mid = m.get("id")
    stop = m.get("stop_reason")
    usage = m.get("usage")
    ptu = get("parent_tool_use_id")
    sid = get("session_id")
    uuid = get("uuid")
    err = get("error")
    api_err = get("is_api_error_message")
    if api_err is None:
        api_err = m.get("isApiErrorMessage")
    status = get("api_error_status")
    return AssistantMessage(
        blocks,
        model if model.__class__ is str else None,
        mid if mid.__class__ is str else None,
        stop if stop.__class__ is str else None,
        Usage(usage) if usage.__class__ is dict else None,
        ptu if ptu.__class__ is str else None,
        sid if sid.__class__ is str else None,
        uuid if uuid.__class__ is str else None,
        err if err.__class__ is str else None,
        api_err is True,
        None if status is None else _opt_int(status),
        get("aborted") is True,
        None if (agent := get("agent_id")).__class__ is not str else agent,
        d,
    )


def _parse_user(d: RawDict) -> Message:
    m = d.get("message")
    content: str | list[ContentBlock] = ""
    if m.__class__ is dict:
        c = m.get("content")
        if c.__class__ is str:
            content = c
        elif c.__class__ is list:
            content = _blocks(c)
    get = d.get
    ptu = get("parent_tool_use_id")
    sid = get("session_id")
    uuid = get("uuid")
    return UserMessage(
        content,
        get("tool_use_result"),
        ptu if ptu.__class__ is str else None,
        sid if sid.__class__ is str else None,
        uuid if uuid.__class__ is str else None,
        get("isSynthetic") is True,
        get("isReplay") is True,
        _origin(get("origin")),
        d,
    )


_INT_FIELDS: Final = ("duration_ms", "duration_api_ms", "num_turns")


def _result_missing(d: RawDict) -> tuple[str, ...]:
    """Names of required result fields that are absent or of the wrong type."""
    missing = []
    get = d.get
    if get("subtype").__class__ is not str:
        missing.append("subtype")
    if get("is_error").__class__ is not bool:
        missing.append("is_error")
    if get("session_id").__class__ is not str:
        missing.append("session_id")
    for name in _INT_FIELDS:
        if _opt_int(get(name)) is None:
            missing.append(name)
    return tuple(missing)


def _parse_result(d: RawDict) -> Message:
    get = d.get
    subtype = get("subtype")
    is_error = get("is_error")
    session_id = get("session_id")
    duration_ms = get("duration_ms")
    duration_api_ms = get("duration_api_ms")
    num_turns = get("num_turns")
    missing: tuple[str, ...] = ()
    if (
        subtype.__class__ is not str
        or is_error.__class__ is not bool
        or session_id.__class__ is not str
        or duration_ms.__class__ is not int
        or duration_api_ms.__class__ is not int
        or num_turns.__class__ is not int
    ):
        missing = _result_missing(d)
        subtype = _str(subtype)
        if is_error.__class__ is not bool:
            is_error = subtype != "success"
        session_id = _opt_str(session_id)
        duration_ms = _opt_int(duration_ms)
        duration_api_ms = _opt_int(duration_api_ms)
        num_turns = _opt_int(num_turns)
    result = get("result")
    usage = get("usage")
    cost = get("total_cost_usd")
    denials = get("permission_denials")
    terminal = get("terminal_reason")
    stop = get("stop_reason")
    model_usage = get("modelUsage")
    if model_usage is None:
        model_usage = get("model_usage")
    errors = get("errors")
    status = get("api_error_status")
    uuid = get("uuid")
    return ResultMessage(
        subtype,
        is_error,
        session_id,
        result if result.__class__ is str else None,
        Usage(usage) if usage.__class__ is dict else None,
        cost if cost.__class__ is float else _opt_float(cost),
        num_turns,
        duration_ms,
        duration_api_ms,
        denials if denials.__class__ is list else [],
        terminal if terminal.__class__ is str else None,
        get("structured_output"),
        stop if stop.__class__ is str else None,
        model_usage_of(model_usage),
        [] if errors is None else _str_list(errors),
        None if status is None else _opt_int(status),
        uuid if uuid.__class__ is str else None,
        _origin(get("origin")),
        _user_message_uuids(d),
        _deferred(get("deferred_tool_use")),
        missing,
        d,
    )


def _origin(value: object) -> dict[str, Any] | None:
    """An ``origin`` object with a string ``kind``, else ``None`` (as claude-agent-sdk)."""
    if isinstance(value, dict) and value.get("kind").__class__ is str:
        return value
    return None


def _user_message_uuids(d: RawDict) -> list[str]:
    found = _str_list(d.get("user_message_uuids"))
    one = d.get("user_message_uuid")
    if one.__class__ is str and one not in found:
        found.append(one)
    return found


def _deferred(value: object) -> DeferredToolUse | None:
    if not isinstance(value, dict):
        return None
    get = value.get
    inp = get("input")
    return DeferredToolUse(_str(get("id")), _str(get("name")), inp if inp.__class__ is dict else {})


def _str_list(value: object) -> list[str]:
    if value.__class__ is not list:
        return []
    return [e for e in value if e.__class__ is str]


def _parse_system(d: RawDict) -> Message:
    get = d.get
    subtype = get("subtype")
    sid = get("session_id")
    uuid = get("uuid")
    if subtype != "init":
        special = _SYSTEM_PARSERS.get(subtype) if subtype.__class__ is str else None
        if special is not None:
            return special(d)
        return SystemMessage(
            subtype if subtype.__class__ is str else "",
            sid if sid.__class__ is str else None,
            uuid if uuid.__class__ is str else None,
            raw=d,
        )
    cwd = get("cwd")
    model = get("model")
    tools = get("tools")
    mcp = get("mcp_servers")
    pm = get("permissionMode")
    if pm is None:
        pm = get("permission_mode")
    aks = get("apiKeySource")
    if aks is None:
        aks = get("api_key_source")
    version = get("claude_code_version")
    slash = get("slash_commands")
    agents = get("agents")
    skills = get("skills")
    plugins = get("plugins")
    style = get("output_style")
    return SystemMessage(
        "init",
        sid if sid.__class__ is str else None,
        uuid if uuid.__class__ is str else None,
        cwd if cwd.__class__ is str else None,
        model if model.__class__ is str else None,
        tools if tools.__class__ is list else None,
        mcp if mcp.__class__ is list else None,
        pm if pm.__class__ is str else None,
        aks if aks.__class__ is str else None,
        version if version.__class__ is str else None,
        slash if slash.__class__ is list else None,
        agents if agents.__class__ is list else None,
        skills if skills.__class__ is list else None,
        plugins if plugins.__class__ is list else None,
        style if style.__class__ is str else None,
        d,
    )


def _parse_stream_event(d: RawDict) -> Message:
    get = d.get
    ev = get("event")
    sid = get("session_id")
    ptu = get("parent_tool_use_id")
    uuid = get("uuid")
    return PartialAssistantMessage(
        ev if ev.__class__ is dict else {},
        sid if sid.__class__ is str else None,
        ptu if ptu.__class__ is str else None,
        uuid if uuid.__class__ is str else None,
        d,
    )


# The rarer line types are structured by one generic, lenient function per
# class (claudecode._lenient), derived from the class's attrs fields.

register("Usage | None", usage_of)
_lenient(RateLimitInfo)  # registers the nested class for RateLimitEvent


_SYSTEM_PARSERS: Final[dict[str, Callable[[RawDict], Message]]] = {
    cls_subtype: _lenient(cls_)
    for cls_subtype, cls_ in (
        ("task_started", TaskStartedMessage),
        ("task_progress", TaskProgressMessage),
        ("task_notification", TaskNotificationMessage),
        ("task_updated", TaskUpdatedMessage),
        ("background_tasks_changed", BackgroundTasksChangedMessage),
        ("hook_started", HookStartedMessage),
        ("hook_progress", HookProgressMessage),
        ("hook_response", HookResponseMessage),
        ("compact_boundary", CompactBoundaryMessage),
        ("status", StatusMessage),
        ("api_retry", ApiRetryMessage),
        ("thinking_tokens", ThinkingTokensMessage),
        ("local_command_output", LocalCommandOutputMessage),
        ("files_persisted", FilesPersistedMessage),
        ("elicitation_complete", ElicitationCompleteMessage),
        ("notification", NotificationMessage),
    )
}
"""Parsers of the ``system`` subtypes that have a class of their own (not ``init``)."""

SYSTEM_SUBTYPE_CLASSES: Final[dict[str, type[SystemMessage]]] = {
    "task_started": TaskStartedMessage,
    "task_progress": TaskProgressMessage,
    "task_notification": TaskNotificationMessage,
    "task_updated": TaskUpdatedMessage,
    "background_tasks_changed": BackgroundTasksChangedMessage,
    "hook_started": HookStartedMessage,
    "hook_progress": HookProgressMessage,
    "hook_response": HookResponseMessage,
    "compact_boundary": CompactBoundaryMessage,
    "status": StatusMessage,
    "api_retry": ApiRetryMessage,
    "thinking_tokens": ThinkingTokensMessage,
    "local_command_output": LocalCommandOutputMessage,
    "files_persisted": FilesPersistedMessage,
    "elicitation_complete": ElicitationCompleteMessage,
    "notification": NotificationMessage,
}
"""``system`` subtype -> its class (other subtypes are plain :class:`SystemMessage`)."""

OTHER_MESSAGE_CLASSES: Final[dict[str, type[Message]]] = {
    "rate_limit_event": RateLimitEvent,
    "tool_progress": ToolProgressMessage,
    "auth_status": AuthStatusMessage,
    "tool_use_summary": ToolUseSummaryMessage,
    "prompt_suggestion": PromptSuggestionMessage,
    "conversation_reset": ConversationResetMessage,
    "command_lifecycle": CommandLifecycleMessage,
}
"""Wire ``type`` -> class for the line types beyond the conversation itself."""


_PARSE_RESULT: Final = _parse_result
"""The parser of ``result`` lines (the protocol machine compares against it)."""
_PARSE_SYSTEM: Final = _parse_system
"""The parser of ``system`` lines."""

_MESSAGE_PARSERS: Final[dict[str, Callable[[RawDict], Message]]] = {
    "assistant": _parse_assistant,
    "user": _parse_user,
    "result": _parse_result,
    "system": _parse_system,
    "stream_event": _parse_stream_event,
    **{kind: _lenient(cls) for kind, cls in OTHER_MESSAGE_CLASSES.items()},
}


def parse_message(data: RawDict) -> Message:
    """Build the typed message for one decoded stdout line.

    Never raises for any dict: unknown types give :class:`UnknownMessage`,
    malformed known types degrade field by field (see the module docstring).

    Args:
        data: the decoded JSON object. It is kept (not copied) as ``.raw``.

    Returns:
        The matching :class:`Message` subclass instance.

    Raises:
        TypeError: ``data`` is not a dict (the protocol layer checks this
            before calling; a JSON line that is not an object is a
            ``MalformedLine`` there).
    """
    if data.__class__ is not dict:
        if not isinstance(data, dict):
            raise TypeError(f"a message must be a JSON object, got {type(data).__name__}")
        data = dict(data)
    try:
        parser = _MESSAGE_PARSERS.get(data.get("type"))  # type: ignore[arg-type]
    except TypeError:  # unhashable "type" value
        parser = None
    if parser is None:
        return UnknownMessage(data)
    return parser(data)


def parse_line(line: bytes | str) -> Message:
    """Decode and parse one stdout line.

    Args:
        line: one JSON object (trailing whitespace allowed).

    Returns:
        The typed message.

    Raises:
        ValueError: the line is not JSON, or not a JSON object.
        RecursionError: absurdly deep nesting.
    """
    data = json_loads(line)
    if data.__class__ is not dict:
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return parse_message(data)


# ---------------------------------------------------------------------------
# Back to the wire: to_dict / unstructure
# ---------------------------------------------------------------------------

converter: Final = cattrs.Converter(omit_if_default=False)
"""The package's cattrs converter for messages and blocks.

``converter.structure(d, Message)`` (or any concrete message / block class)
uses the same hand-written functions as :func:`parse_message`;
``converter.unstructure(obj)`` returns the wire dict (:func:`to_dict`).
"""


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


_BLOCK_FIELD_UNSTRUCTURE: dict[type[ContentBlock], Callable[[Any], dict[str, Any]]] = {}
for _cls in (
    TextBlock,
    ThinkingBlock,
    RedactedThinkingBlock,
    ToolUseBlock,
    ServerToolUseBlock,
    McpToolUseBlock,
    ImageBlock,
    DocumentBlock,
    CompactionBlock,
):
    _BLOCK_FIELD_UNSTRUCTURE[_cls] = make_dict_unstructure_fn(
        _cls, converter, raw=override(omit=True)
    )


def _block_to_dict(block: ContentBlock) -> dict[str, Any]:
    raw: dict[str, Any] = block.raw
    if raw or isinstance(block, UnknownBlock):
        return raw
    if isinstance(block, (ToolResultBlock, McpToolResultBlock)):
        content: Any = block.content
        if isinstance(content, list):
            content = [_block_to_dict(b) for b in content]
        return _drop_none(
            {
                "type": block.type,
                "tool_use_id": block.tool_use_id,
                "content": content,
                "is_error": block.is_error,
            }
        )
    if isinstance(block, ServerToolResultBlock):
        return {"type": block.type, "tool_use_id": block.tool_use_id, "content": block.content}
    fn = _BLOCK_FIELD_UNSTRUCTURE[type(block)]
    return {"type": block.type, **_drop_none(fn(block))}


def _fields_to_wire(obj: Any) -> dict[str, Any]:
    """The wire dict of a hand-built object of a generically structured class."""
    out: dict[str, Any] = {}
    for field in attrs.fields(type(obj)):
        if field.name == "raw":
            continue
        value = getattr(obj, field.name)
        if value is None:
            continue
        if attrs.has(type(value)):
            value = value.raw or _fields_to_wire(value)
        out[field.metadata.get("wire", field.name)] = value
    return out


def _message_to_dict(msg: Message) -> dict[str, Any]:
    raw = msg.raw
    if raw or isinstance(msg, UnknownMessage):
        return raw
    if type(msg) in _GENERIC_CLASSES:
        return {"type": msg.TYPE, **_fields_to_wire(msg)}
    if isinstance(msg, AssistantMessage):
        inner = _drop_none(
            {
                "id": msg.message_id,
                "type": "message",
                "role": "assistant",
                "model": msg.model,
                "content": [_block_to_dict(b) for b in msg.content],
                "stop_reason": msg.stop_reason,
                "usage": msg.usage,
            }
        )
        out = {
            "type": "assistant",
            "message": inner,
            "parent_tool_use_id": msg.parent_tool_use_id,
            "session_id": msg.session_id,
            "uuid": msg.uuid,
            "error": msg.error,
            "api_error_status": msg.api_error_status,
        }
        if msg.is_api_error_message:
            out["is_api_error_message"] = True
        if msg.aborted:
            out["aborted"] = True
        return _drop_none(out) | {"parent_tool_use_id": msg.parent_tool_use_id}
    if isinstance(msg, UserMessage):
        content: Any = msg.content
        if isinstance(content, list):
            content = [_block_to_dict(b) for b in content]
        out = {
            "type": "user",
            "message": {"role": "user", "content": content},
            "parent_tool_use_id": msg.parent_tool_use_id,
            "session_id": msg.session_id,
            "uuid": msg.uuid,
            "tool_use_result": msg.tool_use_result,
        }
        if msg.is_synthetic:
            out["isSynthetic"] = True
        if msg.is_replay:
            out["isReplay"] = True
        return _drop_none(out) | {"parent_tool_use_id": msg.parent_tool_use_id}
    if isinstance(msg, ResultMessage):
        return _drop_none(
            {
                "type": "result",
                "subtype": msg.subtype,
                "is_error": msg.is_error,
                "session_id": msg.session_id,
                "result": msg.result,
                "usage": msg.usage,
                "total_cost_usd": msg.total_cost_usd,
                "num_turns": msg.num_turns,
                "duration_ms": msg.duration_ms,
                "duration_api_ms": msg.duration_api_ms,
                "terminal_reason": msg.terminal_reason,
                "structured_output": msg.structured_output,
                "stop_reason": msg.stop_reason,
                "modelUsage": msg.model_usage,
                "api_error_status": msg.api_error_status,
                "uuid": msg.uuid,
            }
        ) | {"permission_denials": list(msg.permission_denials), "errors": list(msg.errors)}
    if isinstance(msg, SystemMessage):
        return _drop_none(
            {
                "type": "system",
                "subtype": msg.subtype,
                "session_id": msg.session_id,
                "uuid": msg.uuid,
                "cwd": msg.cwd,
                "model": msg.model,
                "tools": msg.tools,
                "mcp_servers": msg.mcp_servers,
                "permissionMode": msg.permission_mode,
                "apiKeySource": msg.api_key_source,
                "claude_code_version": msg.claude_code_version,
                "slash_commands": msg.slash_commands,
                "agents": msg.agents,
                "skills": msg.skills,
                "plugins": msg.plugins,
                "output_style": msg.output_style,
            }
        )
    if isinstance(msg, PartialAssistantMessage):
        return _drop_none(
            {
                "type": "stream_event",
                "event": msg.event,
                "session_id": msg.session_id,
                "uuid": msg.uuid,
            }
        ) | {"parent_tool_use_id": msg.parent_tool_use_id}
    raise TypeError(f"not a message: {msg!r}")  # pragma: no cover


_GENERIC_CLASSES: Final = frozenset(
    {*SYSTEM_SUBTYPE_CLASSES.values(), *OTHER_MESSAGE_CLASSES.values()})
"""Classes structured by `_lenient`, unstructured by `_fields_to_wire`."""


def to_dict(obj: Message | ContentBlock) -> dict[str, Any]:
    """The wire (JSON-ready) dict of a message or block.

    Args:
        obj: a parsed or hand-built message or block.

    Returns:
        ``obj.raw`` when the object was parsed (the exact source dict, not a
        copy); otherwise a dict rebuilt from the fields in the CLI's layout.
    """
    if isinstance(obj, ContentBlock):
        return _block_to_dict(obj)
    return _message_to_dict(obj)


_M = TypeVar("_M", bound=Message)
_B = TypeVar("_B", bound=ContentBlock)


def _structure_message_as(cls: type[_M]) -> Callable[[Any, Any], _M]:
    fixed = _MESSAGE_PARSERS.get(cls.TYPE) if cls is not Message else None

    def structure(value: Any, _: Any) -> _M:
        if not isinstance(value, dict):
            raise cattrs.StructureHandlerNotFoundError(
                f"cannot structure {type(value).__name__} as {cls.__name__}", cls
            )
        if fixed is not None:
            kind = value.get("type", cls.TYPE)
            if kind != cls.TYPE:
                raise ValueError(f"a {kind!r} line is not a {cls.__name__}")
            msg = fixed(value)
            if not isinstance(msg, cls):
                raise ValueError(f"a {value.get('subtype')!r} line is not a {cls.__name__}")
            return msg
        msg = parse_message(value)
        if not isinstance(msg, cls):
            raise ValueError(f"a {msg.type!r} line is not a {cls.__name__}")
        return msg

    return structure


def _structure_block_as(cls: type[_B]) -> Callable[[Any, Any], _B]:
    def structure(value: Any, _: Any) -> _B:
        block = parse_content_block(value)
        if not isinstance(block, cls):
            raise ValueError(f"a {block.type!r} block is not a {cls.__name__}")
        return block

    return structure


_MESSAGE_CLASSES: Final[tuple[type[Message], ...]] = (
    Message,
    SystemMessage,
    AssistantMessage,
    UserMessage,
    ResultMessage,
    PartialAssistantMessage,
    UnknownMessage,
    *SYSTEM_SUBTYPE_CLASSES.values(),
    HookEventMessage,
    *OTHER_MESSAGE_CLASSES.values(),
)
for _mcls in _MESSAGE_CLASSES:
    converter.register_structure_hook(_mcls, _structure_message_as(_mcls))
    converter.register_unstructure_hook(_mcls, _message_to_dict)

for _bcls in (
    ContentBlock,
    TextBlock,
    ThinkingBlock,
    RedactedThinkingBlock,
    ToolUseBlock,
    ToolResultBlock,
    ServerToolUseBlock,
    ServerToolResultBlock,
    WebSearchToolResultBlock,
    McpToolUseBlock,
    McpToolResultBlock,
    ImageBlock,
    DocumentBlock,
    CompactionBlock,
    UnknownBlock,
):
    converter.register_structure_hook(_bcls, _structure_block_as(_bcls))
    converter.register_unstructure_hook(_bcls, _block_to_dict)
