"""The session: one Claude conversation as an otpy GenServer.

A session owns its options, its adapter process (started lazily on the first
query and then kept warm) and a FIFO of queries: one turn runs at a time,
later queries wait. It captures the conversation's session id from the CLI's
messages, forwards each turn's messages to the process consuming the stream,
and watches that consumer: a consumer that dies, closes its stream early or
times out *abandons* the turn, and the session interrupts the CLI.

The session traps exits, so the adapter's death arrives as a message. If the
CLI dies while it was up (killed, crashed), the session first fails the
streaming caller with a :class:`~claudecode._errors.StreamError` carrying the
typed reason (e.g. :class:`~claudecode._errors.CLIExited`), then exits with
that same reason, so a supervisor restarts it with fresh state. If the CLI
fails while starting, the waiting callers get the error at once and the
session stays up (the next query tries again); ``health`` reports the error.

Message formats between the stream and the session (all plain terms):

* stream → session call ``("query", ref, content, consumer)``; reply
  ``("ok", session_pid, default_timeout)`` or ``("error", kind, text)``;
* session → consumer ``(STREAM_TAG, ref, "message", message)`` for every
  message of the turn (the last one is the ``ResultMessage``), or
  ``(STREAM_TAG, ref, "error", reason)`` when the turn cannot complete;
* consumer → session ``(ABANDON_TAG, ref)`` when the consumer stops early.

Streaming input (a prompt that is an async iterable): the query carries
``{"streaming": True}`` and no content; a feeder process then sends
``(INPUT_TAG, ref, "input", content, uuid)`` per user message and
``(INPUT_TAG, ref, "end")``. Such a turn may span several results; the
session ends it with ``(STREAM_TAG, ref, "end", None)`` once the input is
over and every message sent was answered.

Which turn a message belongs to: every user message is sent with a fresh
``uuid``; the CLI announces ``command_lifecycle`` ``started`` for it, and
everything from there to the next ``result`` goes to that query's stream.
Everything else (a background task finishing between turns, the turn the
CLI then starts by itself, the ``completed`` notice after a result) goes to
the session's subscribers (:func:`claudecode.subscribe`), or is kept (up to
:data:`BACKLOG_SIZE` messages) until one subscribes.
"""

from __future__ import annotations

import logging
import os
import uuid as uuid_mod
from collections import deque
from collections.abc import Awaitable
from typing import Any, Final

import attrs
import trio

import otpy
from claudecode import _beam as beam
from claudecode import _telemetry as tel
from claudecode._errors import AdapterFailed, LineTooLong, SessionError, describe_reason
from claudecode._messages import (
    CommandLifecycleMessage,
    Message,
    ResultMessage,
    SystemMessage,
    parse_message,
)
from claudecode._options import Options, normalize_permission_mode
from claudecode._protocol import encode_line
from claudecode._protocol_errors import EncodeError, InvalidOptionTypeError, OptionError
from claudecode._usage import Usage
from claudecode.adapters._base import ADAPTER_TAG, Adapter
from claudecode.adapters._port import Port
from otpy import ChildSpec, Down, Exit, ExitReason, Pid, Ref, telemetry
from otpy._process import current

__all__ = [
    "ABANDON_TAG",
    "STREAM_TAG",
    "Session",
    "adapter_info",
    "alive",
    "child_spec",
    "clear",
    "get_session_id",
    "health",
    "interrupt",
    "prepare",
    "prewarm",
    "send_control_request",
    "set_model",
    "set_permission_mode",
    "start",
    "start_link",
    "start_owned",
    "stop",
]

logger = logging.getLogger("claudecode.session")

STREAM_TAG: Final = "$claudecode_stream"
"""First element of the messages a session sends to a stream's consumer."""

ABANDON_TAG: Final = "$claudecode_abandon"
"""First element of the message a consumer sends when it gives up a stream."""

INPUT_TAG: Final = "$claudecode_input"
"""First element of the messages a streaming-input feeder sends to the session."""

SUBSCRIPTION_TAG: Final = "$claudecode_subscription"
"""First element of the messages a session sends to its subscribers."""

UNSUBSCRIBE_TAG: Final = "$claudecode_unsubscribe"
"""First element of the message a subscriber sends when it stops listening."""

BACKLOG_SIZE: Final = 1000
"""Messages outside any turn kept for the first subscriber (the oldest are dropped)."""

Health = str | tuple[str, Any]
"""``"healthy"``, ``"degraded"`` or ``("unhealthy", reason)``."""

_CLEARED: Final = otpy.Shutdown("session cleared")


def _reply(caller: Any, value: Any) -> None:
    """`otpy.reply`, for a caller that may be on another node: a value that
    cannot be encoded is replied as ``("error", "unencodable", text)``."""
    try:
        otpy.reply(caller, value)
    except otpy.ETFEncodeError as exc:
        otpy.reply(caller, ("error", "unencodable", str(exc)))


def _config_dir(env: dict[str, Any]) -> str | None:
    """The CLI's config directory as the session's ``env`` sets it (``None``: the default)."""
    config = env.get("CLAUDE_CONFIG_DIR")
    if isinstance(config, str) and config:
        return config
    home = env.get("HOME")
    if isinstance(home, str) and home:
        return f"{home}/.claude"
    return None


async def _history_worker(adapter: Adapter, prepared: Any, function: str, args: list[Any],
                          kwargs: dict[str, Any], context: dict[str, Any], caller: Any) -> None:
    """Run one history function through the adapter and answer the caller."""
    try:
        value = await adapter.history(prepared, function, args, kwargs, context)
    except Exception as exc:
        _reply(caller, ("error", "history", exc))
        return
    _reply(caller, ("ok", value))


def _make_ref() -> Ref:
    node = current().node
    return Ref.make(node.name, node.creation)


