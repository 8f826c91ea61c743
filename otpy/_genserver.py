"""GenServer: the generic server behaviour, with call / cast / reply / stop.

Wire format is Erlang's own, so a BEAM node can call a Python server and the
other way round: a call is ``("$gen_call", (caller_pid, ref), request)``, a
cast ``("$gen_cast", request)``, and a reply ``(ref, value)``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Literal, TypeVar

import trio

from otpy import telemetry
from otpy._child_spec import ChildSpec
from otpy._node import Node, NotRegisteredError
from otpy._process import Process, current, flush_ref, park, receive, receive_reply
from otpy._reasons import (
    KILL,
    NORMAL,
    CallError,
    CallingSelf,
    Crash,
    Down,
    Exit,
    ExitReason,
    NoProc,
    ProcessExit,
    Timeout,
    Unencodable,
    as_reason,
    is_quiet,
)
from otpy._terms import Atom, Pid, Ref

__all__ = [
    "Continue",
    "GenServer",
    "Ignore",
    "Ignored",
    "NoReply",
    "StartError",
    "Starter",
    "Stop",
    "call",
    "cast",
    "reply",
    "start_child_process",
    "stop",
]

logger = logging.getLogger("otpy")

_CALL_EVENT = ("otpy", "genserver", "call")
GEN_CALL = Atom("$gen_call")
GEN_CAST = Atom("$gen_cast")
S = TypeVar("S", bound="GenServer")

Caller = tuple[Pid, Ref]


class _NoReply:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NoReply"


#: Return this from `handle_call` to reply later with `reply(caller, value)`.
NoReply: Any = _NoReply()


class Stop(Exception):
    """Raise inside a callback to stop the server with ``reason``.

    In `handle_call`, ``reply`` (if given) is sent to the caller before the
    server terminates. In `init`, the start fails with ``reason``.
    """

    _NO_REPLY: ClassVar[object] = object()

    def __init__(self, reason: Any = NORMAL, reply: Any = _NO_REPLY) -> None:
        super().__init__(reason)
        self.reason = as_reason(reason)
        self.reply = reply

    @property
    def has_reply(self) -> bool:
        """Whether a reply was given."""
        return self.reply is not Stop._NO_REPLY


class Ignore(Exception):
    """Raise inside `init` to give up starting without an error (``ignore``)."""


class Continue:
    """Return from `init` or a callback to run `handle_continue(arg)` next.

    From `handle_call`, ``reply`` is sent to the caller first; with
    ``reply=NoReply`` the call stays open (Erlang's ``{noreply, State,
    {continue, Arg}}``) and is answered later with `reply`.
    """

    __slots__ = ("arg", "reply")

    def __init__(self, arg: Any, reply: Any = None) -> None:
        self.arg = arg
        self.reply = reply


class StartError(Exception):
    """A server (or child) failed to start; ``.reason`` is typed."""

    def __init__(self, reason: ExitReason) -> None:
        super().__init__(reason)
        self.reason = reason


class GenServer:
    """Base class of generic servers. Override the callbacks you need.

    ``handle_call(request, caller)`` returns the reply (or `NoReply` and calls
    `reply` later); `handle_cast` and `handle_info` return nothing. Any
    callback may ``raise Stop(reason, reply=...)``; any other exception
    crashes the server (after `terminate`).
    """

    #: set ``trap_exits = True`` in a subclass to get `terminate` on a parent's exit.
    trap_exits: ClassVar[bool] = False
    #: seconds of idleness after which `handle_timeout` runs (None: never).
    idle_timeout: float | None = None
    #: what the observer (`otpy.observer`) shows as this server's kind.
    observer_kind: ClassVar[str] = "gen_server"

    pid: Pid
    parent: Pid

    async def init(self, *args: Any, **kwargs: Any) -> Any:
        """Set up state. Raise `Stop` or `Ignore` to fail the start.

        Returns:
            None, or `Continue(arg)` to run `handle_continue` first.
        """
        return None

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        """Answer a call. The return value is the reply."""
        raise NotImplementedError(f"{type(self).__name__} has no handle_call for {request!r}")

    async def handle_cast(self, request: Any) -> Any:
        """Handle a cast."""
        raise NotImplementedError(f"{type(self).__name__} has no handle_cast for {request!r}")

    async def handle_info(self, message: Any) -> Any:
        """Handle any other message. By default logs and drops it."""
        logger.warning("%s %r received an unexpected message: %r", type(self).__name__,
                       getattr(self, "pid", None), message)

    async def handle_continue(self, arg: Any) -> Any:
        """Run work right after `init` or a callback returned `Continue(arg)`."""
        return None

    async def handle_timeout(self) -> Any:
        """Called when no message arrived for `idle_timeout` seconds."""
        return None

    async def terminate(self, reason: ExitReason) -> None:
        """Clean up before exit: on `Stop`, on a crash in a callback (not `init`),
        and on a parent's exit signal when trapping exits."""
        return None

    def format_status(self) -> dict[str, Any]:
        """The state the observer shows for this server (Erlang's ``format_status``).

        Called synchronously by the node's ``otpy_observer`` process, between
        two steps of the server, and shown to whoever may use the observer
        (anyone holding the node's cookie, see docs/otpy/observer.md).
        Override it to leave out secrets or to summarise a large state.

        Returns:
            By default the instance's attributes (``pid`` and ``parent`` left
            out); the observer shows each value's ``repr``, truncated.
        """
        try:
            attrs_ = vars(self)
        except TypeError:  # a subclass with __slots__
            return {}
        return {k: v for k, v in attrs_.items() if k not in ("pid", "parent")}

    # ----------------------------------------------------------- starting

    @classmethod
    async def start_link(
        cls: type[S], *args: Any, name: Any = None, timeout: float | None = 5.0, **kwargs: Any
    ) -> Pid:
        """Start the server linked to the caller; return after `init`.

        Args:
            *args: passed to `init`.
            name: register under this name (str, `Via`, `Global`).
            timeout: seconds `init` may take (the server is killed after).
            **kwargs: passed to `init`.

        Returns:
            The server's pid.

        Raises:
            StartError: init raised, stopped, or timed out. ``reason`` says which.
            Ignored: init raised `Ignore`.
        """
        return await start_child_process(
            cls._serve, (cls, args, kwargs, name), link=True, timeout=timeout,
            trap=cls.trap_exits,
        )

    @classmethod
    async def start(
        cls: type[S], *args: Any, name: Any = None, timeout: float | None = 5.0, **kwargs: Any
    ) -> Pid:
        """Like `start_link`, without the link."""
        return await start_child_process(
            cls._serve, (cls, args, kwargs, name), link=False, timeout=timeout,
            trap=cls.trap_exits,
        )

    @classmethod
    def child_spec(
        cls,
        *args: Any,
        id: Any = None,
        name: Any = None,
        restart: Literal["permanent", "transient", "temporary"] = "permanent",
        shutdown: float | str = 5.0,
        **kwargs: Any,
    ) -> ChildSpec:
        """A `ChildSpec` that starts this server with `start_link`.

        Args:
            *args: passed to `init`.
            id: the child id (default: the name, else the class).
            name: the server's registered name.
            restart: permanent, transient or temporary.
            shutdown: seconds, "brutal_kill" or "infinity".
            **kwargs: passed to `init`.

        Returns:
            The spec.
        """
        kw = dict(kwargs)
        if name is not None:
            kw["name"] = name
        return ChildSpec(
            id=id if id is not None else (name if name is not None else cls.__name__),
            start=(cls.start_link, args, kw),
            restart=restart,
            shutdown=shutdown,
            type="worker",
            modules=[cls.__name__],
        )

    # ------------------------------------------------------------ the loop

    @staticmethod
    async def _serve(
        starter: Starter,
        cls: type[GenServer],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: Any,
    ) -> None:
        proc = current()
        ack = starter.ack
        if name is not None:
            try:
                proc.node.register(name, proc.pid)
            except ValueError:
                existing = proc.node.resolve(name)
                ack(("error", as_reason(("already_started", existing))))
                raise ProcessExit(NORMAL) from None
        server = cls()
        server.pid = proc.pid
        server.parent = starter.parent
        # For the observer while the server runs; dropped when it ends, so a
        # pid kept by someone does not keep the server's state alive.
        proc.server = server
        try:
            try:
                result = await server.init(*args, **kwargs)
            except Stop as stop:
                ack(("error", stop.reason))
                raise ProcessExit(stop.reason) from None
            except Ignore:
                ack(("ignore", None))
                raise ProcessExit(NORMAL) from None
            except Exception as exc:
                ack(("error", Crash(exc)))
                raise
            ack(("ok", proc.pid))
            await server._loop(proc, result)
        finally:
            del proc.server

    async def _loop(self, proc: Process, pending: Any) -> None:
        parent = self.parent
        node = proc.node
        try:
            while True:
                if isinstance(pending, Continue):
                    arg = pending.arg
                    pending = await self.handle_continue(arg)
                    continue
                if self.idle_timeout is None:
                    msg = await receive()
                else:
                    try:
                        msg = await receive(timeout=self.idle_timeout)
                    except Timeout:
                        pending = await self.handle_timeout()
                        continue
                t = type(msg)
                if t is tuple and msg and msg[0] is GEN_CALL and len(msg) == 3:
                    caller = msg[1]
                    request = msg[2]
                    if type(request) is _StopRequest:
                        raise Stop(request.reason)
                    try:
                        value = await self.handle_call(request, caller)
                    except Stop as stop:
                        if stop.has_reply:
                            _reply_or_fail(caller, stop.reply)
                        raise
                    if isinstance(value, Continue):
                        if value.reply is not NoReply:
                            _reply_or_fail(caller, value.reply)
                        pending = value
                    elif value is not NoReply:
                        try:
                            reply(caller, value)
                        except TypeError:  # unencodable for a remote caller's node
                            _reply_or_fail(caller, value)
                    continue
                if t is tuple and msg and msg[0] is GEN_CAST and len(msg) == 2:
                    pending = await self.handle_cast(msg[1])
                elif t is Exit and proc.trap and (msg.pid == parent or msg.pid == node.init_pid):
                    raise Stop(msg.reason)
                else:
                    pending = await self.handle_info(msg)
        except Stop as stop:
            await self._terminate(stop.reason)
            raise ProcessExit(stop.reason) from None
        except ProcessExit as exc:
            # A callback exited (Erlang's exit/1 inside a gen_server callback):
            # terminate runs, as in OTP (erl: terminate(crashed, _) is called).
            await self._terminate(exc.reason)
            raise
        except trio.Cancelled:
            raise
        except Exception as exc:
            reason = Crash(exc)
            await self._terminate(reason)
            # Reported by _terminate: exit with the reason, without a second report.
            raise ProcessExit(reason) from None

    async def _terminate(self, reason: ExitReason) -> None:
        try:
            await self.terminate(reason)
        finally:
            if not is_quiet(reason) and logger.isEnabledFor(logging.ERROR):
                exc = reason.exception if isinstance(reason, Crash) else None
                logger.error(
                    "GenServer %s %r terminating, reason: %r",
                    type(self).__name__,
                    self.pid,
                    reason,
                    exc_info=exc,
                    extra={"otpy_report": "crash_report", "otpy_pid": self.pid,
                           "otpy_server": type(self).__name__,
                           "otpy_name": getattr(self.pid._proc, "name", None),
                           "otpy_reason": reason},
                )


