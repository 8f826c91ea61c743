"""Named control requests to a session's CLI, with typed answers.

Each function sends one host → CLI control request through the session (the
CLI is started first if it is not running) and turns the answer into an
attrs class (camelCase wire keys become snake_case fields; every class keeps
the answer in ``raw``; a field the CLI left out or sent with another type
reads as its default instead of failing):

==============================  =======================  ==========================
function                        control request          answer
==============================  =======================  ==========================
:func:`server_info`             ``initialize`` (cached)  :class:`ServerInfo`
:func:`mcp_status`              ``mcp_status``           ``list[McpServerStatus]``
:func:`mcp_reconnect`           ``mcp_reconnect``        ``None``
:func:`mcp_toggle`              ``mcp_toggle``           ``None``
:func:`set_mcp_servers`         ``mcp_set_servers``      :class:`McpSetServersResult`
:func:`get_context_usage`       ``get_context_usage``    :class:`ContextUsage`
:func:`rewind_files`            ``rewind_files``         :class:`RewindFilesResult`
:func:`stop_task`               ``stop_task``            ``None``
==============================  =======================  ==========================

A refusal by the CLI (an unknown server, a failed reconnect...) raises
:class:`~claudecode._errors.SessionError` with the CLI's message.

Also here: :func:`get_messages` and :func:`list_sessions`, which read the
session's stored transcripts where its CLI keeps them (on the sandbox node
for the Node adapter).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

import otpy
from claudecode._errors import SessionError
from claudecode._history import SessionInfo
from claudecode._lenient import lenient
from claudecode._messages import Message
from claudecode._session import _unwrap, prewarm, send_control_request

__all__ = [
    "AccountInfo",
    "AgentInfo",
    "ContextUsage",
    "McpServerStatus",
    "McpSetServersResult",
    "ModelInfo",
    "RewindFilesResult",
    "ServerInfo",
    "SlashCommand",
    "account_info",
    "get_context_usage",
    "get_messages",
    "list_session_subagents",
    "list_sessions",
    "mcp_reconnect",
    "mcp_status",
    "mcp_toggle",
    "rewind_files",
    "server_info",
    "set_mcp_servers",
    "stop_task",
    "supported_agents",
    "supported_commands",
    "supported_models",
]

_TIMEOUT = 65.0


# ----------------------------------------------------------------- answers


@attrs.define
class SlashCommand:
    """A slash command the CLI offers (``initialize`` answer).

    Attributes:
        name: the command, without the slash.
        description: what it does.
        argument_hint: how to pass arguments (wire ``argumentHint``).
        raw: the source dict.
    """

    name: str = ""
    description: str = ""
    argument_hint: str | None = attrs.field(default=None, metadata={"wire": "argumentHint"})
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.define
class ModelInfo:
    """A model the CLI can use (``initialize`` answer).

    Attributes:
        value: what to pass as ``model`` / to :func:`claudecode.set_model`.
        display_name: its name for people (wire ``displayName``).
        description: a one-line description.
        resolved_model: the model id it stands for (wire ``resolvedModel``).
        supports_effort: whether ``effort`` applies (wire ``supportsEffort``).
        supported_effort_levels: the ``effort`` values it takes.
        raw: the source dict.
    """

    value: str = ""
    display_name: str | None = attrs.field(default=None, metadata={"wire": "displayName"})
    description: str | None = None
    resolved_model: str | None = attrs.field(default=None, metadata={"wire": "resolvedModel"})
    supports_effort: bool | None = attrs.field(default=None,
                                               metadata={"wire": "supportsEffort"})
    supported_effort_levels: list[str] = attrs.field(
        factory=list, metadata={"wire": "supportedEffortLevels"})
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.define
class AgentInfo:
    """A subagent type the CLI offers (``initialize`` answer).

    Attributes:
        name: the agent type (``"Explore"``...).
        description: when to use it.
        model: its model, when it has its own.
        raw: the source dict.
    """

    name: str = ""
    description: str = ""
    model: str | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.define
class AccountInfo:
    """How the CLI is logged in (``initialize`` answer).

    Attributes:
        token_source: where an OAuth token came from (``"none"``...).
        api_key_source: where the API key came from (``"ANTHROPIC_API_KEY"``...).
        api_provider: ``"firstParty"``, ``"bedrock"``, ``"vertex"``...
        email: the account's email, when logged in to claude.ai.
        organization: its organization, when known.
        subscription_type: the claude.ai plan, when known.
        raw: the source dict.
    """

    token_source: str | None = attrs.field(default=None, metadata={"wire": "tokenSource"})
    api_key_source: str | None = attrs.field(default=None, metadata={"wire": "apiKeySource"})
    api_provider: str | None = attrs.field(default=None, metadata={"wire": "apiProvider"})
    email: str | None = None
    organization: str | None = None
    subscription_type: str | None = attrs.field(default=None,
                                                metadata={"wire": "subscriptionType"})
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.define
class ServerInfo:
    """What the CLI answered to ``initialize``.

    Attributes:
        commands: its slash commands.
        agents: its subagent types.
        models: the models it can use.
        account: how it is logged in.
        output_style: the output style in use.
        available_output_styles: every output style.
        claude_code_version: the CLI's version.
        current_permission_mode: its permission mode.
        fast_mode_state: ``"off"``, ``"on"``...
        pid: the CLI's process id (on its own machine).
        raw: the whole answer.
    """

    commands: list[SlashCommand] = attrs.field(factory=list)
    agents: list[AgentInfo] = attrs.field(factory=list)
    models: list[ModelInfo] = attrs.field(factory=list)
    account: AccountInfo | None = None
    output_style: str | None = None
    available_output_styles: list[str] = attrs.field(factory=list)
    claude_code_version: str | None = None
    current_permission_mode: str | None = None
    fast_mode_state: str | None = None
    pid: int | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.define
class McpServerStatus:
    """One MCP server in a ``mcp_status`` answer.

    Attributes:
        name: the server's name (the ``mcp_servers`` key).
        status: ``"connected"``, ``"failed"``, ``"needs-auth"``, ``"pending"``
            or ``"disabled"``.
        server_info: its ``{"name", "version"}`` once connected (wire ``serverInfo``).
        error: why it failed.
        config: its configuration.
        scope: where it was configured (``"dynamic"``, ``"project"``...).
        transport: ``"stdio"``, ``"sdk"``, ``"http"``...
        tools: its tools, when connected.
        raw: the source dict.
    """

    name: str = ""
    status: str = ""
    server_info: dict[str, Any] | None = attrs.field(default=None,
                                                     metadata={"wire": "serverInfo"})
    error: str | None = None
    config: dict[str, Any] | None = None
    scope: str | None = None
    transport: str | None = None
    tools: list[dict[str, Any]] = attrs.field(factory=list)
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.define
class McpSetServersResult:
    """The answer to :func:`set_mcp_servers`.

    Attributes:
        added: servers that were added.
        removed: servers that were removed.
        errors: ``{name: error}`` for servers that failed to start.
        raw: the source dict.
    """

    added: list[str] = attrs.field(factory=list)
    removed: list[str] = attrs.field(factory=list)
    errors: dict[str, Any] = attrs.field(factory=dict)
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.define
class RewindFilesResult:
    """The answer to :func:`rewind_files`.

    Attributes:
        can_rewind: whether there is a checkpoint to go back to (wire ``canRewind``).
        error: why not, when it cannot.
        files_changed: the files the rewind changes (wire ``filesChanged``).
        insertions: lines it adds back.
        deletions: lines it removes.
        raw: the source dict.
    """

    can_rewind: bool = attrs.field(default=False, metadata={"wire": "canRewind"})
    error: str | None = None
    files_changed: list[str] | None = attrs.field(default=None,
                                                  metadata={"wire": "filesChanged"})
    insertions: int | None = None
    deletions: int | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.define
class ContextUsage:
    """How the context window is used (the CLI's ``/context``).

    Attributes:
        categories: ``[{"name", "tokens", "color", ...}]`` (system prompt,
            tools, messages, free space...).
        total_tokens: tokens in the context now (wire ``totalTokens``).
        max_tokens: the usable window (wire ``maxTokens``).
        raw_max_tokens: the model's whole window (wire ``rawMaxTokens``).
        percentage: the part used, 0-100.
        model: the model it was computed for.
        is_auto_compact_enabled: wire ``isAutoCompactEnabled``.
        memory_files: CLAUDE.md and memory files (wire ``memoryFiles``).
        mcp_tools: MCP tools and their cost (wire ``mcpTools``).
        agents: agent definitions and their cost.
        raw: the whole answer.
    """

    categories: list[dict[str, Any]] = attrs.field(factory=list)
    total_tokens: int | None = attrs.field(default=None, metadata={"wire": "totalTokens"})
    max_tokens: int | None = attrs.field(default=None, metadata={"wire": "maxTokens"})
    raw_max_tokens: int | None = attrs.field(default=None, metadata={"wire": "rawMaxTokens"})
    percentage: float | None = None
    model: str | None = None
    is_auto_compact_enabled: bool | None = attrs.field(
        default=None, metadata={"wire": "isAutoCompactEnabled"})
    memory_files: list[dict[str, Any]] = attrs.field(factory=list,
                                                     metadata={"wire": "memoryFiles"})
    mcp_tools: list[dict[str, Any]] = attrs.field(factory=list, metadata={"wire": "mcpTools"})
    agents: list[dict[str, Any]] = attrs.field(factory=list)
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False)


_slash_command = lenient(SlashCommand)
_model_info = lenient(ModelInfo)
_agent_info = lenient(AgentInfo)
_account_info = lenient(AccountInfo)
_server_info = lenient(ServerInfo)
_mcp_status = lenient(McpServerStatus)
_set_servers = lenient(McpSetServersResult)
_rewind = lenient(RewindFilesResult)
_context = lenient(ContextUsage)


def _register_cattrs() -> None:
    """``claudecode.converter.structure(d, ServerInfo)`` and friends use the same functions."""
    from claudecode._messages import converter

    for cls, fn in ((SlashCommand, _slash_command), (ModelInfo, _model_info),
                    (AgentInfo, _agent_info), (AccountInfo, _account_info),
                    (ServerInfo, _server_info), (McpServerStatus, _mcp_status),
                    (McpSetServersResult, _set_servers), (RewindFilesResult, _rewind),
                    (ContextUsage, _context)):
        converter.register_structure_hook(cls, lambda d, _t, fn=fn: fn(dict(d)))
        converter.register_unstructure_hook(cls, lambda obj: obj.raw)


_register_cattrs()


# --------------------------------------------------------------- functions


async def server_info(session: Any, timeout: float | None = 60.0) -> ServerInfo:
    """What the session's CLI answered to ``initialize``: commands, models, agents, account.

    Starts the CLI if it is not running yet (the answer is kept, so later
    calls cost nothing).

    Args:
        session: a pid or a name.
        timeout: seconds to wait for the CLI.

    Returns:
        The typed answer.

    Raises:
        SessionError: the CLI failed to start.
    """
    info = await prewarm(session, timeout)
    answer = info.get("initialize")
    return _server_info(answer if isinstance(answer, dict) else {})  # type: ignore[no-any-return]


async def supported_commands(session: Any, timeout: float | None = 60.0) -> list[SlashCommand]:
    """The CLI's slash commands (from :func:`server_info`).

    Args:
        session: a pid or a name.
        timeout: seconds to wait for the CLI.

    Returns:
        The commands.
    """
    return (await server_info(session, timeout)).commands


async def supported_models(session: Any, timeout: float | None = 60.0) -> list[ModelInfo]:
    """The models the CLI can use (from :func:`server_info`).

    Args:
        session: a pid or a name.
        timeout: seconds to wait for the CLI.

    Returns:
        The models.
    """
    return (await server_info(session, timeout)).models


async def supported_agents(session: Any, timeout: float | None = 60.0) -> list[AgentInfo]:
    """The subagent types the CLI offers (from :func:`server_info`).

    Args:
        session: a pid or a name.
        timeout: seconds to wait for the CLI.

    Returns:
        The agents.
    """
    return (await server_info(session, timeout)).agents


async def account_info(session: Any, timeout: float | None = 60.0) -> AccountInfo | None:
    """How the CLI is logged in (from :func:`server_info`).

    Args:
        session: a pid or a name.
        timeout: seconds to wait for the CLI.

    Returns:
        The account, or ``None`` when the CLI did not say.
    """
    return (await server_info(session, timeout)).account


async def mcp_status(session: Any, timeout: float | None = _TIMEOUT) -> list[McpServerStatus]:
    """The live status of every MCP server of the session's CLI.

    Args:
        session: a pid or a name.
        timeout: seconds to wait.

    Returns:
        One entry per server.
    """
    answer = await send_control_request(session, "mcp_status", {}, timeout)
    servers = answer.get("mcpServers")
    return [_mcp_status(s) for s in servers if isinstance(s, dict)] \
        if isinstance(servers, list) else []


async def mcp_reconnect(session: Any, server_name: str, timeout: float | None = _TIMEOUT) -> None:
    """Reconnect a failed or disconnected MCP server.

    Args:
        session: a pid or a name.
        server_name: the server's name.
        timeout: seconds to wait.

    Raises:
        SessionError: the reconnection failed (the CLI's reason in the message).
    """
    await send_control_request(session, "mcp_reconnect", {"serverName": server_name}, timeout)


async def mcp_toggle(session: Any, server_name: str, enabled: bool,
                     timeout: float | None = _TIMEOUT) -> None:
    """Enable or disable an MCP server (a disabled server's tools are gone until re-enabled).

    Args:
        session: a pid or a name.
        server_name: the server's name.
        enabled: ``True`` to enable, ``False`` to disable.
        timeout: seconds to wait.

    Raises:
        SessionError: the CLI refused.
    """
    await send_control_request(session, "mcp_toggle",
                               {"serverName": server_name, "enabled": bool(enabled)}, timeout)


async def set_mcp_servers(session: Any, servers: Mapping[str, Any],
                          timeout: float | None = _TIMEOUT) -> McpSetServersResult:
    """Set the session's dynamic MCP servers: add, replace and remove them at run time.

    ``servers`` maps names to configs (``{"command": ..., "args": [...]}``,
    ``{"type": "http", "url": ...}``...) or to in-process servers the session
    was started with. It replaces the in-process servers and the servers of
    earlier calls; the external servers of the start-up ``mcp_servers`` stay
    (as the CLI does). A restarted CLI starts with the same set.

    Args:
        session: a pid or a name.
        servers: the new servers.
        timeout: seconds to wait.

    Returns:
        What was added, removed and failed.

    Raises:
        SessionError: the CLI refused, or an in-process server was not among
            the session's ``mcp_servers`` at start.
    """
    reply = await otpy.call(session, ("set_mcp_servers", dict(servers)), timeout)
    return _set_servers(_unwrap(reply, "set_mcp_servers"))  # type: ignore[no-any-return]


async def get_context_usage(session: Any, *, detail: str | None = None,
                            timeout: float | None = _TIMEOUT) -> ContextUsage:
    """How the session's context window is used, by category (the CLI's ``/context``).

    Args:
        session: a pid or a name.
        detail: ``"summary"`` (quick, from the last usage) or ``"full"``
            (the CLI's default: counts each category with the API).
        timeout: seconds to wait.

    Returns:
        The breakdown.
    """
    payload = {} if detail is None else {"detail": detail}
    answer = await send_control_request(session, "get_context_usage", payload, timeout)
    return _context(answer)  # type: ignore[no-any-return]


async def rewind_files(session: Any, user_message_id: str, *, dry_run: bool = False,
                       timeout: float | None = _TIMEOUT) -> RewindFilesResult:
    """Put the files the CLI edited back as they were at a user message.

    Needs ``enable_file_checkpointing=True``. The message id is the
    ``uuid`` of a :class:`~claudecode.UserMessage` of the conversation (with
    ``replay_user_messages=True`` the stream shows your own prompts with
    their uuids).

    Args:
        session: a pid or a name.
        user_message_id: the user message to go back to.
        dry_run: only report what would change.
        timeout: seconds to wait.

    Returns:
        Whether it could, and what changed (or would change). A dry run
        reports an impossible rewind here (``can_rewind`` false, ``error``).

    Raises:
        SessionError: the rewind failed (no checkpoint for that message...).
    """
    answer = await send_control_request(
        session, "rewind_files", {"user_message_id": user_message_id, "dry_run": dry_run},
        timeout)
    return _rewind(answer)  # type: ignore[no-any-return]


async def stop_task(session: Any, task_id: str, timeout: float | None = _TIMEOUT) -> None:
    """Stop a running task (a background command, a subagent...).

    The task's ``task_id`` comes from a :class:`~claudecode.TaskStartedMessage`
    (or a :class:`~claudecode.TaskNotificationMessage`). A
    ``task_notification`` (or ``task_updated``) with the task's end follows.

    Args:
        session: a pid or a name.
        task_id: the task.
        timeout: seconds to wait.

    Raises:
        SessionError: the CLI refused.
    """
    await send_control_request(session, "stop_task", {"task_id": task_id}, timeout)


# ------------------------------------------------------------------ history


async def _history(session: Any, function: str, args: list[Any], kwargs: dict[str, Any],
                   timeout: float | None) -> Any:
    reply = await otpy.call(session, ("history", function, args, kwargs), timeout)
    if type(reply) is tuple and len(reply) == 3 and reply[0] == "error" and \
            isinstance(reply[2], BaseException):
        raise reply[2]
    return _unwrap(reply, function)


async def get_messages(session: Any, session_id: str | None = None, *,
                       timeout: float | None = 30.0) -> list[Message]:
    """The stored conversation of a session, read where its CLI keeps it.

    With the Port adapter that is this machine; with the Node adapter, the
    sandbox node (the transcript never has to be copied here).

    Args:
        session: a pid or a name.
        session_id: which conversation (default: the session's current one).
        timeout: seconds to wait.

    Returns:
        ``UserMessage`` / ``AssistantMessage`` objects, oldest first.

    Raises:
        SessionError: the session has no conversation yet.
        SessionNotFoundError: no such transcript.
    """
    sid = session_id if session_id is not None else await otpy.call(
        session, ("get_session_id",), timeout)
    if sid is None:
        raise SessionError("get_messages: the session has no conversation yet")
    messages: list[Message] = await _history(
        session, "conversation", [sid], {"project_path": await _cwd(session)}, timeout)
    return messages


async def list_sessions(session: Any, *, limit: int | None = None,
                        timeout: float | None = 30.0) -> list[SessionInfo]:
    """The stored sessions of the session's working directory, where its CLI keeps them.

    Args:
        session: a pid or a name.
        limit: at most this many (newest first).
        timeout: seconds to wait.

    Returns:
        The sessions, newest first.
    """
    found: list[SessionInfo] = await _history(
        session, "list_sessions", [await _cwd(session)], {"limit": limit}, timeout)
    return found


async def list_session_subagents(session: Any, session_id: str | None = None, *,
                                 timeout: float | None = 30.0) -> list[str]:
    """The subagents a session's conversation ran (their ids), where its CLI keeps them.

    Args:
        session: a pid or a name.
        session_id: which conversation (default: the current one).
        timeout: seconds to wait.

    Returns:
        The agent ids (read the messages with :meth:`claudecode.History.subagent_messages`).
    """
    sid = session_id if session_id is not None else await otpy.call(
        session, ("get_session_id",), timeout)
    if sid is None:
        raise SessionError("list_session_subagents: the session has no conversation yet")
    agents: list[str] = await _history(
        session, "list_subagents", [sid], {"project_path": await _cwd(session)}, timeout)
    return agents


async def _cwd(session: Any) -> str | None:
    """The session's working directory (``None``: the CLI ran where this process runs)."""
    info = await otpy.call(session, ("info",), 5.0)
    cwd = info.get("cwd") if isinstance(info, dict) else None
    return cwd if isinstance(cwd, str) else None
