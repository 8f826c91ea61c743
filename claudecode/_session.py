"""The session: one Claude conversation as an otpy GenServer.

A session owns its options, its adapter process (started lazily on the first
query and then kept warm) and a FIFO of queries: one turn runs at a time,
later queries wait. It captures the conversation's session id from the CLI's
messages, forwards each turn's messages to the process consuming the stream,
and watches that consumer: a consumer that dies, closes its stream early or
times out *abandons* the turn, and the session interrupts the CLI.

Hibernation and CLI budgets: with ``cli_idle_timeout`` the session stops an
idle CLI after that many seconds and keeps the conversation (the CLI stores it
under its config directory); the next query starts a CLI with ``--resume`` of
the same session id, so the caller sees one more turn of the same
conversation. With a ``cli_budget`` (a `claudecode.CLIBudget`, or the budget
of a sandbox started with ``--max-clis``) the session takes a CLI slot before
it starts a CLI, tells the budget when its CLI becomes idle or busy, and
hibernates when the budget asks (it needs the slot for another session). A
query that waits for a slot longer than its timeout fails with
``StreamError(CLISlotTimeout(...))``; its consumer is told it is waiting
(``(STREAM_TAG, ref, "waiting", seconds)``) so it does not time out first.

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

import contextlib
import json
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
from claudecode._budget import BUDGET_TAG
from claudecode._errors import (
    AdapterFailed,
    CLIExited,
    CLISlotTimeout,
    LineTooLong,
    SessionError,
    describe_reason,
)
from claudecode._messages import (
    BackgroundTasksChangedMessage,
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
from claudecode.adapters._port import Launch, Port
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
"""``"healthy"``, ``"degraded"``, ``"hibernated"`` or ``("unhealthy", reason)``."""

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
    queued_at: float = 0.0
    timeout: float | None = None  # how long it may wait for a CLI slot
    told_waiting: bool = False


@attrs.define(eq=False)
class _Slot:
    """A CLI slot the session wants (or holds) from one budget."""

    budget: Any  # as configured (pid or name)
    token: Ref | None = None
    pid: Pid | None = None  # the budget's pid, from its answer
    monitor: Ref | None = None
    granted: bool = False
    limit: int | None = None


@attrs.define(eq=False, slots=True)
class _Life:
    """The CLI's life in a session: budgets and slots, hibernation, counts.

    One slotted object instead of fifteen attributes of the session keeps a
    session small (an instance dict with many keys is several times larger).
    """

    budgets: list[Any]  # the budgets a CLI needs a slot of (pids or names)
    slots: list[_Slot] = attrs.Factory(list)
    rest_state: str = "none"  # the state to return to when a start fails
    resume_id: str | None = None  # the conversation the next CLI resumes
    cli_results: int = 0  # results from the current CLI
    cli_own_turn: bool = False  # the CLI runs a turn of its own
    bg_tasks: bool = False  # the CLI has background tasks running
    idle_since: float | None = None
    stopping: tuple[Pid, Ref] | None = None  # the adapter of a hibernation
    stopping_deadline: float | None = None
    adopted: bool = False  # the adapter is a budget's spare, not ready yet
    cli_starts: int = 0
    hibernations: int = 0
    resumes: int = 0
    spares_adopted: int = 0


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


def _spare_offer(adapter: Adapter, options: Options, prepared: Any) -> Any:
    """``(key, port, options, cli)`` when a budget's spare CLI could serve this
    start (a new conversation, a local CLI, no callbacks), else ``None``.

    The key is everything the CLI is started with: a spare started from the
    same options is the same CLI this session would start."""
    from claudecode._options import is_sdk_mcp_server

    if type(adapter) is not Port or not isinstance(prepared, str):
        return None
    if options.resume is not None or options.continue_conversation or \
            options.session_id is not None or options.can_use_tool is not None or \
            options.hooks or any(is_sdk_mcp_server(v) for v in (options.mcp_servers or {})
                                 .values()):
        return None
    launch = Launch.local(options, prepared, adapter.callback_timeout)
    try:
        init = json.dumps(launch.handler.initialize_payload(), sort_keys=True)
    except (TypeError, ValueError):
        return None
    key = (adapter, launch.cli, tuple(launch.args), tuple(sorted(launch.env.items())),
           launch.cwd, launch.max_buffer_size, launch.control_timeout, launch.user, init)
    return (key, adapter, options, prepared)


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
    backlog: deque[Message] | None
    backlog_dropped: int
    life: _Life
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
        self.backlog = None  # created when first needed (an empty deque is ~600 bytes)
        self.backlog_dropped = 0
        self.life = _Life([b for b in (options.cli_budget,
                                       self.adapter_config.cli_budget(prepared))
                           if b is not None])
        self.idle_timeout = None  # set after each message: the session's next deadline
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
        value = await self._handle_call(request, caller)
        self._after()
        return value

    async def _handle_call(self, request: Any, caller: Any) -> Any:
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
            await self._need_cli()
            return otpy.NoReply
        logger.warning("session %r: unknown request %r", self.pid, request)
        return ("error", "request", f"unknown session request {request!r}")

    async def _query(self, ref: Ref, content: Any, consumer: Pid,
                     extra: dict[str, Any]) -> Any:
        if extra.get("streaming"):
            request = _Request(ref, None, consumer, otpy.monitor(consumer), streaming=True,
                               input_open=True)
            self._enqueue(request, extra)
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
        self._enqueue(request, extra)
        await self._pump()
        return ("ok", self.pid, self.options.timeout)

    def _enqueue(self, request: _Request, extra: dict[str, Any]) -> None:
        timeout = extra.get("timeout", self.options.timeout)
        request.timeout = float(timeout) if isinstance(timeout, int | float) and \
            not isinstance(timeout, bool) and timeout > 0 else None
        request.queued_at = trio.current_time()
        self.queue.append(request)
        if self.adapter_state == "waiting" and any(s.limit is not None for s in self.life.slots):
            self._tell_waiting(request)

    def _subscribe(self, ref: Ref, pid: Pid, include_turns: bool) -> Any:
        self.subscribers[ref] = _Subscriber(pid, otpy.monitor(pid), include_turns)
        backlog, self.backlog = self.backlog or (), None
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
            backlog = self.backlog
            if backlog is None:
                backlog = self.backlog = deque()
            if len(backlog) >= BACKLOG_SIZE:
                backlog.popleft()
                self.backlog_dropped += 1
            backlog.append(msg)

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
        await self._need_cli()
        return otpy.NoReply

    def _internal_interrupt(self) -> None:
        if self.adapter is None or self.adapter_state != "ready" or self.interrupting:
            return
        self.interrupting = True
        self.internal_controls.add(self._send_control("interrupt", {}))

    def _health(self) -> Health:
        state = self.adapter_state
        if state == "starting" or state == "waiting":
            return ("unhealthy", "provisioning")
        if state == "ready":
            return "healthy" if self.degraded is None else "degraded"
        if self.last_error is not None:
            return ("unhealthy", self.last_error)
        if state == "hibernated" or state == "hibernating":
            return "hibernated"
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
            "cli_starts": self.life.cli_starts,
            "hibernations": self.life.hibernations,
            "resumes": self.life.resumes,
            "spares_adopted": self.life.spares_adopted,
            "cli_budgets": [s.pid if s.pid is not None else s.budget for s in self.life.slots]
            or list(self.life.budgets),
        }

    # ------------------------------------------------------------ casts / info

    async def handle_cast(self, request: Any) -> None:
        logger.debug("session %r ignored cast %r", self.pid, request)

    async def handle_timeout(self) -> None:
        await self._on_timer()
        self._after()

    async def handle_info(self, message: Any) -> None:
        await self._handle_info(message)
        self._after()

    async def _handle_info(self, message: Any) -> None:
        t = type(message)
        if t is tuple and message and message[0] == ADAPTER_TAG:
            if message[1] != self.adapter or self.adapter is None:
                return  # from an adapter we stopped (clear, hibernation): stale
            await self._from_adapter(message)
        elif t is Exit:
            if message.pid == self.adapter and self.adapter is not None:
                await self._adapter_down(message.reason)
        elif t is tuple and len(message) >= 4 and message[0] == BUDGET_TAG:
            await self._from_budget(message)
        elif t is Down:
            if message.ref == self.owner_ref:
                raise otpy.Stop(otpy.Normal())
            if self.life.stopping is not None and message.ref == self.life.stopping[1]:
                await self._stopped(message.reason)
                return
            if any(s.monitor == message.ref for s in self.life.slots):
                self._budget_down(message.reason)
                return
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
        self.life.adopted = False
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
        if type(msg) is BackgroundTasksChangedMessage:
            self.life.bg_tasks = bool(msg.tasks)
        if isinstance(msg, SystemMessage) and msg.subtype == "init" and msg.model:
            self.model = msg.model
        request = self._owner_of(msg)
        if request is None:
            self._outside_turn(msg)
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
            self.life.cli_results += 1
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

    def _outside_turn(self, msg: Message) -> None:
        """Note what the CLI does on its own: a turn of its own or background
        tasks keep its CLI from hibernating (stopping it would end them)."""
        if isinstance(msg, CommandLifecycleMessage):
            active = self.active
            if msg.state == "started" and (active is None or msg.command_uuid not in active.sent):
                self.life.cli_own_turn = True
        elif isinstance(msg, ResultMessage):
            self.life.cli_own_turn = False
            self.life.cli_results += 1

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
        if self.adapter_state != "ready":
            await self._need_cli()
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

    # ------------------------------------------------------------ the CLI's life

    def _wants_cli(self) -> bool:
        """Whether anyone waits for the CLI (a query, a control request, prewarm)."""
        return bool(self.queue or self.deferred or self.warm_waiters)

    async def _need_cli(self) -> None:
        """Someone needs the CLI: start one, after taking a slot of every budget."""
        state = self.adapter_state
        if state != "none" and state != "hibernated":
            return  # starting, waiting, ready — or hibernating: it wakes when stopped
        self.life.rest_state = state
        if not self.life.budgets:
            await self._start_adapter()
            return
        self.adapter_state = "waiting"
        self.life.slots = [_Slot(b) for b in self.life.budgets]
        await self._acquire_next()

    async def _acquire_next(self) -> None:
        """Ask the next budget for a slot (one at a time, in order: no deadlock
        between budgets); once every slot is granted, start the CLI."""
        for slot in self.life.slots:
            if slot.granted:
                continue
            if slot.token is None:
                slot.token = _make_ref()
                slot.monitor = otpy.monitor(slot.budget)
                offer = self._spare_offer(slot.budget) if len(self.life.slots) == 1 else None
                with contextlib.suppress(otpy.NotRegisteredError):  # the monitor says NoProc
                    otpy.send(slot.budget, (BUDGET_TAG, "acquire", slot.token, self.pid, offer))
            return
        await self._start_adapter()

    def _spare_offer(self, budget: Any) -> Any:
        """What a local budget needs to adopt a spare for this start, if possible."""
        if self.life.resume_id is not None:
            return None
        node = current().node
        try:
            pid = node.resolve(budget)
        except (LookupError, TypeError):
            return None
        if pid is None or node.is_remote(pid):
            return None  # options hold objects that do not cross nodes
        return _spare_offer(self.adapter_config, self.options, self.prepared)

    async def _from_budget(self, message: tuple[Any, ...]) -> None:
        budget, kind, token = message[1], message[2], message[3]
        slot = next((s for s in self.life.slots if s.token == token), None)
        if kind == "grant":
            spare = message[4] if len(message) > 4 else None
            if slot is None or slot.granted or self.adapter_state != "waiting":
                # Not wanted any more (cancelled meanwhile): give it back.
                otpy.send(budget, (BUDGET_TAG, "cancel", token))
                if spare is not None:
                    otpy.send(spare, (ADAPTER_TAG, "discard"))
                return
            slot.granted = True
            slot.pid = budget
            if spare is not None:
                self._adopt(spare)
            else:
                await self._acquire_next()
        elif kind == "queued":
            if slot is not None and not slot.granted:
                slot.pid = budget
                slot.limit = message[4] if len(message) > 4 else None
                for request in self.queue:
                    self._tell_waiting(request)
        elif kind == "hibernate" and slot is not None and slot.granted and \
                self.adapter_state == "ready" and self.life.idle_since is not None and \
                self._hibernatable():
            self._hibernate("budget")

    def _tell_waiting(self, request: _Request) -> None:
        """Tell a consumer its query waits for a CLI slot (and for how long at most),
        so that its own timeout does not fire before the typed error."""
        if request.told_waiting or request.abandoned:
            return
        request.told_waiting = True
        left = None if request.timeout is None else \
            max(0.0, request.queued_at + request.timeout - trio.current_time())
        otpy.send(request.consumer, (STREAM_TAG, request.ref, "waiting", left))

    def _budget_down(self, reason: ExitReason) -> None:
        """A budget we take slots from is gone."""
        waiting = self.adapter_state == "waiting"
        self._drop_slots()
        logger.warning("session %r: its CLI budget is gone: %s", self.pid,
                       describe_reason(reason))
        if waiting:  # no slot will come: the waiting callers get the budget's reason
            self.adapter_state = self.life.rest_state
            self._fail_all(reason)

    def _drop_slots(self) -> None:
        """Forget the slots: each budget gets a cancel (a slot whose adapter claimed
        it stays taken until that adapter has exited)."""
        slots, self.life.slots = self.life.slots, []
        for slot in slots:
            if slot.monitor is not None:
                otpy.demonitor(slot.monitor, flush=True)
            if slot.token is not None:
                with contextlib.suppress(otpy.NotRegisteredError):
                    otpy.send(slot.pid if slot.pid is not None else slot.budget,
                              (BUDGET_TAG, "cancel", slot.token))

    def _tell_budgets(self, kind: str) -> None:
        for slot in self.life.slots:
            if slot.granted and slot.token is not None:
                otpy.send(slot.pid if slot.pid is not None else slot.budget,
                          (BUDGET_TAG, kind, slot.token))

    def _hibernatable(self) -> bool:
        # Without persistence the CLI keeps the only copy of the conversation.
        return not self.options.no_session_persistence

    def _launch_options(self) -> Options:
        """The options the next CLI starts with: after a hibernation, a resume of
        the conversation (``--resume`` of its id, never a second fork)."""
        if self.life.resume_id is None:
            return self.options
        return self.options.merge(
            resume=self.life.resume_id, fork_session=False, continue_conversation=False,
            session_id=None, resume_session_at=None, resume_drops_turn=None)

    def _fresh_cli(self, how: str) -> None:
        """A CLI is starting for this session (``how``: "cold", "resume" or "spare")."""
        self.adapter_state = "starting"
        self.cli_started = trio.current_time()
        self.owner = None
        self.lifecycle_seen = False
        self.life.cli_results = 0
        self.life.cli_own_turn = False
        self.life.bg_tasks = False
        self.life.cli_starts += 1
        if how == "resume":
            self.life.resumes += 1
        elif how == "spare":
            self.life.spares_adopted += 1
        # The one place a session's CLI starts; ("claudecode", "cli", "start")
        # is emitted when it is up (`_ready`), timed from `cli_started`.

    def _send_stderr_wish(self) -> None:
        # Live stderr lines, if the options want them (the adapter holds the
        # first lines until it knows).
        assert self.adapter is not None
        wanted = self.options.stderr is not None or self.options.debug_stderr is not None
        otpy.send(self.adapter, (ADAPTER_TAG, "stderr", self.pid if wanted else None))

    async def _start_adapter(self) -> None:
        self._fresh_cli("resume" if self.life.resume_id is not None else "cold")
        gates = tuple((s.pid, s.token) for s in self.life.slots if s.granted)
        try:
            options = self._launch_options()
            if gates:
                self.adapter = await self.adapter_config.start(  # type: ignore[call-arg]
                    self.pid, options, self.prepared, gates=gates)
            else:
                self.adapter = await self.adapter_config.start(self.pid, options, self.prepared)
            self._send_stderr_wish()
        except Exception as exc:
            logger.error("session %r: the adapter failed to start: %r", self.pid, exc, extra={
                "otpy_report": "adapter_start_failed", "otpy_session": self.pid,
                "otpy_name": self.options.name, "otpy_reason": exc})
            self.adapter = None
            self.adapter_state = self.life.rest_state
            self._drop_slots()
            self.last_error = AdapterFailed(f"{type(exc).__name__}: {exc}")
            self._fail_all(self.last_error)

    def _adopt(self, spare: Pid) -> None:
        """Take a budget's spare CLI (started ahead with these very options)."""
        self._fresh_cli("spare")
        self.life.adopted = True
        self.adapter = spare
        otpy.link(spare)  # a spare gone already reports NoProc through the link
        self._send_stderr_wish()

    async def _adapter_down(self, reason: ExitReason) -> None:
        was_ready = self.adapter_state == "ready"
        adopted = self.life.adopted
        self._cli_exit(reason, self.info.get("os_pid"))
        self.adapter = None
        self.life.adopted = False
        self.adapter_state = self.life.rest_state
        self.info = {}
        self._drop_slots()
        if adopted and not was_ready:
            # A spare that died before it was ours: start a CLI of our own.
            logger.info("session %r: the spare CLI it adopted is gone (%s); starting one",
                        self.pid, describe_reason(reason))
            if self._wants_cli():
                await self._need_cli()
            return
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

    def _hibernate(self, why: str) -> None:
        """Stop the idle CLI and keep the conversation: the next CLI resumes it.

        The adapter's exit arrives as a ``Down``; queries that come meanwhile
        wait, then start the next CLI (`_stopped`)."""
        pid = self.adapter
        assert pid is not None
        if self.life.cli_results and self.session_id is not None:
            self.life.resume_id = self.session_id  # else: nothing new to resume
        # The one place a session stops its CLI and keeps the conversation.
        os_pid = self.info.get("os_pid")
        tel.cli_event(self, "hibernate", os_pid=os_pid, why=why)
        self._cli_exit(otpy.Shutdown(), os_pid)
        self.adapter = None
        self.adapter_state = "hibernating"
        self.info = {}
        self.life.idle_since = None
        self._drop_slots()  # each budget frees the slot once the adapter has exited
        otpy.unlink(pid)
        self.life.stopping = (pid, otpy.monitor(pid))
        self.life.stopping_deadline = trio.current_time() + self.adapter_config.shutdown_bound + 1.0
        otpy.exit(pid, otpy.Shutdown())
        self.life.hibernations += 1
        logger.debug("session %r hibernates (%s), conversation %s", self.pid, why,
                     self.life.resume_id)

    async def _stopped(self, reason: ExitReason) -> None:
        """The hibernating CLI is gone (``reason``: `CLIExited` if something else
        killed it meanwhile; the conversation is on disk all the same)."""
        self.life.stopping = None
        self.life.stopping_deadline = None
        if isinstance(reason, CLIExited):
            logger.warning("session %r: its CLI ended while hibernating: %s", self.pid,
                           describe_reason(reason))
            self.last_error = reason  # health says so until a CLI is up again
        if self.adapter_state == "hibernating":
            self.adapter_state = "hibernated"
            if self._wants_cli():
                await self._need_cli()

    async def _on_timer(self) -> None:
        """A deadline passed: a stop that takes too long, a query waiting too long
        for a CLI slot, or the CLI's idle timeout."""
        now = trio.current_time()
        if self.life.stopping is not None and self.life.stopping_deadline is not None and \
                now >= self.life.stopping_deadline:
            self.life.stopping_deadline = None
            otpy.exit(self.life.stopping[0], otpy.Kill())
        if self.adapter_state == "waiting":
            limit = next((s.limit for s in self.life.slots if s.limit is not None), None)
            for request in [r for r in self.queue
                            if r.timeout is not None and now >= r.queued_at + r.timeout]:
                self.queue.remove(request)
                if not request.abandoned:
                    self._tell(request, "error", CLISlotTimeout(now - request.queued_at, limit))
                self._forget(request)
        timeout = self.options.cli_idle_timeout
        if self.life.idle_since is not None and timeout is not None and \
                now >= self.life.idle_since + timeout and self._hibernatable():
            self._hibernate("idle")

    def _after(self) -> None:
        """After every message: report idle/busy changes to the budgets, give up a
        slot nobody needs any more, and arm the next deadline."""
        life = self.life
        state = self.adapter_state
        if state == "ready":
            idle = (self.active is None and not self.queue and not self.controls
                    and not self.internal_controls and not self.deferred
                    and not self.warm_waiters and not life.cli_own_turn and not life.bg_tasks)
            if idle:
                if life.idle_since is None:
                    life.idle_since = trio.current_time()
                    if life.slots and self._hibernatable():
                        self._tell_budgets("idle")
            elif life.idle_since is not None:
                life.idle_since = None
                if life.slots and self._hibernatable():
                    self._tell_budgets("busy")
        else:
            life.idle_since = None
            if state == "waiting" and not self._wants_cli():
                self._drop_slots()
                self.adapter_state = life.rest_state
        when: float | None = None
        timeout = self.options.cli_idle_timeout
        if life.idle_since is not None and timeout is not None and self._hibernatable():
            when = life.idle_since + timeout
        if self.adapter_state == "waiting":
            for request in self.queue:
                if request.timeout is not None:
                    due = request.queued_at + request.timeout
                    when = due if when is None else min(when, due)
        if life.stopping_deadline is not None:
            due = life.stopping_deadline
            when = due if when is None else min(when, due)
        self.idle_timeout = None if when is None else max(0.0, when - trio.current_time())

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
        """Stop the adapter process (it shuts the CLI down) — and one still
        hibernating — and wait, bounded; give the budgets' slots back."""
        pid = self.adapter
        self._cli_exit(otpy.Shutdown(), self.info.get("os_pid"))
        self.adapter = None
        self.adapter_state = "none"
        self.info = {}
        self.life.idle_since = None
        waits: list[tuple[Pid, Ref]] = []
        if pid is not None:
            otpy.unlink(pid)
            waits.append((pid, otpy.monitor(pid)))
            otpy.exit(pid, otpy.Shutdown())
        if self.life.stopping is not None:
            waits.append(self.life.stopping)
            self.life.stopping = None
            self.life.stopping_deadline = None
        self._drop_slots()
        bound = self.adapter_config.shutdown_bound + 1.0
        for stopping, ref in waits:
            def is_down(m: Any, ref: Ref = ref) -> bool:
                return type(m) is Down and m.ref == ref

            try:
                await otpy.receive(is_down, timeout=bound)
            except otpy.Timeout:
                otpy.exit(stopping, otpy.Kill())
                await otpy.receive(is_down)

    async def _clear(self) -> None:
        await self._stop_adapter()
        self._fail_all(_CLEARED)
        self.session_id = None
        self.life.resume_id = None
        self.life.rest_state = "none"
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
    successful turn). ``"hibernated"``: the CLI was stopped (idle timeout or
    CLI budget) and the conversation kept; the next query resumes it.
    ``("unhealthy", "provisioning")``: the CLI is starting (or waiting for a
    CLI slot). ``("unhealthy", reason)``: the last start failed with
    ``reason`` (typed, e.g. :class:`~claudecode._errors.CLIExited`), or the CLI
    was killed while hibernating (cleared when a CLI is up again).

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
        A dict: ``adapter``, ``adapter_pid``, ``state`` ("none" | "waiting"
        for a CLI slot | "starting" | "ready" | "hibernating" | "hibernated"),
        ``os_pid`` (the CLI's process id when running), ``cli_path``,
        ``session_id``, ``cwd``, ``queued``, ``active``, ``turns``, ``model``,
        ``permission_mode``, ``last_error``, ``degraded``, ``cli_starts``,
        ``hibernations``, ``resumes``, ``spares_adopted`` (counts) and
        ``cli_budgets`` (the budgets its CLI slots come from).
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