class Starter:
    """Handed to a process started with `start_child_process`: who started
    it, and how to acknowledge the start (OTP's proc_lib protocol)."""

    __slots__ = ("node", "parent", "ref")

    def __init__(self, node: Node, parent: Pid, ref: Ref) -> None:
        self.node = node
        self.parent = parent
        self.ref = ref

    def ack(self, result: tuple[str, Any]) -> None:
        """Report ``("ok", pid)``, ``("error", reason)`` or ``("ignore", None)``."""
        self.node.send(self.parent, (self.ref, result))


async def start_child_process(
    body: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    *,
    link: bool,
    timeout: float | None,
    trap: bool = False,
) -> Pid:
    """Spawn a process that acknowledges its start, and wait for the ack.

    ``body(starter, *args)`` must call ``starter.ack(("ok", pid))``,
    ``starter.ack(("error", reason))`` or ``starter.ack(("ignore", None))``
    exactly once. This is OTP's proc_lib start protocol.

    Args:
        body: the process body.
        args: its arguments after ``ack``.
        link: link the new process to the caller.
        timeout: seconds to wait for the ack; on timeout the process is killed.
        trap: start the process trapping exits.

    Returns:
        The pid.

    Raises:
        StartError: the start failed; `Ignored` when it was ignored.
    """
    proc = current()
    node = proc.node
    ref = Ref.make(node.name, node.creation)
    me = proc.pid
    starter = Starter(node, me, ref)
    pid, mref = node.spawn(body, (starter, *args), parent=proc, link=link, monitor=True,
                           trap_exits=trap)
    assert mref is not None

    try:
        # The monitor's Down ends the wait at once when the process dies
        # without acking (killed, or exited with ProcessExit in init). Only
        # this task gets them, whatever other tasks of the caller receive.
        msg = await receive_reply(proc, ref, timeout, monitor=mref, scan=False)
    except Timeout:
        if link:
            node.unlink(proc, pid)
        node.signal_exit(pid, me, KILL, link=False)
        # Return only once it is gone (its name free again), as a Kill is
        # untrappable this is at most a scheduling round away.
        await receive_reply(proc, mref, None)
        flush_ref(proc, ref)  # an ack that crossed the kill
        raise StartError(Timeout()) from None
    if type(msg) is Down:
        # The process died without acking.
        raise StartError(msg.reason)
    node.demonitor(proc, mref, flush=True)
    status, value = msg[1]
    if status == "ok":
        return value  # type: ignore[no-any-return]
    if status == "ignore":
        raise Ignored()
    # As in OTP 25, a trapping caller also gets the Exit of the failed process.
    raise StartError(value)