@attrs.define(eq=False)
class _Request:
    """One query: queued, then active until its result (or, streaming, its input's end)."""

    ref: Ref
    content: Any
    consumer: Pid
    monitor: Ref | None
    abandoned: bool = False
    streaming: bool = False
    input_open: bool = False
    inputs: list[tuple[Any, str]] = attrs.field(factory=list)  # buffered until active
    pending: set[str] = attrs.field(factory=set)  # uuids sent, not answered yet
    sent: set[str] = attrs.field(factory=set)  # every uuid sent for this request


@attrs.define(eq=False)
class _Subscriber:
    pid: Pid
    monitor: Ref
    include_turns: bool


def _message_uuids(msg: Message) -> list[str]:
    """The user-message uuids a message says it answers (results and some assistant lines)."""
    if isinstance(msg, ResultMessage):
        return msg.user_message_uuids
    raw = msg.raw
    found = raw.get("user_message_uuids")
    out = [u for u in found if isinstance(u, str)] if isinstance(found, list) else []
    one = raw.get("user_message_uuid")
    if isinstance(one, str):
        out.append(one)
    return out


def _default_adapter(options: Options) -> Adapter:
    adapter = options.adapter
    if adapter is None:
        return Port()
    if not isinstance(adapter, Adapter):
        raise InvalidOptionTypeError(
            "adapter",
            f"expected an adapter such as claudecode.adapters.Port(), got {type(adapter).__name__}",
        )
    return adapter


def prepare(options: dict[str, Any]) -> tuple[Options, Any]:
    """Validate session options and run the adapter's early checks.

    Args:
        options: the keyword options of ``start_link``.

    Returns:
        ``(validated options, what the adapter's prepare returned)``.

    Raises:
        OptionError: an unknown option or an invalid value (the error names it).
        CLINotFoundError: the default adapter found no CLI executable.
    """
    opts = Options.from_kwargs(**options)
    adapter = _default_adapter(opts)
    return opts, adapter.prepare(opts)


async def aprepare(options: dict[str, Any]) -> tuple[Options, Any]:
    """`prepare`, then the adapter's asynchronous checks (a Node adapter
    connects to its sandbox here, so its errors are raised by ``start_link``).

    Args:
        options: the keyword options of ``start_link``.

    Returns:
        ``(validated options, what the adapter prepared)``.
    """
    opts, prepared = prepare(options)
    adapter = _default_adapter(opts)
    if adapter.resume_on_restart and opts.resume is None and opts.name is not None:
        last = _last_session_ids.get(_name_key(opts.name))
        if last is not None:
            from claudecode.adapters._node import ResumeUnavailable

            try:
                opts_resumed = opts.merge(resume=last)
                return opts_resumed, await adapter.aprepare(opts_resumed, prepared)
            except ResumeUnavailable as where:
                logger.warning("session %r: conversation %s is not on %s; starting a new one",
                               opts.name, last, where)
                _last_session_ids.pop(_name_key(opts.name), None)
    return opts, await adapter.aprepare(opts, prepared)


#: The last CLI session id seen per session name, for adapters that resume
#: a restarted session's conversation (`claudecode.adapters.Pool`).
_last_session_ids: dict[Any, str] = {}


def _name_key(name: Any) -> Any:
    try:
        hash(name)
    except TypeError:
        return repr(name)
    return name


