"""The Port adapter: one local Claude Code CLI subprocess per session.

:class:`Port` is the default adapter. Its adapter process (an otpy process
linked to the session, trapping exits) owns one CLI subprocess started with
``to_cli_args`` / ``to_cli_env`` of the session options:

* stdout is read by a task that feeds a sans-IO
  :class:`~claudecode._protocol.CLIProtocol` (``max_buffer_size`` from the
  options); messages go straight to the session, everything else to the
  adapter's own mailbox, where one loop handles it in order;
* the last ``stderr_tail_bytes`` of stderr are kept for error reports;
* ``initialize`` is sent at once (hooks, agents and in-process MCP servers
  from the :class:`~claudecode.adapters._base.ControlHandler`); the CLI's own
  control requests are served *while* it is pending (the CLI sends
  ``mcp_message`` before it answers ``initialize``), each in its own otpy
  process so a callback may ``otpy.call`` freely and a
  ``control_cancel_request`` can kill it; unknown subtypes get an error
  response;
* the CLI's exit is noticed at once (stdout EOF): the adapter exits with
  :class:`~claudecode._errors.CLIExited` carrying the exit status and the
  stderr tail, so a pending request fails immediately with the real cause.

No orphan CLI processes: the child runs in its own process group with the
parent-death signal set to SIGKILL (Linux, ``prctl(PR_SET_PDEATHSIG)``), and
on every way out of the adapter process — a requested stop, the session's
exit, an untrappable ``Kill``, cancellation of the whole node — a shielded
cleanup closes stdin, waits, sends SIGTERM, waits, then SIGKILLs the group,
each wait bounded. The subprocess is forked from the thread running trio
(not a worker thread), because the parent-death signal is tied to the thread
that forked the child.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
import trio

import otpy
from claudecode._budget import Gate, claim_gates
from claudecode._callbacks import DEFAULT_CALLBACK_TIMEOUT
from claudecode._errors import AdapterFailed, CLIExited
from claudecode._hooks import AbortSignal
from claudecode._install import resolve_cli
from claudecode._messages import Message
from claudecode._options import Options, to_cli_args, to_cli_env
from claudecode._protocol import (
    CLIProtocol,
    ControlCancelRequest,
    ControlErrorResponse,
    ControlRequest,
    ControlResponse,
    MalformedLine,
    OversizedLine,
    UnmatchedControlResponse,
)
from claudecode._protocol_errors import EncodeError
from claudecode.adapters._base import (
    ADAPTER_TAG,
    HANDLED_SUBTYPES,
    Adapter,
    ControlHandler,
    answer,
    make_control_handler,
    positive,
)
from otpy import Exit, ExitReason, Pid, ProcessExit
from otpy._process import current

__all__ = ["Port"]

logger = logging.getLogger("claudecode.adapter.port")

_INTERNAL: Final = "$claudecode_port"
"""Tag of the adapter process's messages to itself and from its workers."""

_INIT: Final = "$initialize"
"""Marker of the ``initialize`` request among the pending host requests."""

_PR_SET_PDEATHSIG: Final = 1
_READ_SIZE: Final = 65536
_HELD_STDERR_LINES: Final = 1000
"""stderr lines kept until the session says whether it wants them (it says at once)."""