class Ignored(StartError):
    """A start returned ``ignore``: no process, no error."""

    def __init__(self) -> None:
        super().__init__(NORMAL)


def _resolve(node: Node, server: Any) -> Pid | None:
    try:
        return node.resolve(server)
    except NotRegisteredError:
        return None


async def call(server: Any, request: Any, timeout: float | None = 5.0) -> Any:
    """Call a server and wait for its reply.

    The server is monitored for the duration: if it is (or becomes) dead the
    call fails at once. A reply arriving after a timeout is dropped, never
    delivered to a later receive.

    Args:
        server: a pid or any name.
        request: the request term.
        timeout: seconds (default 5), or None to wait forever.

    Returns:
        The reply.

    Raises:
        CallError: ``.reason`` is `NoProc`, `Timeout`, `NoConnection`, or the
            server's exit reason.
    """
    if telemetry.timing_calls and telemetry.sampled():
        return await _timed_call(server, request, timeout)
    return await _call(server, request, timeout)


async def _timed_call(server: Any, request: Any, timeout: float | None) -> Any:
    """A sampled call: `_call`, timed, then ``("otpy", "genserver", "call")``."""
    caller = current().pid
    start = trio.current_time()
    outcome = "ok"
    reason: ExitReason | None = None
    try:
        return await _call(server, request, timeout)
    except CallError as err:
        outcome = "error"
        reason = err.reason
        raise
    finally:
        if telemetry.active:
            telemetry.execute(_CALL_EVENT, {
                "duration": trio.current_time() - start,
                "sample_every": telemetry.call_sampling,
            }, {"server": server, "caller": caller, "outcome": outcome,
                "reason": reason})