class Session(otpy.GenServer):
    """The session server. Start it with :func:`start_link`, not directly."""

    trap_exits = True
    observer_kind = "session"

    options: Options
    adapter_config: Adapter
    prepared: Any
    adapter: Pid | None
    adapter_state: str
    info: dict[str, Any]
    queue: deque[_Request]
    active: _Request | None
    session_id: str | None
    controls: dict[Ref, Any]
    internal_controls: set[Ref]
    deferred: list[tuple[str, dict[str, Any], Any]]
    warm_waiters: list[Any]
    last_error: ExitReason | None
    degraded: ExitReason | str | None
    interrupting: bool
    owner_ref: Ref | None
    turns: int
    owner: _Request | None
    lifecycle_seen: bool
    startup_servers: frozenset[str]
    subscribers: dict[Ref, _Subscriber]
    backlog: deque[Message]
    backlog_dropped: int
    # telemetry and the observer (claudecode._telemetry)
    model: str | None
    turn_started: float | None
    cli_started: float | None
    cli_live: bool
    cli_cost: float
    input_tokens: int
    output_tokens: int
    cost_usd: float

    async def init(self, options: Options, prepared: Any, owner: Pid | None = None) -> None:
        self.options = options
        self.adapter_config = _default_adapter(options)
        self.prepared = prepared
        self.adapter = None
        self.adapter_state = "none"
        self.info = {}
        self.queue = deque()
        self.active = None
        self.session_id = options.session_id or (
            options.resume if not options.fork_session else None)
        self.controls = {}
        self.internal_controls = set()
        self.deferred = []
        self.warm_waiters = []
        self.last_error = None
        self.degraded = None
        self.interrupting = False
        self.turns = 0
        self.owner_ref = otpy.monitor(owner) if owner is not None else None
        self.owner = None
        self.lifecycle_seen = False
        from claudecode._options import is_sdk_mcp_server

        self.startup_servers = frozenset(
            k for k, v in (options.mcp_servers or {}).items() if not is_sdk_mcp_server(v))
        self.subscribers = {}
        self.backlog = deque()
        self.backlog_dropped = 0
        self.model = options.model
        self.turn_started = None
        self.cli_started = None
        self.cli_live = False
        self.cli_cost = 0.0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost_usd = 0.0

    def format_status(self) -> dict[str, Any]:
        """What the observer shows: the CLI's state, tokens and cost; no secrets
        (the options, which may hold an API key or an environment, are left out)."""
        return {
            "name": self.options.name,
            "model": self.model,
            "session_id": self.session_id,
            "cli": self.adapter_state,
            "os_pid": self.info.get("os_pid"),
            "adapter": self.adapter,
            "turns": self.turns,
            "active": self.active is not None,
            "queued": len(self.queue),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "last_error": self.last_error,
            "degraded": self.degraded,
        }

    # ------------------------------------------------------------ telemetry

    def _turn_start(self) -> None:
        self.turn_started = trio.current_time()
        if telemetry.active:
            telemetry.execute(tel.TURN_START, {}, tel.session_metadata(self))

    def _turn_exception(self, reason: ExitReason) -> None:
        started, self.turn_started = self.turn_started, None
        if started is not None and telemetry.active:
            telemetry.execute(tel.TURN_EXCEPTION, {"duration": trio.current_time() - started},
                              {**tel.session_metadata(self), "reason": reason})

    def _account(self, msg: ResultMessage, in_turn: bool) -> None:
        """Add a result's tokens and cost to the session's totals; end the turn."""
        usage = Usage(msg.usage or {})
        total = msg.total_cost_usd
        cost = 0.0
        if isinstance(total, int | float) and not isinstance(total, bool) and total >= 0:
            # The CLI reports its process's running total: this turn is the increase.
            cost = total - self.cli_cost if total >= self.cli_cost else float(total)
            self.cli_cost = float(total)
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cost_usd += cost
        started = self.turn_started
        if not in_turn or started is None:
            return
        self.turn_started = None
        if telemetry.active:
            telemetry.execute(tel.TURN_STOP, {
                "duration": trio.current_time() - started,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cache_read_input_tokens": usage.cache_read_input_tokens,
                "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                "cost_usd": cost,
            }, {**tel.session_metadata(self), "is_error": msg.is_error,
                "subtype": msg.subtype, "num_turns": msg.num_turns})

    def _cli_exit(self, reason: ExitReason, os_pid: Any) -> None:
        if self.cli_live:
            self.cli_live = False
            tel.cli_event(self, "exit", os_pid=os_pid, reason=reason)

    # ------------------------------------------------------------ calls

    async def handle_call(self, request: Any, caller: Any) -> Any:
        op = request[0] if type(request) is tuple and request else None
        if op == "query":
            extra = request[4] if len(request) > 4 and isinstance(request[4], dict) else {}
            return await self._query(request[1], request[2], request[3], extra)
        if op is beam.QUERY or op is beam.STREAM:  # from a BEAM node (or anyone)
            return beam.start_turn(self.pid, request, caller)
        if op == "subscribe":
            return self._subscribe(request[1], request[2], bool(request[3]))
        if op == "set_mcp_servers":
            return await self._set_mcp_servers(request[1], caller)
        if op == "history":
            return self._history(request[1], request[2], request[3], caller)
        if op == "get_session_id":
            return self.session_id
        if op == "health":
            return self._health()
        if op == "info":
            return self._info()
        if op == "interrupt":
            if self.active is None or self.adapter_state != "ready":
                return ("ok", None)
            return self._control("interrupt", {}, caller)
        if op == "set_model":
            try:
                self.options = self.options.merge(model=request[1])
            except OptionError as exc:
                return ("error", "option", str(exc))
            return self._control_if_running("set_model", {"model": request[1]}, caller)
        if op == "set_permission_mode":
            try:
                mode = normalize_permission_mode(request[1])
                self.options = self.options.merge(permission_mode=mode)
            except OptionError as exc:
                return ("error", "option", str(exc))
            return self._control_if_running("set_permission_mode", {"mode": mode}, caller)
        if op == "control":
            return await self._control_or_defer(request[1], request[2], caller)
        if op == "clear":
            await self._clear()
            return ("ok", None)
        if op == "warm":
            if self.adapter_state == "ready":
                return ("ok", dict(self.info))
            self.warm_waiters.append(caller)
            if self.adapter_state == "none":
                await self._start_adapter()
            return otpy.NoReply
        logger.warning("session %r: unknown request %r", self.pid, request)
        return ("error", "request", f"unknown session request {request!r}")

    async def _query(self, ref: Ref, content: Any, consumer: Pid,
                     extra: dict[str, Any]) -> Any:
        if extra.get("streaming"):
            request = _Request(ref, None, consumer, otpy.monitor(consumer), streaming=True,
                               input_open=True)
            self.queue.append(request)
            await self._pump()
            return ("ok", self.pid, self.options.timeout)
        if not isinstance(content, str | list | tuple):
            return ("error", "prompt", f"a prompt is a str or a list of content blocks, "
                    f"not {type(content).__name__}")
        if not isinstance(content, str):  # (a str always encodes)
            content = list(content)
            try:
                encode_line(content)
            except EncodeError as exc:
                return ("error", "prompt", f"the prompt cannot be encoded as JSON: {exc}")
        request = _Request(ref, content, consumer, otpy.monitor(consumer))
        self.queue.append(request)
        await self._pump()
        return ("ok", self.pid, self.options.timeout)

    def _subscribe(self, ref: Ref, pid: Pid, include_turns: bool) -> Any:
        self.subscribers[ref] = _Subscriber(pid, otpy.monitor(pid), include_turns)
        backlog, self.backlog = self.backlog, deque()
        if self.backlog_dropped:
            logger.info("session %r: %d messages outside turns were dropped before anyone "
                        "subscribed", self.pid, self.backlog_dropped)
            self.backlog_dropped = 0
        for msg in backlog:
            otpy.send(pid, (SUBSCRIPTION_TAG, ref, "message", msg))
        return ("ok", self.pid)

    def _unsubscribe(self, ref: Ref) -> None:
        sub = self.subscribers.pop(ref, None)
        if sub is not None:
            otpy.demonitor(sub.monitor, flush=True)

    def _publish(self, msg: Message, in_turn: bool) -> None:
        """Give a message to the subscribers (outside a turn: keep it if there are none)."""
        delivered = False
        for ref, sub in self.subscribers.items():
            if in_turn and not sub.include_turns:
                continue
            otpy.send(sub.pid, (SUBSCRIPTION_TAG, ref, "message", msg))
            delivered = True
        if not delivered and not in_turn:
            if len(self.backlog) >= BACKLOG_SIZE:
                self.backlog.popleft()
                self.backlog_dropped += 1
            self.backlog.append(msg)

    async def _set_mcp_servers(self, servers: Any, caller: Any) -> Any:
        from claudecode._options import is_sdk_mcp_server

        if not isinstance(servers, dict):
            return ("error", "option", "servers must be a dict of name -> config")
        current = self.options.mcp_servers or {}
        wire: dict[str, Any] = {}
        for key, server in servers.items():
            if is_sdk_mcp_server(server):
                if current.get(key) is not server:
                    return ("error", "option",
                            f"in-process MCP server {key!r} was not given at start: pass it in "
                            "the mcp_servers option (the session serves those it started with)")
                wire[key] = {"type": "sdk", "name": key}
            else:
                wire[key] = server
        try:  # what a restarted CLI gets: the start-up servers and these
            started = {k: v for k, v in (self.options.mcp_servers or {}).items()
                       if k in self.startup_servers}
            self.options = self.options.merge(mcp_servers={**started, **servers})
        except OptionError as exc:
            return ("error", "option", str(exc))
        return await self._control_or_defer("mcp_set_servers", {"servers": wire}, caller)

    def _history(self, function: str, args: list[Any], kwargs: dict[str, Any],
                 caller: Any) -> Any:
        """Run a history function where this session's CLI keeps its transcripts."""
        opts = self.options
        context = {"session_id": self.session_id, "cwd": opts.cwd,
                   "config_dir": _config_dir(opts.env)}
        otpy.spawn(_history_worker, self.adapter_config, self.prepared, function, list(args),
                   dict(kwargs), context, caller)
        return otpy.NoReply

    def _send_control(self, subtype: str, payload: dict[str, Any]) -> Ref:
        """Ask the adapter to send a control request to the CLI; its answer comes tagged."""
        assert self.adapter is not None
        ref = _make_ref()
        otpy.send(self.adapter, (ADAPTER_TAG, "control", ref, subtype, payload, self.pid))
        return ref

    def _control(self, subtype: str, payload: dict[str, Any], caller: Any) -> Any:
        self.controls[self._send_control(subtype, payload)] = caller
        return otpy.NoReply

    def _control_if_running(self, subtype: str, payload: dict[str, Any], caller: Any) -> Any:
        if self.adapter_state == "ready":
            return self._control(subtype, payload, caller)
        # Not running: the new setting is in the options the CLI will start with.
        return ("ok", None)

    async def _control_or_defer(self, subtype: str, payload: dict[str, Any], caller: Any) -> Any:
        if self.adapter_state == "ready":
            return self._control(subtype, payload, caller)
        self.deferred.append((subtype, payload, caller))
        if self.adapter_state == "none":
            await self._start_adapter()
        return otpy.NoReply

    def _internal_interrupt(self) -> None:
        if self.adapter is None or self.adapter_state != "ready" or self.interrupting:
            return
        self.interrupting = True
        self.internal_controls.add(self._send_control("interrupt", {}))

    def _health(self) -> Health:
        if self.adapter_state == "starting":
            return ("unhealthy", "provisioning")
        if self.adapter_state == "ready":
            return "healthy" if self.degraded is None else "degraded"
        if self.last_error is not None:
            return ("unhealthy", self.last_error)
        return "healthy"

    def _info(self) -> dict[str, Any]:
        return {
            "adapter": self.adapter_config.describe(),
            "adapter_pid": self.adapter,
            "state": self.adapter_state,
            "os_pid": self.info.get("os_pid"),
            "cli_path": self.info.get("cli_path"),
            "session_id": self.session_id,
            "cwd": self.options.cwd if self.options.cwd is not None else os.getcwd(),
            "queued": len(self.queue),
            "active": self.active is not None,
            "turns": self.turns,
            "model": self.options.model,
            "permission_mode": self.options.permission_mode,
            "last_error": self.last_error,
            "degraded": self.degraded,
        }

    # ------------------------------------------------------------ casts / info

    async def handle_cast(self, request: Any) -> None:
        logger.debug("session %r ignored cast %r", self.pid, request)

    async def handle_info(self, message: Any) -> None:
        t = type(message)
        if t is tuple and message and message[0] == ADAPTER_TAG:
            if message[1] != self.adapter or self.adapter is None:
                return  # from an adapter we stopped (clear): stale
            await self._from_adapter(message)
        elif t is Exit:
            if message.pid == self.adapter and self.adapter is not None:
                await self._adapter_down(message.reason)
        elif t is Down:
            if message.ref == self.owner_ref:
                raise otpy.Stop(otpy.Normal())
            gone = [r for r, sub in self.subscribers.items() if sub.monitor == message.ref]
            for ref in gone:
                del self.subscribers[ref]
            if not gone:
                self._consumer_down(message.ref)
        elif t is tuple and len(message) == 2 and message[0] == ABANDON_TAG:
            self._abandon(message[1])
        elif t is tuple and len(message) >= 3 and message[0] == INPUT_TAG:
            await self._input(message)
        elif t is tuple and len(message) == 2 and message[0] == UNSUBSCRIBE_TAG:
            self._unsubscribe(message[1])
        else:
            logger.debug("session %r ignored %r", self.pid, message)

    async def _from_adapter(self, message: tuple[Any, ...]) -> None:
        kind = message[2]
        if kind == "message":
            await self._message(message[3])
        elif kind == "ready":
            await self._ready(message[3])
        elif kind == "control_result":
            self._control_result(message[3], message[4], message[5])
        elif kind == "oversized":
            await self._oversized(message[3])
        elif kind == "stderr":
            self._stderr(message[3])

    async def _ready(self, info: dict[str, Any]) -> None:
        self.adapter_state = "ready"
        self.info = dict(info)
        self.last_error = None
        self.cli_cost = 0.0
        self.cli_live = True
        if telemetry.active:
            started = self.cli_started
            tel.cli_event(self, "start", {"duration": trio.current_time() - started
                                          if started is not None else 0.0},
                          os_pid=self.info.get("os_pid"))
        for caller in self.warm_waiters:
            _reply(caller, ("ok", dict(self.info)))
        self.warm_waiters = []
        deferred, self.deferred = self.deferred, []
        for subtype, payload, caller in deferred:
            self._control(subtype, payload, caller)
        await self._pump()

    async def _message(self, message: Message | dict[str, Any]) -> None:
        msg = message if isinstance(message, Message) else parse_message(message)
        sid = getattr(msg, "session_id", None)
        if isinstance(sid, str) and sid:
            if sid != self.session_id and self.adapter_config.resume_on_restart and \
                    self.options.name is not None:
                _last_session_ids[_name_key(self.options.name)] = sid
            self.session_id = sid
        if isinstance(msg, SystemMessage) and msg.subtype == "init" and msg.model:
            self.model = msg.model
        request = self._owner_of(msg)
        if request is None:
            if isinstance(msg, ResultMessage):
                self._account(msg, in_turn=False)  # a turn the CLI began by itself
            self._publish(msg, in_turn=False)
            return
        if not request.abandoned and not self._tell(request, "message", msg):
            # It cannot reach its consumer (on another node): that stream
            # fails, the turn is interrupted, the session goes on.
            self._forget(request)
            self._internal_interrupt()
        if self.subscribers:
            self._publish(msg, in_turn=True)
        if isinstance(msg, ResultMessage):
            self.turns += 1
            self.owner = None
            self._account(msg, in_turn=True)
            if not request.abandoned and not msg.is_error:
                self.degraded = None
            answered = msg.user_message_uuids
            if answered and any(u in request.sent for u in answered):
                request.pending.difference_update(answered)
            else:  # not attributed (an older CLI, a start-up failure): the oldest is answered
                request.pending.clear()
            if request.streaming and not request.abandoned and (
                    request.input_open or request.pending):
                if request.pending:
                    self._turn_start()  # the next prompt, already sent, is being answered
                return  # more turns of this request to come
            if request.streaming and not request.abandoned:
                otpy.send(request.consumer, (STREAM_TAG, request.ref, "end", None))
            self._end_turn()
            await self._pump()

    def _owner_of(self, msg: Message) -> _Request | None:
        """The query a message belongs to, or ``None`` for a message outside our turns."""
        request = self.active
        if isinstance(msg, CommandLifecycleMessage):
            self.lifecycle_seen = True
            if request is not None and msg.state == "started" and msg.command_uuid in \
                    request.sent:
                self.owner = request
            return None  # bookkeeping: it goes to the subscribers
        if self.owner is not None:
            return self.owner
        if request is None or not request.pending:
            return None
        if not self.lifecycle_seen or any(u in request.sent for u in _message_uuids(msg)):
            # A CLI that does not announce turns, or a message naming our prompt.
            self.owner = request
            return request
        return None

    def _stderr(self, line: Any) -> None:
        """One stderr line of the CLI: to the ``stderr`` callback and ``debug_stderr``."""
        text = line if isinstance(line, str) else str(line)
        callback = self.options.stderr
        if callback is not None:
            try:
                callback(text)
            except Exception:
                logger.exception("session %r: the stderr callback raised", self.pid)
        sink = self.options.debug_stderr
        if sink is not None:
            try:
                sink.write(text + "\n")
                flush = getattr(sink, "flush", None)
                if callable(flush):
                    flush()
            except Exception:
                logger.exception("session %r: writing to debug_stderr failed", self.pid)

    async def _input(self, message: tuple[Any, ...]) -> None:
        """A message from a streaming-input feeder."""
        ref, kind = message[1], message[2]
        request = self.active if self.active is not None and self.active.ref == ref else None
        if request is None:
            request = next((r for r in self.queue if r.ref == ref), None)
        if request is None or not request.streaming or not request.input_open \
                or request.abandoned:
            return  # abandoned or finished meanwhile
        if kind == "input":
            content, uid = message[3], message[4]
            if request is self.active and self.adapter_state == "ready":
                self._send_input(request, content, uid)
            else:
                request.inputs.append((content, uid))
        elif kind == "end":
            request.input_open = False
            if request is self.active and not request.pending and not request.inputs \
                    and self.owner is not request:
                if not request.abandoned:
                    otpy.send(request.consumer, (STREAM_TAG, request.ref, "end", None))
                self._end_turn()
                await self._pump()

    def _send_input(self, request: _Request, content: Any, uid: str) -> None:
        assert self.adapter is not None
        if self.turn_started is None:
            self._turn_start()
        request.pending.add(uid)
        request.sent.add(uid)
        otpy.send(self.adapter, (ADAPTER_TAG, "query", request.ref, content, uid))

    async def _oversized(self, info: dict[str, Any]) -> None:
        reason = LineTooLong(int(info["size"]), int(info["limit"]), bytes(info.get("head", b"")))
        self.degraded = reason
        request = self.owner if self.lifecycle_seen else self.active
        if request is None:
            logger.warning("session %r: %s (outside a turn)", self.pid, reason.describe())
            return
        if not request.abandoned:
            self._tell(request, "error", reason)
            self._forget(request)
        if info.get("maybe_result"):
            # That was the turn's result line: the turn is over.
            self._turn_exception(reason)
            self.turns += 1
            self._end_turn()
            await self._pump()
        else:
            # The caller is failed; end the turn instead of letting it run unseen.
            self._internal_interrupt()

    def _control_result(self, ref: Ref, status: str, value: Any) -> None:
        if ref in self.internal_controls:
            self.internal_controls.discard(ref)
            if status != "ok":
                logger.info("session %r: interrupt failed: %s", self.pid, value)
            return
        caller = self.controls.pop(ref, None)
        if caller is None:
            return
        if status == "ok":
            _reply(caller, ("ok", value))
        else:
            if status == "timeout":
                self.degraded = str(value)
            _reply(caller, ("error", "control", str(value)))

    # ------------------------------------------------------------ turns

    async def _pump(self) -> None:
        """Start the next queued query when nothing is running."""
        if self.active is not None or not self.queue:
            return
        if self.adapter_state == "none":
            await self._start_adapter()
            return
        if self.adapter_state != "ready":
            return
        request = self.queue.popleft()
        self.active = request
        self.interrupting = False
        if not request.streaming:
            self._send_input(request, request.content, str(uuid_mod.uuid4()))
            return
        inputs, request.inputs = request.inputs, []
        for content, uid in inputs:
            self._send_input(request, content, uid)
        if not request.input_open and not request.pending:
            if not request.abandoned:  # an empty input: nothing to answer
                otpy.send(request.consumer, (STREAM_TAG, request.ref, "end", None))
            self._end_turn()
            await self._pump()

    def _tell(self, request: _Request, kind: str, payload: Any) -> bool:
        """Send one of the turn's messages (or its error) to the request's consumer.

        A consumer on another node needs the payload encoded: a payload that
        cannot be (``otpy.ETFEncodeError``) fails that stream with
        `otpy.Unencodable` instead, and never the session. Returns whether the
        payload itself was sent.
        """
        try:
            otpy.send(request.consumer, (STREAM_TAG, request.ref, kind, payload))
            return True
        except otpy.ETFEncodeError as exc:
            logger.warning("session %r: a %s for %r cannot be sent to its node: %s",
                           self.pid, kind, request.consumer, exc)
            reason = otpy.Unencodable(f"a {type(payload).__name__}: {exc}")
            otpy.send(request.consumer, (STREAM_TAG, request.ref, "error", reason))
            return False

    def _end_turn(self) -> None:
        request = self.active
        self.active = None
        self.owner = None
        self.interrupting = False
        if request is not None:
            self._forget(request)

    def _forget(self, request: _Request) -> None:
        """Stop sending to the request's consumer and stop watching it."""
        request.abandoned = True
        request.input_open = False
        request.inputs.clear()
        if request.monitor is not None:
            otpy.demonitor(request.monitor, flush=True)
            request.monitor = None

    def _abandon(self, ref: Ref) -> None:
        request = self.active
        if request is not None and request.ref == ref:
            if not request.abandoned:
                self._forget(request)
                self._internal_interrupt()
            return
        for queued in self.queue:
            if queued.ref == ref:
                self._forget(queued)
                self.queue.remove(queued)
                return

    def _consumer_down(self, monitor: Ref) -> None:
        request = self.active
        if request is not None and request.monitor == monitor:
            request.monitor = None
            self._abandon(request.ref)
            return
        for queued in self.queue:
            if queued.monitor == monitor:
                queued.monitor = None
                self._abandon(queued.ref)
                return

    # ------------------------------------------------------------ the adapter

    async def _start_adapter(self) -> None:
        self.adapter_state = "starting"
        self.cli_started = trio.current_time()
        self.owner = None
        self.lifecycle_seen = False
        try:
            self.adapter = await self.adapter_config.start(self.pid, self.options, self.prepared)
            # Live stderr lines, if the options want them (the adapter holds the
            # first lines until it knows).
            wanted = self.options.stderr is not None or self.options.debug_stderr is not None
            otpy.send(self.adapter, (ADAPTER_TAG, "stderr", self.pid if wanted else None))
        except Exception as exc:
            logger.error("session %r: the adapter failed to start: %r", self.pid, exc, extra={
                "otpy_report": "adapter_start_failed", "otpy_session": self.pid,
                "otpy_name": self.options.name, "otpy_reason": exc})
            self.adapter = None
            self.adapter_state = "none"
            self.last_error = AdapterFailed(f"{type(exc).__name__}: {exc}")
            self._fail_all(self.last_error)

    async def _adapter_down(self, reason: ExitReason) -> None:
        was_ready = self.adapter_state == "ready"
        self._cli_exit(reason, self.info.get("os_pid"))
        self.adapter = None
        self.adapter_state = "none"
        self.info = {}
        self.last_error = reason
        fields = {"otpy_session": self.pid, "otpy_name": self.options.name,
                  "otpy_reason": reason}
        if was_ready or self.active is not None:
            logger.warning("session %r lost its CLI: %s", self.pid, describe_reason(reason),
                           extra={"otpy_report": "cli_lost", **fields})
        else:
            logger.error("session %r: the CLI failed to start: %s", self.pid,
                         describe_reason(reason),
                         extra={"otpy_report": "cli_start_failed", **fields})
        self._fail_all(reason)
        if was_ready:
            # The conversation is gone with the CLI: exit with the typed reason
            # so a supervisor restarts the session with fresh state.
            raise otpy.Stop(reason)

    def _fail_all(self, reason: ExitReason) -> None:
        """Fail the active and queued streams and every waiting caller."""
        requests = ([self.active] if self.active is not None else []) + list(self.queue)
        self._turn_exception(reason)
        self.active = None
        self.owner = None
        self.queue.clear()
        self.interrupting = False
        for request in requests:
            if not request.abandoned:
                self._tell(request, "error", reason)
            self._forget(request)
        failure = ("error", "down", reason)
        for caller in self.controls.values():
            _reply(caller, failure)
        self.controls = {}
        self.internal_controls = set()
        for _, _, caller in self.deferred:
            _reply(caller, failure)
        self.deferred = []
        for caller in self.warm_waiters:
            _reply(caller, failure)
        self.warm_waiters = []

    async def _stop_adapter(self) -> None:
        """Stop the adapter process (it shuts the CLI down) and wait, bounded."""
        pid = self.adapter
        self._cli_exit(otpy.Shutdown(), self.info.get("os_pid"))
        self.adapter = None
        self.adapter_state = "none"
        self.info = {}
        if pid is None:
            return
        otpy.unlink(pid)
        ref = otpy.monitor(pid)
        otpy.exit(pid, otpy.Shutdown())
        bound = self.adapter_config.shutdown_bound + 1.0

        def is_down(m: Any) -> bool:
            return type(m) is Down and m.ref == ref

        try:
            await otpy.receive(is_down, timeout=bound)
        except otpy.Timeout:
            otpy.exit(pid, otpy.Kill())
            await otpy.receive(is_down)

    async def _clear(self) -> None:
        await self._stop_adapter()
        self._fail_all(_CLEARED)
        self.session_id = None
        self.last_error = None
        self.degraded = None
        self.options = self.options.merge(
            resume=None, fork_session=False, continue_conversation=False, session_id=None,
            resume_session_at=None, resume_drops_turn=None,
        )

    async def terminate(self, reason: ExitReason) -> None:
        self._fail_all(reason)
        self.adapter_config.release(self.prepared)
        await self._stop_adapter()


