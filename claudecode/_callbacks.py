"""Answering the CLI's control requests: ``can_use_tool``, ``hook_callback`` and ``mcp_message``.

Transport-independent: an adapter (Port, Node proxy...) reads
:class:`~claudecode._protocol.ControlRequest` events from the protocol
machine and hands them to a :class:`CallbackHandler`, which runs the user's
callbacks with trio (no threads) and produces the answer payload.

What the adapter must do (the simple way)::

    handler = CallbackHandler(options)
    # send handler.initialize_payload() in the `initialize` control request

    async def reply(outcome: CallbackOutcome) -> None:
        if proto.is_incoming_pending(outcome.request_id):
            await stdin.send_all(outcome.encode(proto))

    for event in proto.feed(chunk):
        if isinstance(event, ControlRequest):
            handler.start(nursery, event, reply)       # never blocks the reader
        elif isinstance(event, ControlCancelRequest):
            handler.cancel(event.request_id)           # cancels that callback, no reply

    handler.cancel_all("session stopping")             # on shutdown

Each request runs in its own task and cancel scope, so a slow callback never
blocks the reader (the CLI sends ``mcp_message`` requests *before* it answers
our ``initialize``) and a ``control_cancel_request`` cancels exactly that
callback; no answer is written for a cancelled request. Adapters that manage
tasks themselves can call :meth:`CallbackHandler.handle` directly inside
their own cancel scope (``handle`` returns the success payload or raises
:class:`CallbackError`, whose ``.error`` is the error response's text).

Failure rules (the session always lives on):

* ``can_use_tool`` raising, returning something that is not
  ``Allow``/``Deny``, or exceeding ``callback_timeout`` -> a *deny* whose
  message names the problem (``"can_use_tool raised ValueError: ..."``).
* A hook raising, returning an unusable output or exceeding its timeout
  (``HookMatcher.timeout``, else ``callback_timeout``) -> for ``PreToolUse``
  a *deny* (``"Hook error: ..."``: fail closed -- the real CLI runs the tool
  when a ``PreToolUse`` hook answers with an error response, so an error
  would let a crashing guard wave everything through); for
  ``PermissionRequest`` a denying decision; for every other event an error
  response (:class:`CallbackError`), which the CLI logs and ignores.
* MCP: a raising or slow tool gives an ``isError`` result ``"Tool error:
  ..."``; an unknown server a JSON-RPC error. Notifications are acknowledged
  with ``{"jsonrpc": "2.0", "result": {}}`` (the CLI waits for an answer to
  every ``mcp_message``; with an error answer it drops the server's tools).

Sync callbacks run on the trio thread: they cannot be interrupted by a
timeout or a cancel (make long-running callbacks async).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Literal

import attrs
import trio

from claudecode._hooks import (
    AbortSignal,
    Deny,
    HookContext,
    HookOutputError,
    PermissionContext,
    deny,
    hook_output,
    permission_result,
)
from claudecode._mcp import JSONRPC_INTERNAL_ERROR, JSONRPC_METHOD_NOT_FOUND, McpServer
from claudecode._options import (
    HookCallbackSpec,
    Options,
    build_hooks_config,
    initialize_payload,
    sdk_mcp_servers,
)
from claudecode._protocol import CLIProtocol, ControlRequest
from claudecode._protocol_errors import ControlRequestError

__all__ = [
    "DEFAULT_CALLBACK_TIMEOUT",
    "MCP_NOTIFICATION_ACK",
    "CallbackError",
    "CallbackHandler",
    "CallbackOutcome",
    "Reply",
]

DEFAULT_CALLBACK_TIMEOUT: Final = 30.0
"""Seconds a callback may take unless configured otherwise."""

MCP_NOTIFICATION_ACK: Final = {"jsonrpc": "2.0", "result": {}}
"""The ``mcp_response`` sent for a JSON-RPC notification (checked against the real CLI)."""

_FAIL_CLOSED_EVENTS: Final = ("PreToolUse", "PermissionRequest")


class CallbackError(ControlRequestError):
    """A CLI control request must be answered with an error response.

    Args:
        request_id: the CLI's request id.
        subtype: the request's subtype.
        error: the text of the error response.
        error_code: a machine-readable code (e.g. ``"unsupported_request"``).
    """


@attrs.frozen
class CallbackOutcome:
    """The answer to one CLI control request, ready to encode.

    Attributes:
        request_id: the CLI's request id.
        subtype: the request's subtype.
        response: the success payload, or ``None`` for an error answer.
        error: the error text when ``response`` is ``None``.
    """

    request_id: str
    subtype: str
    response: dict[str, Any] | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether this is a success answer."""
        return self.response is not None

    def encode(self, proto: CLIProtocol) -> bytes:
        """The stdin line for this answer.

        Args:
            proto: the connection's protocol machine.

        Returns:
            A ``control_response`` line (success or error).
        """
        if self.response is not None:
            return proto.control_response_success(self.request_id, self.response)
        return proto.control_response_error(self.request_id, self.error or "callback failed")