async def _call(server: Any, request: Any, timeout: float | None) -> Any:
    proc = current()
    node = proc.node
    if node.dist is not None and node.is_remote(server):
        return await _remote_call(proc, node, server, request, timeout)
    pid = server if type(server) is Pid else _resolve(node, server)
    if pid is None:
        raise CallError(NoProc(), server, request)
    target = node.local(pid)
    if target is None:
        if node.dist is not None and node.is_remote(pid):
            return await _remote_call(proc, node, pid, request, timeout)
        raise CallError(NoProc(), server, request)
    if target is proc:
        # Erlang: exit(calling_self). Another task of this process cannot
        # serve it either: the process's server loop is this process.
        raise CallError(CallingSelf(), server, request)
    ref = Ref.make(node.name, node.creation)
    by = target.monitored_by
    if by is None:
        by = target.monitored_by = {}
    me = proc.pid
    by[ref] = (me, pid)
    aliases = proc.aliases
    if aliases is None:
        aliases = proc.aliases = set()
    aliases.add(ref)
    target.deliver((GEN_CALL, (me, ref), request))
    try:
        # Nothing for this fresh ref can be queued yet: wait without a scan.
        msg = await park(proc, None, ref, timeout)
    except Timeout:
        raise CallError(Timeout(), server, request) from None
    finally:
        aliases.discard(ref)
        mb = target.monitored_by
        if mb is not None:
            mb.pop(ref, None)
    if type(msg) is Down:
        raise CallError(msg.reason, server, request)
    return msg[1]