# ---------------------------------------------------------------- public API


async def _started(opts: Options, prepared: Any, starting: Awaitable[Pid]) -> Pid:
    """Await a session's start; if it fails, the adapter gets back what it reserved."""
    try:
        return await starting
    except BaseException:
        _default_adapter(opts).release(prepared)
        raise


async def start_link(**options: Any) -> Pid:
    """Start a session linked to the caller. The CLI starts on the first query.

    Args:
        **options: session options (see ``claudecode._options.Options``):
            ``name``, ``model``, ``system_prompt``, ``cwd``, ``resume``,
            ``fork_session``, ``env``, ``api_key``, ``cli_path``, ``timeout``,
            ``include_partial_messages``, ``adapter``...

    Returns:
        The session's pid (also registered under ``name`` when given).

    Raises:
        OptionError: an unknown option or an invalid value, naming it.
        CLINotFoundError: no CLI executable (run ``claudecode install-cli``).
        StartError: the name is taken (``reason`` holds ``already_started``).
    """
    opts, prepared = await aprepare(options)
    return await _started(opts, prepared, Session.start_link(opts, prepared, name=opts.name))


async def start(**options: Any) -> Pid:
    """Like :func:`start_link`, without the link.

    Args:
        **options: session options.

    Returns:
        The session's pid.
    """
    opts, prepared = await aprepare(options)
    return await _started(opts, prepared, Session.start(opts, prepared, name=opts.name))