Reply = Callable[[CallbackOutcome], Awaitable[None]]
"""Writes one answer to the CLI (see :meth:`CallbackHandler.start`)."""


def _error_text(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _wants_context(fn: Callable[..., Any]) -> bool:
    """Whether a hook accepts a third positional argument (the :class:`HookContext`)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = 0
    for param in params:
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if param.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            positional += 1
    return positional >= 3


async def _call_with_timeout(
    fn: Callable[..., Any], args: tuple[Any, ...], timeout: float | None, signal: AbortSignal
) -> tuple[Any, bool]:
    """Call a sync or async callback; ``(value, timed_out)``. Exceptions propagate."""
    deadline = math.inf if timeout is None else trio.current_time() + timeout
    if timeout is not None:
        signal.set_deadline(deadline, f"timed out after {timeout:g}s")
    with trio.move_on_at(deadline):
        value = fn(*args)
        if inspect.isawaitable(value):
            value = await value
        return value, False
    signal.abort(f"timed out after {timeout:g}s")
    return None, True


class CallbackHandler:
    """Runs a session's callbacks for the CLI's control requests.

    Args:
        options: the session options (``can_use_tool``, ``hooks``,
            ``mcp_servers`` are used).
        callback_timeout: seconds any callback may take (hooks: unless their
            matcher sets ``timeout``); ``None`` for no limit.
        where: which callbacks this handler runs. ``None``: all. ``"local"``:
            local hooks, MCP servers and ``can_use_tool`` (the Node adapter's
            local proxy). ``"remote"``: only hooks with ``where="remote"``.
        id_prefix: prefix of the hook callback ids (must match the
            ``initialize`` payload; keep the default).

    Raises:
        ValueError: ``callback_timeout`` is not positive.
    """

    def __init__(
        self,
        options: Options,
        *,
        callback_timeout: float | None = DEFAULT_CALLBACK_TIMEOUT,
        where: Literal["local", "remote"] | None = None,
        id_prefix: str = "hook_",
    ) -> None:
        if callback_timeout is not None and (
            isinstance(callback_timeout, bool) or not callback_timeout > 0
        ):
            raise ValueError(f"callback_timeout must be positive seconds, got {callback_timeout!r}")
        if where not in (None, "local", "remote"):
            raise ValueError(f"where must be None, 'local' or 'remote', got {where!r}")
        self.options: Final = options
        self.callback_timeout: Final = callback_timeout
        self.where: Final = where
        config, specs = build_hooks_config(options.hooks, id_prefix=id_prefix)
        self.hooks_config: Final = config
        """The ``hooks`` object of ``initialize`` (every hook, wherever it runs)."""
        self.hook_specs: Final[dict[str, HookCallbackSpec]] = {
            s.callback_id: s for s in specs if where is None or s.where == where
        }
        """The hooks this handler runs, by callback id."""
        self._with_context = {cid: _wants_context(s.callback) for cid, s in self.hook_specs.items()}
        serve_local = where != "remote"
        self.mcp_servers: Final[dict[str, Any]] = sdk_mcp_servers(options) if serve_local else {}
        """The in-process MCP servers this handler serves, by ``mcp_servers`` key."""
        self.can_use_tool: Final = options.can_use_tool if serve_local else None
        self._running: dict[str, tuple[trio.CancelScope, AbortSignal]] = {}

    # -- setup ---------------------------------------------------------------

    def initialize_payload(self) -> dict[str, Any]:
        """The fields of the ``initialize`` control request (hooks, agents, SDK MCP servers...).

        Returns:
            The payload for ``CLIProtocol.control_request("initialize", payload)``.
        """
        return initialize_payload(self.options, self.hooks_config)

    def serves(self, request: ControlRequest) -> bool:
        """Whether this handler runs the callback behind ``request``.

        Args:
            request: a CLI control request.

        Returns:
            ``True`` for a known hook id, a served MCP server, or
            ``can_use_tool`` when configured here.
        """
        body = request.request
        if request.subtype == "hook_callback":
            return body.get("callback_id") in self.hook_specs
        if request.subtype == "mcp_message":
            return body.get("server_name") in self.mcp_servers
        if request.subtype == "can_use_tool":
            return self.can_use_tool is not None
        return False

    # -- running requests as tasks -------------------------------------------

    @property
    def running(self) -> frozenset[str]:
        """Ids of the requests started with :meth:`start` and not finished yet."""
        return frozenset(self._running)

    def start(self, nursery: trio.Nursery, request: ControlRequest, reply: Reply) -> None:
        """Run one request in its own task; ``reply`` gets the answer unless it is cancelled.

        Registration is immediate, so a cancel that arrives right after the
        request (before the task runs) still finds it.

        Args:
            nursery: where the task runs.
            request: the CLI control request.
            reply: awaited with the :class:`CallbackOutcome`; not called when
                the request was cancelled. A broken or closed stream during
                the reply is ignored (the CLI is gone).
        """
        scope = trio.CancelScope()
        signal = AbortSignal()
        previous = self._running.get(request.request_id)
        if previous is not None:  # the CLI reused an id: the old answer is unwanted
            previous[1].abort("superseded by a request with the same id")
            previous[0].cancel()
        entry = (scope, signal)
        self._running[request.request_id] = entry
        nursery.start_soon(self._run, request, entry, reply)

    async def _run(
        self,
        request: ControlRequest,
        entry: tuple[trio.CancelScope, AbortSignal],
        reply: Reply,
    ) -> None:
        scope, signal = entry
        rid = request.request_id
        outcome: CallbackOutcome | None = None
        try:
            if scope.cancel_called:  # cancelled before the task got to run
                return
            with scope:
                try:
                    response = await self.handle(request, signal=signal)
                    outcome = CallbackOutcome(rid, request.subtype, response)
                except CallbackError as exc:
                    outcome = CallbackOutcome(rid, request.subtype, None, exc.error)
        finally:
            if self._running.get(rid) is entry:
                del self._running[rid]
        if outcome is None or scope.cancel_called:
            return
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await reply(outcome)

    def cancel(self, request_id: str, reason: str = "cancelled by the CLI") -> bool:
        """Cancel a request started with :meth:`start` (on ``control_cancel_request``).

        Its callback is cancelled (async) and its signal set; no answer is sent.

        Args:
            request_id: the CLI's request id.
            reason: stored in the callback's :class:`AbortSignal`.

        Returns:
            Whether such a request was running.
        """
        entry = self._running.pop(request_id, None)
        if entry is None:
            return False
        entry[1].abort(reason)
        entry[0].cancel()
        return True

    def cancel_all(self, reason: str = "session stopping") -> int:
        """Cancel every running request (the session stops or the CLI exited).

        Args:
            reason: stored in each callback's :class:`AbortSignal`.

        Returns:
            How many were cancelled.
        """
        ids = list(self._running)
        for rid in ids:
            self.cancel(rid, reason)
        return len(ids)

    # -- answering one request -----------------------------------------------

    async def handle(
        self, request: ControlRequest, *, signal: AbortSignal | None = None
    ) -> dict[str, Any]:
        """Run the callback for one CLI control request and return the success payload.

        Cancellation (trio) propagates; run it in a cancel scope per request
        and cancel that scope on ``control_cancel_request``.

        Args:
            request: the control request (``can_use_tool``, ``hook_callback``,
                ``mcp_message``).
            signal: the abort signal handed to the callback's context (one is
                made when ``None``).

        Returns:
            The ``response`` object of a success ``control_response``.

        Raises:
            CallbackError: the request must get an error response (unknown
                subtype or hook id, no ``can_use_tool`` configured, a non
                fail-closed hook failed).
        """
        signal = signal if signal is not None else AbortSignal()
        try:
            if request.subtype == "can_use_tool":
                return await self._can_use_tool(request, signal)
            if request.subtype == "hook_callback":
                return await self._hook_callback(request, signal)
            if request.subtype == "mcp_message":
                return await self._mcp_message(request)
        except CallbackError:
            raise
        except Exception as exc:  # a bug of ours must not take the session down
            raise CallbackError(
                request.request_id, request.subtype, f"internal error: {_error_text(exc)}"
            ) from exc
        raise CallbackError(
            request.request_id,
            request.subtype,
            f"unsupported control request {request.subtype!r}",
            "unsupported_request",
        )

    async def _can_use_tool(self, request: ControlRequest, signal: AbortSignal) -> dict[str, Any]:
        body = request.request
        callback = self.can_use_tool
        if callback is None:
            raise CallbackError(
                request.request_id, request.subtype, "no can_use_tool callback is configured"
            )
        tool_name = body.get("tool_name")
        tool_name = tool_name if isinstance(tool_name, str) else ""
        raw_input = body.get("input")
        tool_input: dict[str, Any] = dict(raw_input) if isinstance(raw_input, Mapping) else {}
        context = PermissionContext.from_request(body, signal)
        timeout = self.callback_timeout
        try:
            value, timed_out = await _call_with_timeout(
                callback, (tool_name, copy.deepcopy(tool_input), context), timeout, signal
            )
        except Exception as exc:
            return Deny(f"can_use_tool raised {_error_text(exc)}").to_wire()
        if timed_out:
            return Deny(f"can_use_tool did not answer within {timeout:g}s").to_wire()
        try:
            return permission_result(value, tool_input)
        except HookOutputError as exc:
            return Deny(str(exc)).to_wire()

    async def _hook_callback(self, request: ControlRequest, signal: AbortSignal) -> dict[str, Any]:
        body = request.request
        cid = body.get("callback_id")
        spec = self.hook_specs.get(cid) if isinstance(cid, str) else None
        if spec is None:
            raise CallbackError(
                request.request_id, request.subtype, f"unknown hook callback id {cid!r}"
            )
        raw_input = body.get("input")
        hook_input: dict[str, Any] = dict(raw_input) if isinstance(raw_input, Mapping) else {}
        name = hook_input.get("hook_event_name")
        event = name if isinstance(name, str) else spec.event
        tool_use_id = body.get("tool_use_id")
        tool_use_id = tool_use_id if isinstance(tool_use_id, str) else None
        timeout = spec.timeout if spec.timeout is not None else self.callback_timeout
        args: tuple[Any, ...] = (hook_input, tool_use_id)
        if self._with_context[spec.callback_id]:
            args = (*args, HookContext(event, spec.callback_id, tool_use_id, signal))
        try:
            value, timed_out = await _call_with_timeout(spec.callback, args, timeout, signal)
            if not timed_out:
                return hook_output(value, event)
            problem = f"hook {spec.callback_id} did not answer within {timeout:g}s"
        except HookOutputError as exc:
            problem = f"hook {spec.callback_id} returned an unusable output: {exc}"
        except Exception as exc:
            problem = f"hook {spec.callback_id} raised {_error_text(exc)}"
        if event in _FAIL_CLOSED_EVENTS:
            return deny(f"Hook error: {problem}").to_wire(event)
        raise CallbackError(request.request_id, request.subtype, f"Hook error: {problem}")

    async def _mcp_message(self, request: ControlRequest) -> dict[str, Any]:
        body = request.request
        name = body.get("server_name")
        message = body.get("message")
        rid = message.get("id") if isinstance(message, Mapping) else None
        server = self.mcp_servers.get(name) if isinstance(name, str) else None
        response: Any
        if server is None:
            response = {
                "jsonrpc": "2.0",
                "id": rid,
                "error": {
                    "code": JSONRPC_METHOD_NOT_FOUND,
                    "message": f"MCP server {name!r} is not served by this session",
                },
            }
        else:
            try:
                response = await self._call_server(server, message)
            except Exception as exc:
                response = {
                    "jsonrpc": "2.0",
                    "id": rid,
                    "error": {"code": JSONRPC_INTERNAL_ERROR, "message": _error_text(exc)},
                }
        if response is None:
            response = dict(MCP_NOTIFICATION_ACK)
        return {"mcp_response": response}

    async def _call_server(self, server: Any, message: Any) -> Any:
        if isinstance(server, McpServer):
            return await server.handle(message, timeout=self.callback_timeout)
        # Another object carrying the SDK-server marker: duck-typed `handle(message)`.
        timeout = self.callback_timeout
        with trio.move_on_after(math.inf if timeout is None else timeout):
            value = server.handle(message)
            if inspect.isawaitable(value):
                value = await value
            return value
        raise TimeoutError(f"MCP server did not answer within {timeout:g}s")