async def _remote_call(
    proc: Process, node: Node, server: Any, request: Any, timeout: float | None
) -> Any:
    """A call across distribution: monitor, send with an alias tag, wait."""
    dist = node.dist
    ref = Ref.make(node.name, node.creation)
    # An unencodable request raises here, before anything is sent.
    call = dist.start_call(proc, server, ref, request)
    try:
        reply_msg = await park(proc, None, ref, timeout)
    except Timeout:
        raise CallError(Timeout(), server, request) from None
    finally:
        dist.end_call(proc, call, ref)
    if type(reply_msg) is Down:
        raise CallError(reply_msg.reason, server, request)
    value = reply_msg[1]
    if type(value) is CallFailed:
        raise CallError(value.reason, server, request)
    return value


def reply(caller: Caller, value: Any) -> None:
    """Reply to a call that `handle_call` answered with `NoReply`.

    Args:
        caller: the ``caller`` argument `handle_call` received.
        value: the reply.
    """
    pid, ref = caller
    target = pid._proc
    if target is None:
        proc = current()
        node = proc.node
        target = node.local(pid)
        if target is None:
            if node.dist is not None and node.is_remote(pid):
                node.dist.send_reply(proc.pid, pid, ref, value)
            return
    if target.alive and target.aliases is not None and ref in target.aliases:
        target.deliver((ref, value))


class CallFailed:
    """What a server replies instead of a reply that cannot cross to its
    caller's node: the call raises ``CallError(reason)``."""

    __slots__ = ("reason",)

    def __init__(self, reason: ExitReason) -> None:
        self.reason = reason


def _reply_or_fail(caller: Caller, value: Any) -> None:
    """Reply from the server loop; a reply a remote caller's node cannot be sent
    (no term encoding) fails that call with `Unencodable`, not the server."""
    try:
        reply(caller, value)
    except TypeError as exc:  # ETFEncodeError, without importing the wire here
        logger.warning("%r: the reply to %r cannot be sent to its node: %s",
                       caller[0], caller[0], exc)
        reply(caller, CallFailed(Unencodable(str(exc))))


def cast(server: Any, request: Any) -> None:
    """Send a request without waiting. Always succeeds, even to a dead server.

    Args:
        server: a pid or a name.
        request: the request term.
    """
    node = current().node
    with contextlib.suppress(NotRegisteredError):
        node.send(server, (GEN_CAST, request))


async def stop(server: Any, reason: Any = NORMAL, timeout: float | None = None) -> None:
    """Stop a server with ``reason`` and wait until it is gone.

    The server runs `terminate(reason)` (it traps nothing for this: the
    request arrives as a system message).

    Args:
        server: a pid or a name.
        reason: the exit reason (default `Normal`).
        timeout: seconds to wait, None for no limit.

    Raises:
        TypeError: ``timeout`` is not a number or None, or ``server`` is not a
            pid or a name; nothing is sent (erl: ``function_clause``, the
            server stays alive).
        ValueError: ``timeout`` is negative or NaN; nothing is sent.
        CallError: the server did not exist (`NoProc`) or did not stop in time
            (`Timeout`), or exited with another reason than the one asked.
    """
    _check_timeout(timeout)
    why = as_reason(reason)
    proc = current()
    node = proc.node
    pid = server if type(server) is Pid else _resolve(node, server)
    target = node.local(pid) if pid is not None else None
    if pid is None or target is None:
        raise CallError(NoProc(), server)
    ref = node.monitor(proc, pid)
    target.deliver((GEN_CALL, (proc.pid, Ref.make(node.name)), _StopRequest(why)))
    try:
        down = await receive(lambda m: type(m) is Down and m.ref == ref, timeout=timeout)
    except Timeout:
        node.demonitor(proc, ref, flush=True)
        raise CallError(Timeout(), server) from None
    if down.reason != why:
        raise CallError(down.reason, server)


def _check_timeout(timeout: Any) -> None:
    if timeout is None:
        return
    if not isinstance(timeout, int | float) or isinstance(timeout, bool):
        raise TypeError(f"timeout must be seconds (a number) or None, not {timeout!r}")
    if not timeout >= 0:
        raise ValueError(f"timeout must be >= 0 seconds, not {timeout!r}")


class _StopRequest:
    __slots__ = ("reason",)

    def __init__(self, reason: ExitReason) -> None:
        self.reason = reason