async def start_owned(owner: Pid, **options: Any) -> Pid:
    """Start an unlinked session that stops when ``owner`` exits (for ``query``).

    Args:
        owner: the process whose exit stops the session.
        **options: session options.

    Returns:
        The session's pid.
    """
    opts, prepared = await aprepare(options)
    return await _started(opts, prepared, Session.start(opts, prepared, owner, name=opts.name))


def child_spec(options: dict[str, Any], *, id: Any = None, restart: str = "permanent",
               shutdown: float | str = 5.0) -> ChildSpec:
    """A child spec that runs a session under an ``otpy.Supervisor``.

    The options are validated (and the CLI looked up) now, so a bad config
    fails here and not on the supervisor's first start.

    Args:
        options: the session options (include ``name`` to reach it by name).
        id: the child id (default: the name).
        restart: "permanent", "transient" or "temporary".
        shutdown: seconds allowed for a clean stop (the CLI is shut down too).

    Returns:
        The spec.
    """
    opts, _ = prepare(options)
    child_id = id if id is not None else opts.name
    if child_id is None:
        raise ValueError("a supervised session needs a name or an explicit id")
    return ChildSpec(
        id=child_id,
        start=(start_link, (), dict(options)),
        restart=restart,  # type: ignore[arg-type]
        shutdown=shutdown,
        type="worker",
        modules=["claudecode.Session"],
    )