@attrs.frozen
class Port(Adapter):
    """Run the Claude Code CLI as a local subprocess (the default adapter).

    Attributes:
        close_timeout: seconds to wait for the CLI to exit after its stdin
            is closed, before SIGTERM.
        term_timeout: seconds to wait after SIGTERM, before SIGKILL.
        stderr_tail_bytes: how much of the CLI's stderr is kept for errors.
        callback_timeout: seconds an MCP tool, hook or ``can_use_tool`` may
            take; over it that tool call fails (denied / error result), not
            the session.
    """

    close_timeout: float = attrs.field(default=2.0, validator=positive)
    term_timeout: float = attrs.field(default=1.0, validator=positive)
    stderr_tail_bytes: int = attrs.field(default=8192, validator=positive)
    callback_timeout: float = attrs.field(default=DEFAULT_CALLBACK_TIMEOUT, validator=positive)

    def prepare(self, options: Options) -> str:
        """Find the CLI executable (an explicit ``cli_path``, the pinned install, ``PATH``).

        ``PATH`` comes from the ``env`` option when it sets one, else from
        this process's environment.

        Args:
            options: the session options.

        Returns:
            The absolute path of the executable.

        Raises:
            CLINotFoundError: nothing usable was found (the message names
                ``claudecode install-cli``).
        """
        env = dict(os.environ)
        path = options.env.get("PATH")
        if path is not None:
            env["PATH"] = path
        return resolve_cli(options.cli_path, env=env)

    async def start(self, session: Pid, options: Options, prepared: Any,
                    gates: tuple[Gate, ...] = ()) -> Pid:
        """Spawn the adapter process (linked to the caller, trapping exits).

        Args:
            session: the session's pid.
            options: the session options.
            prepared: the CLI path from :meth:`prepare`.
            gates: CLI slots to claim before the CLI is spawned.

        Returns:
            The adapter process's pid.
        """
        cli = prepared if isinstance(prepared, str) else self.prepare(options)
        launch = Launch.local(options, cli, self.callback_timeout, gates)
        return otpy.spawn(port_main, self, session, launch, link=True, trap_exits=True)

    @property
    def shutdown_bound(self) -> float:
        """Seconds an orderly stop of the CLI may take at most (before the final SIGKILL)."""
        return self.close_timeout + self.term_timeout + 1.0


@attrs.frozen
class Launch:
    """Everything an adapter process needs to run one CLI.

    Built from the session's `Options` on the node where they live
    (`Launch.local`); the Node adapter builds one on the sandbox from plain
    terms (the options' callables stay home; callbacks reach them through
    ``handler``).

    Attributes:
        cli: the executable.
        args: the arguments after it.
        env: the child's complete environment.
        cwd: its working directory.
        max_buffer_size: the stdout line limit.
        control_timeout: seconds a host → CLI control request may take.
        handler: answers the CLI's control requests.
        raw_messages: send messages to the session as raw dicts (for a session
            on another node) instead of typed objects.
        user: the OS user to run the CLI as (``None``: this process's).
        gates: the CLI slots (``(budget pid, token)``, see `claudecode._budget`)
            to claim before the CLI is spawned.
    """

    cli: str
    args: list[str]
    env: dict[str, str]
    cwd: str | None
    max_buffer_size: int
    control_timeout: float
    handler: ControlHandler
    raw_messages: bool = False
    user: str | int | None = None
    gates: tuple[Gate, ...] = ()

    @classmethod
    def local(cls, options: Options, cli: str, callback_timeout: float,
              gates: tuple[Gate, ...] = ()) -> Launch:
        """The launch for a session on this node.

        Args:
            options: the session options.
            cli: the CLI executable.
            callback_timeout: seconds a callback may take.
            gates: CLI slots to claim first.

        Returns:
            The launch.
        """
        return cls(cli, to_cli_args(options), to_cli_env(options), options.cwd,
                   options.max_buffer_size, options.control_timeout,
                   make_control_handler(options, callback_timeout=callback_timeout),
                   user=options.user, gates=gates)


async def port_main(config: Port, session: Pid, launch: Launch) -> None:
    """The body of an adapter process: run the CLI described by ``launch``.

    Args:
        config: the Port settings (shutdown timeouts, stderr tail size).
        session: where notices go.
        launch: the CLI to run.
    """
    await _PortProcess(config, session, launch).run()



# ---------------------------------------------------------------------------
# The child process
# ---------------------------------------------------------------------------


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_PRCTL: Final = _load_prctl()


def _child_setup(parent: int) -> Callable[[], None] | None:
    """The ``preexec_fn``: SIGKILL the child when its parent dies (Linux)."""
    prctl = _PRCTL
    if prctl is None:
        return None

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return setup


