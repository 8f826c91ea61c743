"""claudecode: Claude Code sessions as supervised otpy GenServers.

A Python port of the Elixir ClaudeCode library on top of otpy::

    import claudecode, otpy

    async def main():
        session = await claudecode.start_link(system_prompt="Be brief.")
        async for text in claudecode.stream(session, "Hello!").text_content():
            print(text)
        await claudecode.stop(session)

    otpy.run(main)

A session is a GenServer owning one conversation and, through its adapter,
one Claude Code CLI process (started on the first query, then kept warm).
``claudecode.Supervisor`` runs named sessions that restart on failure.
See ``docs/claudecode/``.
"""

from claudecode import (
    _wire,  # noqa: F401  (registers the types that cross nodes)
    adapters,
)
from claudecode._errors import (
    AdapterFailed,
    ClaudeCodeError,
    CLIExited,
    CLINotFoundError,
    ConnectTimeoutError,
    LineTooLong,
    NodeConnectFailedError,
    ResultError,
    RPCFailedError,
    SessionError,
    StreamError,
)
from claudecode._history import History, SessionInfo
from claudecode._hooks import (
    AbortSignal,
    Allow,
    Deny,
    HookContext,
    HookMatcher,
    HookOutputError,
    HookResponse,
    PermissionContext,
    allow,
    ask,
    block,
    deny,
    halt,
    ok,
)
from claudecode._mcp import (
    McpServer,
    SchemaError,
    Tool,
    ToolResult,
    ValidationError,
    mcp_server,
    tool,
)
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
)
from claudecode._options import Options
from claudecode._protocol_errors import (
    ControlRequestError,
    HistoryError,
    InvalidOptionError,
    InvalidOptionTypeError,
    InvalidSessionIdError,
    OptionError,
    SessionNotFoundError,
    UnknownOptionError,
)
from claudecode._session import (
    Session,
    adapter_info,
    alive,
    clear,
    get_session_id,
    health,
    interrupt,
    prewarm,
    send_control_request,
    set_model,
    set_permission_mode,
    start,
    start_link,
    stop,
)
from claudecode._stream import Collected, Stream, query, stream
from claudecode._supervisor import Supervisor

__all__ = [
    "AbortSignal",
    "AdapterFailed",
    "Allow",
    "AssistantMessage",
    "CLIExited",
    "CLINotFoundError",
    "ClaudeCodeError",
    "Collected",
    "ConnectTimeoutError",
    "ContentBlock",
    "ControlRequestError",
    "Deny",
    "DocumentBlock",
    "History",
    "HistoryError",
    "HookContext",
    "HookMatcher",
    "HookOutputError",
    "HookResponse",
    "ImageBlock",
    "InvalidOptionError",
    "InvalidOptionTypeError",
    "InvalidSessionIdError",
    "LineTooLong",
    "McpServer",
    "McpToolResultBlock",
    "McpToolUseBlock",
    "Message",
    "NodeConnectFailedError",
    "OptionError",
    "Options",
    "PartialAssistantMessage",
    "PermissionContext",
    "RPCFailedError",
    "RedactedThinkingBlock",
    "ResultError",
    "ResultMessage",
    "SchemaError",
    "ServerToolResultBlock",
    "ServerToolUseBlock",
    "Session",
    "SessionError",
    "SessionInfo",
    "SessionNotFoundError",
    "Stream",
    "StreamError",
    "Supervisor",
    "SystemMessage",
    "TextBlock",
    "ThinkingBlock",
    "Tool",
    "ToolResult",
    "ToolResultBlock",
    "ToolUseBlock",
    "UnknownBlock",
    "UnknownMessage",
    "UnknownOptionError",
    "UserMessage",
    "ValidationError",
    "WebSearchToolResultBlock",
    "adapter_info",
    "adapters",
    "alive",
    "allow",
    "ask",
    "block",
    "clear",
    "deny",
    "get_session_id",
    "halt",
    "health",
    "interrupt",
    "mcp_server",
    "ok",
    "prewarm",
    "query",
    "send_control_request",
    "set_model",
    "set_permission_mode",
    "start",
    "start_link",
    "stop",
    "stream",
    "tool",
]