def _unwrap(reply: Any, what: str) -> Any:
    if type(reply) is tuple and reply and reply[0] == "ok":
        return reply[1]
    if type(reply) is tuple and len(reply) == 3 and reply[0] == "error":
        _, kind, detail = reply
        if kind == "down":
            raise SessionError(f"{what} failed: {describe_reason(detail)}", detail)
        raise SessionError(f"{what} failed: {detail}")
    raise SessionError(f"{what}: unexpected reply {reply!r}")


async def get_session_id(session: Any, timeout: float | None = 5.0) -> str | None:
    """The conversation's session id (``None`` before the first turn, unless resuming).

    Args:
        session: a pid or a name.
        timeout: call timeout in seconds.

    Returns:
        The id.
    """
    return await otpy.call(session, ("get_session_id",), timeout)  # type: ignore[no-any-return]


async def health(session: Any, timeout: float | None = 5.0) -> Health:
    """The session's health.

    ``"healthy"``: the CLI is up (or not started yet: it starts on demand).
    ``"degraded"``: the CLI is up but the last turn lost a line over
    ``max_buffer_size`` or a control request timed out (cleared by the next
    successful turn). ``("unhealthy", "provisioning")``: the CLI is starting.
    ``("unhealthy", reason)``: the last start failed with ``reason`` (typed,
    e.g. :class:`~claudecode._errors.CLIExited`).

    Args:
        session: a pid or a name.
        timeout: call timeout in seconds.

    Returns:
        The health value.
    """
    return await otpy.call(session, ("health",), timeout)  # type: ignore[no-any-return]