class _Child:
    """A spawned CLI: the Popen, trio streams over its pipes, and an async wait."""

    def __init__(self, argv: list[str], env: Mapping[str, str], cwd: str | None,
                 user: str | int | None = None) -> None:
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            # Forked synchronously from this (trio's) thread: the parent-death
            # signal follows the forking thread, and trio's open_process forks
            # from a short-lived worker thread.
            self.popen = subprocess.Popen(
                argv, stdin=in_r, stdout=out_w, stderr=err_w, env=dict(env), cwd=cwd,
                start_new_session=True, preexec_fn=_child_setup(os.getpid()), user=user,
            )
        except BaseException:
            for fd in (in_r, in_w, out_r, out_w, err_r, err_w):
                os.close(fd)
            raise
        for fd in (in_r, out_w, err_w):
            os.close(fd)
        self.pid = self.popen.pid
        self.stdin: trio.lowlevel.FdStream | None = trio.lowlevel.FdStream(in_w)
        self.stdout = trio.lowlevel.FdStream(out_r)
        self.stderr = trio.lowlevel.FdStream(err_r)
        self._pidfd: int | None = None
        with contextlib.suppress(OSError, AttributeError):
            self._pidfd = os.pidfd_open(self.pid)
        self._wait_lock = trio.Lock()

    @property
    def returncode(self) -> int | None:
        """The exit status once reaped (``-N`` for signal ``N``)."""
        return self.popen.poll()

    async def wait(self) -> int:
        """Wait for the exit (cancellable) and return the status."""
        async with self._wait_lock:
            while self.popen.poll() is None:
                if self._pidfd is not None:
                    await trio.lowlevel.wait_readable(self._pidfd)
                else:  # pragma: no cover - kernels without pidfd
                    await trio.sleep(0.02)
        code = self.popen.returncode
        assert code is not None
        return code

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the CLI's process group (best effort)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def close_stdin(self) -> None:
        stdin, self.stdin = self.stdin, None
        if stdin is not None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                await stdin.aclose()

    async def close(self) -> None:
        """Close every pipe and the pidfd."""
        await self.close_stdin()
        for stream in (self.stdout, self.stderr):
            with contextlib.suppress(OSError, trio.ClosedResourceError):
                await stream.aclose()
        if self._pidfd is not None:
            fd, self._pidfd = self._pidfd, None
            trio.lowlevel.notify_closing(fd)
            os.close(fd)


# ---------------------------------------------------------------------------
# The adapter process
# ---------------------------------------------------------------------------


async def _answer_request(adapter: Pid, handler: ControlHandler, request: ControlRequest,
                          abort: AbortSignal) -> None:
    """Worker process: run the handler for one CLI → host request, report to the adapter."""
    status, value = await answer(handler, request, abort)
    otpy.send(adapter, (_INTERNAL, "answer", request.request_id, status, value))