async def alive(session: Any, timeout: float | None = 5.0) -> bool:
    """Whether the session process exists and answers.

    Args:
        session: a pid or a name.
        timeout: seconds to wait for an answer (remote sessions).

    Returns:
        True or False; never raises for a dead or unknown session.
    """
    if isinstance(session, Pid):
        try:
            if otpy.is_alive(session):
                return True
        except RuntimeError:
            return False
    try:
        await otpy.call(session, ("health",), timeout)
    except (otpy.CallError, LookupError, TypeError):
        return False
    return True


async def adapter_info(session: Any, timeout: float | None = 5.0) -> dict[str, Any]:
    """What the session knows about its adapter and CLI.

    Args:
        session: a pid or a name.
        timeout: call timeout in seconds.

    Returns:
        A dict: ``adapter``, ``adapter_pid``, ``state`` ("none" | "starting" |
        "ready"), ``os_pid`` (the CLI's process id when running),
        ``cli_path``, ``session_id``, ``cwd``, ``queued``, ``active``, ``turns``,
        ``model``, ``permission_mode``, ``last_error``, ``degraded``.
    """
    return await otpy.call(session, ("info",), timeout)  # type: ignore[no-any-return]


async def prewarm(session: Any, timeout: float | None = 60.0) -> dict[str, Any]:
    """Start the session's CLI now instead of on the first query, and wait until it is up.

    Args:
        session: a pid or a name.
        timeout: seconds to wait.

    Returns:
        The adapter's ready info (``os_pid``, ``cli_path``, ``initialize``).

    Raises:
        SessionError: the CLI failed to start (``.reason`` is typed, e.g.
            :class:`~claudecode._errors.CLIExited` with the stderr tail).
    """
    return _unwrap(await otpy.call(session, ("warm",), timeout), "prewarm")  # type: ignore[no-any-return]