class _PortProcess:
    """State of one adapter process; :meth:`run` is its body."""

    def __init__(self, config: Port, session: Pid, launch: Launch) -> None:
        self.config = config
        self.session = session
        self.launch = launch
        self.cli = launch.cli
        self.proto = CLIProtocol(max_buffer_size=launch.max_buffer_size)
        self.handler = launch.handler
        self.child: _Child | None = None
        self.nursery: trio.Nursery | None = None
        self.stderr = bytearray()
        self.stderr_done = trio.Event()
        # Live stderr lines: None until the session says (its pid, or False for none)
        self.stderr_to: Pid | bool | None = None
        self.held_lines: deque[str] = deque(maxlen=_HELD_STDERR_LINES)
        self.line_buffer = bytearray()
        # CLI request id -> (worker pid answering it, the abort signal its callback sees)
        self.workers: dict[str, tuple[Pid, AbortSignal]] = {}
        self.worker_ids: dict[Pid, str] = {}
        # our request id -> (session's ref, reply_to) or (_INIT, None)
        self.host_pending: dict[str, tuple[Any, Pid | None]] = {}
        self.me: Pid | None = None
        self.reason: ExitReason | None = None
        self.ready_info: dict[str, Any] | None = None
        self.fast_stop = False  # a spare that was never used: no graceful wait
        self.signalled = False  # we sent the CLI a signal while it was running

    # -- lifecycle -----------------------------------------------------------

    async def run(self) -> None:
        self.me = otpy.self()
        launch = self.launch
        argv = [self.cli, *launch.args]
        if launch.gates:  # the CLI's slots first: never more CLIs than a budget allows
            await claim_gates(launch.gates, self.me)
        try:
            try:
                self.child = _Child(argv, launch.env, launch.cwd, launch.user)
            except (OSError, KeyError, ValueError) as exc:  # KeyError: no such user
                failed = AdapterFailed(f"cannot start the CLI {self.cli}: {exc}")
                raise ProcessExit(failed) from None
            logger.debug("CLI started (os pid %d): %s", self.child.pid, self.cli)
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                nursery.start_soon(self._read_stderr)
                nursery.start_soon(self._read_stdout)
                await self._send_initialize()
                await self._loop()
                nursery.cancel_scope.cancel()
        finally:
            for pid, abort in list(self.workers.values()):
                abort.abort("session stopping")
                otpy.exit(pid, otpy.Kill())
            with trio.CancelScope(shield=True):
                await self._stop_cli()
        reason = self.reason
        child = self.child
        assert child is not None
        if reason is None or isinstance(reason, CLIExited):
            reason = CLIExited(child.returncode, self._stderr_tail())
        elif not self.signalled and child.returncode is not None and child.returncode < 0:
            # Asked to stop, but a signal we did not send ended the CLI
            # (killed while it was being stopped): say so.
            reason = CLIExited(child.returncode, self._stderr_tail())
        raise ProcessExit(reason)

    async def _stop_cli(self) -> None:
        """Close stdin, wait, SIGTERM, wait, SIGKILL — every wait bounded.

        SIGTERM mid-turn makes the CLI exit at once (status 143, no result).
        """
        child = self.child
        if child is None:
            return
        cfg = self.config
        if child.returncode is None:
            await child.close_stdin()
            # Mid-turn the CLI would finish the turn before exiting on EOF:
            # nobody wants that turn any more, so go on to SIGTERM at once.
            # An unused spare has nothing to save: straight to SIGKILL.
            if self.fast_stop:
                self.signalled = True
                child.signal_group(signal.SIGKILL)
            elif not self.proto.turn_active:
                with trio.move_on_after(cfg.close_timeout):
                    await child.wait()
        if child.returncode is None:
            self.signalled = True
            child.signal_group(signal.SIGTERM)
            with trio.move_on_after(cfg.term_timeout):
                await child.wait()
        if child.returncode is None:
            child.signal_group(signal.SIGKILL)
            with trio.move_on_after(5.0):
                await child.wait()
        # Anything the CLI left behind in its process group (tool commands).
        child.signal_group(signal.SIGKILL)
        with trio.move_on_after(0.5):
            await self.stderr_done.wait()
        await child.close()
        logger.debug("CLI (os pid %d) stopped, status %r", child.pid, child.returncode)

    def _stderr_tail(self) -> str:
        return bytes(self.stderr[-self.config.stderr_tail_bytes:]).decode("utf-8", "replace")

    # -- readers (nursery tasks) -----------------------------------------------

    async def _read_stderr(self) -> None:
        child = self.child
        assert child is not None
        keep = self.config.stderr_tail_bytes
        try:
            while True:
                chunk = await child.stderr.receive_some(_READ_SIZE)
                if not chunk:
                    break
                self.stderr += chunk
                if len(self.stderr) > 2 * keep:
                    del self.stderr[:-keep]
                self._stderr_lines(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            if self.line_buffer:  # the last line had no newline
                self._stderr_line(bytes(self.line_buffer))
                self.line_buffer.clear()
            self.stderr_done.set()

    def _stderr_lines(self, chunk: bytes) -> None:
        """Cut stderr into lines for the session's ``stderr`` callback."""
        if self.stderr_to is False:
            return  # nobody wants them
        self.line_buffer += chunk
        while True:
            nl = self.line_buffer.find(b"\n")
            if nl < 0:
                break
            line = bytes(self.line_buffer[:nl])
            del self.line_buffer[:nl + 1]
            self._stderr_line(line)
        if len(self.line_buffer) > self.launch.max_buffer_size:  # a line without end
            self._stderr_line(bytes(self.line_buffer))
            self.line_buffer.clear()

    def _stderr_line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if not line:
            return
        target = self.stderr_to
        if target is None:  # not told yet: hold a bounded number of lines
            self.held_lines.append(line)
        elif target is not False:
            otpy.send(target, (ADAPTER_TAG, self.me, "stderr", line))

    def _forward_stderr(self, target: Any) -> None:
        """The session says where stderr lines go (its pid), or that none are wanted."""
        if target is None:
            self.stderr_to = False
            self.line_buffer.clear()
        else:
            self.stderr_to = target
            for line in self.held_lines:
                otpy.send(target, (ADAPTER_TAG, self.me, "stderr", line))
        self.held_lines.clear()

    async def _read_stdout(self) -> None:
        child = self.child
        assert child is not None and self.me is not None
        me = self.me
        raw = self.launch.raw_messages
        feed = self.proto.feed

        def dispatch(events: list[Any]) -> None:
            for event in events:
                if isinstance(event, Message):
                    # self.session, not a local: a spare changes hands when adopted
                    otpy.send(self.session,
                              (ADAPTER_TAG, me, "message", event.raw if raw else event))
                else:
                    self._side_event(event)

        try:
            while True:
                chunk = await child.stdout.receive_some(_READ_SIZE)
                if not chunk:
                    break
                dispatch(feed(chunk))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        dispatch(self.proto.feed_eof())
        # stdout ended: the CLI is exiting. Let stderr drain so the tail is complete.
        with trio.move_on_after(1.0):
            await self.stderr_done.wait()
        otpy.send(me, (_INTERNAL, "eof"))

    def _side_event(self, event: Any) -> None:
        """A stdout event that is not a message, seen by the reader.

        Line errors go to the session right away, so they stay in order with
        the messages around them; control traffic goes to the adapter's loop.
        """
        if isinstance(event, OversizedLine):
            logger.warning("discarded a %d-byte line from the CLI (max_buffer_size=%d)",
                           event.size, event.limit)
            otpy.send(self.session, (ADAPTER_TAG, self.me, "oversized", {
                "size": event.size, "limit": event.limit, "head": event.head,
                "maybe_result": event.maybe_result,
            }))
        elif isinstance(event, MalformedLine):
            logger.warning("malformed line from the CLI (%s): %r", event.reason, event.line[:200])
        else:
            assert self.me is not None
            otpy.send(self.me, (_INTERNAL, "event", event))

    async def _timer(self, request_id: str, seconds: float) -> None:
        await trio.sleep(seconds)
        assert self.me is not None
        otpy.send(self.me, (_INTERNAL, "control_timeout", request_id))

    # -- writing -----------------------------------------------------------------

    async def _write(self, line: bytes) -> None:
        child = self.child
        if child is None or child.stdin is None:
            return
        try:
            await child.stdin.send_all(line)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            # The CLI is gone or going; stdout EOF reports it.
            logger.debug("write to the CLI failed: %r", exc)

    async def _send_initialize(self) -> None:
        payload = self.handler.initialize_payload()
        rid, line = self.proto.control_request("initialize", payload)
        self.host_pending[rid] = (_INIT, None)
        await self._write(line)
        self._start_timer(rid)

    def _start_timer(self, request_id: str) -> None:
        assert self.nursery is not None
        self.nursery.start_soon(self._timer, request_id, self.launch.control_timeout)

    # -- the loop ----------------------------------------------------------------

    async def _loop(self) -> None:
        """Handle the mailbox until the CLI is gone or a stop is asked for."""
        with contextlib.suppress(_Stop):
            await self._serve()

    async def _serve(self) -> None:
        while True:
            msg = await otpy.receive()
            t = type(msg)
            if t is tuple and msg and msg[0] == _INTERNAL:
                kind = msg[1]
                if kind == "event":
                    await self._event(msg[2])
                elif kind == "answer":
                    await self._answer(msg[2], msg[3], msg[4])
                elif kind == "control_timeout":
                    self._control_timeout(msg[2])
                elif kind == "eof":
                    return
            elif t is tuple and msg and msg[0] == ADAPTER_TAG:
                await self._from_session(msg)
            elif t is Exit:
                if msg.pid in self.worker_ids:
                    await self._worker_exit(msg.pid, msg.reason)
                elif msg.pid == self.session or msg.pid == current().node.init_pid:
                    # The session (or the node) is going away: stop.
                    self.reason = msg.reason
                    return
                # else: a worker that already answered
            else:
                logger.debug("port adapter ignored %r", msg)

    async def _from_session(self, msg: tuple[Any, ...]) -> None:
        kind = msg[1]
        if kind == "query":
            ref, content = msg[2], msg[3]
            uid = msg[4] if len(msg) > 4 and isinstance(msg[4], str) else None
            try:
                line = self.proto.user_message(content, uuid=uid)
            except EncodeError as exc:  # the session validates first; belt and braces
                logger.error("cannot encode query %r: %s", ref, exc)
                return
            await self._write(line)
        elif kind == "stderr":
            self._forward_stderr(msg[2])
        elif kind == "adopt":
            self._adopt(msg[2])
        elif kind == "discard":
            self.fast_stop = True
            self.reason = otpy.Shutdown()
            raise _Stop
        elif kind == "control":
            _, _, ref, subtype, payload, reply_to = msg
            try:
                rid, line = self.proto.control_request(subtype, payload)
            except EncodeError as exc:
                otpy.send(reply_to, (ADAPTER_TAG, self.me, "control_result", ref, "error",
                                     str(exc)))
                return
            self.host_pending[rid] = (ref, reply_to)
            await self._write(line)
            self._start_timer(rid)
        else:
            logger.debug("port adapter ignored %r", msg)

    def _adopt(self, session: Pid) -> None:
        """A spare (started by a CLI budget) now belongs to ``session``."""
        old, self.session = self.session, session
        otpy.link(session)
        otpy.unlink(old)
        if self.ready_info is not None:
            otpy.send(session, (ADAPTER_TAG, self.me, "ready", dict(self.ready_info)))

    async def _event(self, event: Any) -> None:
        me = self.me
        if isinstance(event, ControlRequest):
            if event.subtype in HANDLED_SUBTYPES:
                assert me is not None
                abort = AbortSignal()
                pid = otpy.spawn(_answer_request, me, self.handler, event, abort, link=True)
                self.workers[event.request_id] = (pid, abort)
                self.worker_ids[pid] = event.request_id
            else:
                await self._write(self.proto.control_response_error(
                    event.request_id, f"unsupported control request subtype {event.subtype!r}"))
        elif isinstance(event, ControlCancelRequest):
            cancelled = self.workers.pop(event.request_id, None)
            if cancelled is not None:
                pid, withdrawn = cancelled
                withdrawn.abort("cancelled by the CLI")  # before the callback sees Cancelled
                self.worker_ids.pop(pid, None)
                otpy.exit(pid, otpy.Kill())
        elif isinstance(event, ControlResponse | ControlErrorResponse):
            await self._host_answer(event)
        elif isinstance(event, UnmatchedControlResponse):
            logger.debug("control response for no pending request: %r", event.request_id)

    async def _answer(self, request_id: str, status: str, payload: Any) -> None:
        worker = self.workers.pop(request_id, None)
        if worker is not None:
            self.worker_ids.pop(worker[0], None)
        if not self.proto.is_incoming_pending(request_id):
            return  # cancelled meanwhile
        if status == "ok":
            try:
                line = self.proto.control_response_success(request_id, payload)
            except EncodeError as exc:
                line = self.proto.control_response_error(
                    request_id, f"the handler's answer is not JSON: {exc}")
        else:
            line = self.proto.control_response_error(request_id, str(payload))
        await self._write(line)

    async def _worker_exit(self, pid: Pid, reason: ExitReason) -> None:
        request_id = self.worker_ids.pop(pid)
        self.workers.pop(request_id, None)
        if self.proto.is_incoming_pending(request_id):
            await self._write(self.proto.control_response_error(
                request_id, f"the handler exited without answering: {reason!r}"))

    async def _host_answer(self, event: ControlResponse | ControlErrorResponse) -> None:
        entry = self.host_pending.pop(event.request_id, None)
        if entry is None:
            return
        ref, reply_to = entry
        if ref == _INIT:
            if isinstance(event, ControlErrorResponse):
                self.reason = AdapterFailed(f"the CLI refused initialize: {event.error}")
                raise _Stop
            child = self.child
            info = {"os_pid": child.pid if child is not None else None,
                    "cli_path": self.cli, "initialize": event.response}
            self.ready_info = info
            otpy.send(self.session, (ADAPTER_TAG, self.me, "ready", info))
            return
        assert reply_to is not None
        if isinstance(event, ControlResponse):
            otpy.send(reply_to, (ADAPTER_TAG, self.me, "control_result", ref, "ok",
                                 event.response))
        else:
            otpy.send(reply_to, (ADAPTER_TAG, self.me, "control_result", ref, "error",
                                 event.error))

    def _control_timeout(self, request_id: str) -> None:
        entry = self.host_pending.pop(request_id, None)
        if entry is None:
            return
        self.proto.forget_request(request_id)
        ref, reply_to = entry
        seconds = self.launch.control_timeout
        if ref == _INIT:
            self.reason = AdapterFailed(f"the CLI did not answer initialize within {seconds} s")
            raise _Stop
        assert reply_to is not None
        otpy.send(reply_to, (ADAPTER_TAG, self.me, "control_result", ref, "timeout",
                             f"no answer from the CLI within {seconds} s"))


class _Stop(Exception):
    """Raised inside the loop to stop the adapter with ``self.reason``."""