async def interrupt(session: Any, timeout: float | None = 65.0) -> dict[str, Any] | None:
    """Interrupt the running turn (its stream ends with an error ``ResultMessage``).

    Args:
        session: a pid or a name.
        timeout: call timeout in seconds.

    Returns:
        The CLI's answer, or ``None`` when no turn was running.

    Raises:
        SessionError: the CLI refused or did not answer in time.
    """
    return _unwrap(await otpy.call(session, ("interrupt",), timeout), "interrupt")  # type: ignore[no-any-return]


async def set_model(session: Any, model: str, timeout: float | None = 65.0) -> None:
    """Switch the model for the following turns (kept across ``clear``).

    Args:
        session: a pid or a name.
        model: the model name or alias.
        timeout: call timeout in seconds.

    Raises:
        SessionError: the CLI refused.
    """
    _unwrap(await otpy.call(session, ("set_model", model), timeout), "set_model")


async def set_permission_mode(session: Any, mode: str, timeout: float | None = 65.0) -> None:
    """Switch the permission mode (``"default"``, ``"acceptEdits"``/``"accept_edits"``,
    ``"plan"``, ``"bypassPermissions"``, ``"dontAsk"``...).

    Args:
        session: a pid or a name.
        mode: the mode (CLI or snake_case spelling).
        timeout: call timeout in seconds.

    Raises:
        SessionError: the CLI refused.
        InvalidOptionError: not a known mode (raised by the session, as a call error).
    """
    normalize_permission_mode(mode)  # fail here, not inside the session
    _unwrap(await otpy.call(session, ("set_permission_mode", mode), timeout),
            "set_permission_mode")


async def send_control_request(session: Any, subtype: str, payload: dict[str, Any] | None = None,
                               timeout: float | None = 65.0) -> dict[str, Any]:
    """Send any host → CLI control request (``mcp_status``, ``get_context_usage``...).

    Starts the CLI if it is not running yet.

    Args:
        session: a pid or a name.
        subtype: the request's subtype.
        payload: its other fields.
        timeout: call timeout in seconds.

    Returns:
        The CLI's answer.

    Raises:
        SessionError: the CLI answered with an error (e.g. an unsupported subtype).
    """
    reply = await otpy.call(session, ("control", subtype, dict(payload or {})), timeout)
    return _unwrap(reply, subtype)  # type: ignore[no-any-return]


async def clear(session: Any, timeout: float | None = 30.0) -> None:
    """Start a fresh conversation: stop the CLI, forget the session id and any
    ``resume``/``fork_session``; the next query starts a new CLI.

    Streams still running or queued fail with ``StreamError(Shutdown("session cleared"))``.

    Args:
        session: a pid or a name.
        timeout: call timeout in seconds.
    """
    _unwrap(await otpy.call(session, ("clear",), timeout), "clear")


async def stop(session: Any, reason: Any = None, timeout: float | None = 30.0) -> None:
    """Stop the session and its CLI, and wait until both are gone.

    Args:
        session: a pid or a name.
        reason: the exit reason (default ``otpy.Normal()``).
        timeout: seconds to wait.

    Raises:
        CallError: no such session (``NoProc``) or it did not stop in time.
    """
    await otpy.stop(session, otpy.Normal() if reason is None else reason, timeout)

