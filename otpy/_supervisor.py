"""Supervisor: restart strategies, restart intensity, shutdown, the child API.

A supervisor is a `GenServer` that traps exits. Children start left to right,
each synchronously; they stop right to left. When a child exits the
supervisor applies the child's restart type (permanent / transient /
temporary) and its strategy (one_for_one / one_for_all / rest_for_one).
More than ``max_restarts`` restarts within ``max_seconds`` — counted across
the whole supervisor — make it shut every child down and exit `Shutdown`.
A restart that fails to start a child is retried (the child shows as
`RESTARTING` meanwhile), each attempt counting towards the intensity.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any, Final, Literal

import attrs
import trio

from otpy import telemetry
from otpy._child_spec import ChildSpec, RestartType
from otpy._genserver import GenServer, Ignored, StartError, Stop, call
from otpy._process import current, receive
from otpy._reasons import (
    KILL,
    SHUTDOWN,
    Crash,
    Down,
    Exit,
    ExitReason,
    Killed,
    Normal,
    Shutdown,
    TermReason,
    Timeout,
    is_quiet,
)
from otpy._terms import Pid

__all__ = [
    "RESTARTING",
    "STRATEGIES",
    "ChildInfo",
    "ChildSpec",
    "Intensity",
    "Restarting",
    "Supervisor",
    "SupervisorError",
    "check_flags",
    "check_start_spec",
    "report_shutdown",
    "shutdown_child",
    "shutdown_children",
    "start_from_spec",
]

logger = logging.getLogger("otpy.supervisor")
# telemetry events (docs/otpy/telemetry.md)
_INIT = ("otpy", "supervisor", "init")
_STARTED = ("otpy", "supervisor", "child_started")
_START_ERROR = ("otpy", "supervisor", "start_error")
_RESTART = ("otpy", "supervisor", "restart")
_GIVE_UP = ("otpy", "supervisor", "give_up")
_SHUTDOWN = ("otpy", "supervisor", "child_shutdown")

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")


class Restarting(enum.Enum):
    """The type of `RESTARTING` (a one-member enum, so ``is`` narrows it)."""

    RESTARTING = "restarting"

    def __repr__(self) -> str:
        return "otpy.RESTARTING"


#: The ``pid`` that `which_children` shows for a child whose restart failed
#: and is being retried (Erlang's ``restarting``); `None` is a stopped child.
RESTARTING: Final = Restarting.RESTARTING


@attrs.frozen
class ChildInfo:
    """One row of `which_children`: ``(id, pid, type, modules)``.

    ``pid`` is the running child's `Pid`, `None` for a child that is not
    running, or `RESTARTING` while a failed restart is being retried.
    """

    id: Any
    pid: Pid | Restarting | None
    type: str
    modules: list[str]

    def __iter__(self) -> Any:
        return iter((self.id, self.pid, self.type, self.modules))


class SupervisorError(Exception):
    """A child API request failed: ``.reason`` is "not_found", "running",
    "restarting", "already_present", ("already_started", pid), "max_children",
    ("invalid_child_spec", value) or a start failure."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


class Intensity:
    """Restart intensity bookkeeping: at most ``max_restarts`` in ``max_seconds``.

    Timestamps come from `trio.current_time` (so `MockClock` drives it).
    A restart at time t counts while ``now - t <= max_seconds``.
    """

    __slots__ = ("max_restarts", "max_seconds", "restarts")

    def __init__(self, max_restarts: int, max_seconds: float) -> None:
        if max_restarts < 0 or max_seconds <= 0:
            raise ValueError("max_restarts must be >= 0 and max_seconds > 0")
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self.restarts: deque[float] = deque()

    def add(self) -> bool:
        """Record a restart now.

        Returns:
            False when the intensity is exceeded (the supervisor must give up).
        """
        now = trio.current_time()
        r = self.restarts
        r.append(now)
        threshold = now - self.max_seconds
        while r and r[0] < threshold:
            r.popleft()
        return len(r) <= self.max_restarts


def check_flags(max_restarts: Any, max_seconds: Any) -> tuple[str, Any] | None:
    """Check restart intensity flags as Erlang's supervisor does.

    Returns:
        None when valid, else ``("invalid_intensity", value)`` or
        ``("invalid_period", value)``.
    """
    if not isinstance(max_restarts, int) or isinstance(max_restarts, bool) or max_restarts < 0:
        return ("invalid_intensity", max_restarts)
    if (not isinstance(max_seconds, int | float) or isinstance(max_seconds, bool)
            or not max_seconds > 0 or max_seconds == float("inf")):
        return ("invalid_period", max_seconds)
    return None


def check_start_spec(children: Any) -> tuple[str, Any] | None:
    """Check a supervisor's child specs as Erlang's ``check_startspec`` does.

    Returns:
        None when valid, else ``("invalid_child_spec", value)`` or
        ``("duplicate_child_name", id)``.
    """
    ids: list[Any] = []
    for spec in children:
        if not isinstance(spec, ChildSpec):
            return ("invalid_child_spec", spec)
        if spec.id in ids:
            return ("duplicate_child_name", spec.id)
        ids.append(spec.id)
    return None


def should_restart(restart: str, reason: ExitReason) -> bool:
    """Whether a child with this restart type is restarted after ``reason``."""
    if restart == "permanent":
        return True
    if restart == "transient":
        return not is_quiet(reason)
    return False


async def start_from_spec(spec: ChildSpec) -> Pid | None:
    """Run a spec's start function in the calling (supervisor) process.

    Returns:
        The pid, or None when the child ignored its start.

    Raises:
        StartError: the start failed.
    """
    fn, args, kwargs = spec.start
    try:
        pid = await fn(*args, **kwargs)
    except Ignored:
        return None
    except StartError:
        raise
    except Exception as exc:
        raise StartError(Crash(exc)) from exc
    if pid is None or isinstance(pid, Pid):
        return pid
    raise StartError(TermReason(("bad_return", pid)))


async def shutdown_child(pid: Pid, shutdown: float | str | None) -> ExitReason:
    """Stop a linked child the OTP way and wait until it is gone.

    Monitor it, unlink it, send `Shutdown` (or `Kill` for "brutal_kill"),
    wait ``shutdown`` seconds, then kill.

    Args:
        pid: the child.
        shutdown: seconds, "brutal_kill" or "infinity".

    Returns:
        The child's exit reason.
    """
    proc = current()
    node = proc.node
    ref = node.monitor(proc, pid)
    node.unlink(proc, pid)

    def is_down(m: Any) -> bool:
        return type(m) is Down and m.ref == ref

    if shutdown == "brutal_kill":
        node.signal_exit(pid, proc.pid, KILL, link=False)
        down = await receive(is_down)
        return down.reason  # type: ignore[no-any-return]
    node.signal_exit(pid, proc.pid, SHUTDOWN, link=False)
    timeout = None if shutdown == "infinity" else float(shutdown or 0)
    try:
        down = await receive(is_down, timeout=timeout)
    except Timeout:
        node.signal_exit(pid, proc.pid, KILL, link=False)
        down = await receive(is_down)
    return down.reason  # type: ignore[no-any-return]


def report_shutdown(sup: Any, spec: ChildSpec, reason: ExitReason) -> None:
    """Log a ``shutdown_error`` report when a stopped child exited with an odd reason."""
    if isinstance(reason, Shutdown | Killed | Normal):
        return
    logger.error("supervisor %r: child %r did not shut down cleanly: %r", sup, spec.id, reason,
                 extra={"otpy_report": "shutdown_error", "otpy_supervisor": sup,
                        "otpy_child_id": spec.id, "otpy_reason": reason})




async def shutdown_children(sup: Any, children: Sequence[tuple[Pid, ChildSpec]]) -> None:
    """Stop several linked children at once and wait until all are gone.

    Every child is monitored, unlinked and sent `Shutdown` (`Kill` for
    "brutal_kill") at the same moment; each one still running ``shutdown``
    seconds later is killed. This is how OTP stops a ``simple_one_for_one``
    supervisor's children (erl: three children taking 1, 1 and 5 s to
    terminate, with shutdown 2 s, are all gone after 2 s).

    Args:
        sup: the supervisor, for reports.
        children: ``(pid, spec)`` pairs.
    """
    proc = current()
    node = proc.node
    me = proc.pid
    now = trio.current_time()
    pending: dict[Any, tuple[Pid, float | None, ChildSpec]] = {}
    for pid, spec in children:
        ref = node.monitor(proc, pid)
        node.unlink(proc, pid)
        deadline: float | None = None
        if spec.shutdown == "brutal_kill":
            node.signal_exit(pid, me, KILL, link=False)
        else:
            node.signal_exit(pid, me, SHUTDOWN, link=False)
            if spec.shutdown != "infinity":
                deadline = now + float(spec.shutdown or 0)
        pending[ref] = (pid, deadline, spec)

    def is_down(m: Any) -> bool:
        return type(m) is Down and m.ref in pending

    while pending:
        deadlines = [d for _, d, _ in pending.values() if d is not None]
        timeout = max(0.0, min(deadlines) - trio.current_time()) if deadlines else None
        try:
            down = await receive(is_down, timeout=timeout)
        except Timeout:
            t = trio.current_time()
            for ref, (pid, deadline, spec) in list(pending.items()):
                if deadline is not None and deadline <= t:
                    node.signal_exit(pid, me, KILL, link=False)
                    pending[ref] = (pid, None, spec)
            continue
        _, _, spec = pending.pop(down.ref)
        report_shutdown(sup, spec, down.reason)


@attrs.define(slots=True, eq=False)
class _Child:
    spec: ChildSpec
    pid: Pid | None = None
    # A restart of this child failed; a retry is queued (pid is None meanwhile).
    restarting: bool = False


_RETRY = ("$otpy_supervisor", "try_again")


class Supervisor(GenServer):
    """A supervisor of an ordered list of children. See the module docs."""

    trap_exits = True
    observer_kind = "supervisor"

    children: list[_Child]
    strategy: Strategy
    intensity: Intensity

    # ------------------------------------------------------------ API

    @classmethod
    async def start_link(  # type: ignore[override]
        cls,
        children: Sequence[ChildSpec] = (),
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5,
        name: Any = None,
        timeout: float | None = None,
    ) -> Pid:
        """Start a supervisor linked to the caller, with its children started.

        Args:
            children: child specs, started left to right.
            strategy: "one_for_one", "one_for_all" or "rest_for_one".
            max_restarts: restarts allowed within ``max_seconds``.
            max_seconds: the intensity window.
            name: register the supervisor under this name.
            timeout: seconds the whole start may take (None: no limit).

        Returns:
            The supervisor's pid.

        Raises:
            StartError: a child failed to start (the reason is
                ``Shutdown(("failed_to_start_child", id, reason))``), or the
                arguments are invalid (``TermReason(("supervisor_data",
                (what, value)))`` for the strategy and intensity flags,
                ``TermReason(("start_spec", (what, value)))`` for the children),
                as Erlang's ``supervisor:start_link`` returns them.
        """
        return await super().start_link(
            list(children), strategy, max_restarts, max_seconds, name=name, timeout=timeout
        )

    @classmethod
    def child_spec(  # type: ignore[override]
        cls,
        children: Sequence[ChildSpec] = (),
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5,
        *,
        id: Any = None,
        name: Any = None,
        restart: RestartType = "permanent",
        shutdown: float | str = "infinity",
    ) -> ChildSpec:
        """A spec that runs this supervisor as a child of another (nesting).

        Returns:
            The spec (type "supervisor", shutdown "infinity" by default).
        """
        return ChildSpec(
            id=id if id is not None else (name if name is not None else cls.__name__),
            start=(cls.start_link, (list(children), strategy, max_restarts, max_seconds),
                   {"name": name}),
            restart=restart,
            shutdown=shutdown,
            type="supervisor",
            modules=[cls.__name__],
        )

    @staticmethod
    async def which_children(sup: Any) -> list[ChildInfo]:
        """Every child, in start order: ``ChildInfo(id, pid, type, modules)``.

        ``pid`` is None for a child that is not running and `RESTARTING` for
        one whose restart failed and is being retried.
        """
        return await call(sup, ("which_children",), None)  # type: ignore[no-any-return]

    @staticmethod
    async def count_children(sup: Any) -> dict[str, int]:
        """Counts: ``specs``, ``active``, ``supervisors``, ``workers``."""
        return await call(sup, ("count_children",), None)  # type: ignore[no-any-return]

    @staticmethod
    async def start_child(sup: Any, spec: ChildSpec) -> Pid | None:
        """Add a child spec and start it.

        Returns:
            The pid (None if the child ignored the start).

        Raises:
            SupervisorError: duplicate id, ``("invalid_child_spec", spec)``
                when ``spec`` is not a `ChildSpec`, or the start failure.
        """
        return _checked(await call(sup, ("start_child", spec), None))  # type: ignore[no-any-return]

    @staticmethod
    async def terminate_child(sup: Any, child_id: Any) -> None:
        """Stop a child, keeping its spec (a temporary child's spec is removed).

        A child in a restart loop (`RESTARTING`) stops being retried.
        """
        _checked(await call(sup, ("terminate_child", child_id), None))

    @staticmethod
    async def restart_child(sup: Any, child_id: Any) -> Pid | None:
        """Start a terminated child again from its spec."""
        return _checked(await call(sup, ("restart_child", child_id), None))  # type: ignore[no-any-return]

    @staticmethod
    async def delete_child(sup: Any, child_id: Any) -> None:
        """Remove the spec of a terminated child."""
        _checked(await call(sup, ("delete_child", child_id), None))

    # ------------------------------------------------------- callbacks

    async def init(
        self,
        children: list[ChildSpec],
        strategy: Strategy,
        max_restarts: int,
        max_seconds: float,
    ) -> None:
        if strategy not in STRATEGIES:
            raise Stop(TermReason(("supervisor_data", ("invalid_strategy", strategy))))
        bad = check_flags(max_restarts, max_seconds)
        if bad is not None:
            raise Stop(TermReason(("supervisor_data", bad)))
        bad = check_start_spec(children)
        if bad is not None:
            raise Stop(TermReason(("start_spec", bad)))
        self.strategy = strategy
        self.intensity = Intensity(max_restarts, max_seconds)
        self.children = []
        if telemetry.active:
            telemetry.execute(_INIT, {}, {
                "supervisor": self.pid, "kind": "supervisor", "strategy": strategy,
                "max_restarts": max_restarts, "max_seconds": max_seconds, "children": children})
        for spec in children:
            child = _Child(spec)
            try:
                child.pid = await self._start(spec)
            except StartError as err:
                await self._terminate_children(self.children)
                raise Stop(Shutdown(("failed_to_start_child", spec.id, err.reason))) from None
            if child.pid is not None or spec.restart != "temporary":
                self.children.append(child)

    async def _start(self, spec: ChildSpec) -> Pid | None:
        try:
            pid = await start_from_spec(spec)
        except StartError as err:
            logger.error("supervisor %r: child %r failed to start: %r", self.pid, spec.id,
                         err.reason, extra={"otpy_report": "start_error",
                                            "otpy_supervisor": self.pid,
                                            "otpy_child_id": spec.id, "otpy_reason": err.reason})
            if telemetry.active:
                telemetry.execute(_START_ERROR, {}, {"supervisor": self.pid, "id": spec.id,
                                                     "reason": err.reason})
            raise
        if telemetry.active:
            telemetry.execute(_STARTED, {}, {"supervisor": self.pid, "id": spec.id, "pid": pid,
                                             "spec": spec})
        if logger.isEnabledFor(logging.INFO):
            logger.info("supervisor %r started child %r as %r", self.pid, spec.id, pid,
                        extra={"otpy_report": "progress", "otpy_supervisor": self.pid,
                               "otpy_child_id": spec.id, "otpy_child_pid": pid})
        return pid

    async def terminate(self, reason: ExitReason) -> None:
        await self._terminate_children(self.children)

    async def _terminate_children(self, children: list[_Child]) -> None:
        """Stop ``children`` right to left; temporary ones lose their spec."""
        for child in reversed(children):
            await self._shutdown(child)
        for child in [c for c in children if c.spec.restart == "temporary"]:
            if child in self.children:
                self.children.remove(child)

    async def _shutdown(self, child: _Child) -> None:
        pid = child.pid
        child.restarting = False
        if pid is None:
            return
        child.pid = None
        if telemetry.active:
            telemetry.execute(_SHUTDOWN, {}, {"supervisor": self.pid, "id": child.spec.id,
                                              "pid": pid})
        reason = await shutdown_child(pid, child.spec.shutdown)
        report_shutdown(self.pid, child.spec, reason)

    async def handle_info(self, message: Any) -> None:
        if type(message) is Exit:
            await self._child_exit(message.pid, message.reason)
        elif type(message) is tuple and len(message) == 3 and message[:2] == _RETRY:
            child = self._by_id(message[2])
            if child is not None and child.restarting:
                if telemetry.active:
                    telemetry.execute(_RESTART, {}, {"supervisor": self.pid, "id": child.spec.id,
                                                     "pid": None, "reason": None, "retry": True})
                await self._restart(child)
        # anything else is ignored, as in OTP

    def children_info(self) -> list[ChildInfo]:
        """`which_children`'s answer, read from the state (the observer reads it so)."""
        return [
            ChildInfo(c.spec.id, RESTARTING if c.restarting else c.pid, c.spec.type,
                      c.spec.modules or [])
            for c in self.children
        ]

    def format_status(self) -> dict[str, Any]:
        """Strategy, intensity and children counts (for the observer)."""
        return {"strategy": self.strategy, "max_restarts": self.intensity.max_restarts,
                "max_seconds": self.intensity.max_seconds, "children": len(self.children),
                "active": sum(1 for c in self.children if c.pid is not None)}

    async def handle_call(self, request: Any, caller: Any) -> Any:
        op = request[0]
        if op == "which_children":
            return self.children_info()
        if op == "count_children":
            return {
                "specs": len(self.children),
                "active": sum(1 for c in self.children if c.pid is not None),
                "supervisors": sum(1 for c in self.children if c.spec.type == "supervisor"),
                "workers": sum(1 for c in self.children if c.spec.type == "worker"),
            }
        if op == "start_child":
            return await self._api_start_child(request[1])
        child = self._by_id(request[1])
        if child is None:
            return _Err("not_found")
        if op == "terminate_child":
            await self._shutdown(child)
            if child.spec.restart == "temporary":
                self.children.remove(child)
            return None
        if op == "restart_child":
            if child.pid is not None:
                return _Err("running")
            if child.restarting:
                return _Err("restarting")
            return await self._start_or_err(child)
        if op == "delete_child":
            if child.pid is not None:
                return _Err("running")
            if child.restarting:
                return _Err("restarting")
            self.children.remove(child)
            return None
        raise ValueError(f"unknown supervisor request {request!r}")

    async def _api_start_child(self, spec: Any) -> Any:
        # Checked here, not only by the caller: a bad request must not crash
        # the supervisor and its children (erl: {error,{invalid_child_spec,X}}).
        if not isinstance(spec, ChildSpec):
            return _Err(("invalid_child_spec", spec))
        existing = self._by_id(spec.id)
        if existing is not None:
            if existing.pid is not None:
                return _Err(("already_started", existing.pid))
            return _Err("already_present")
        child = _Child(spec)
        result = await self._start_or_err(child)
        if not isinstance(result, _Err) and (child.pid is not None or spec.restart != "temporary"):
            self.children.append(child)
        return result

    async def _start_or_err(self, child: _Child) -> Any:
        try:
            child.pid = await self._start(child.spec)
        except StartError as err:
            return _Err(err.reason)
        return child.pid

    def _by_id(self, child_id: Any) -> _Child | None:
        for c in self.children:
            if c.spec.id == child_id:
                return c
        return None

    def _by_pid(self, pid: Pid) -> _Child | None:
        for c in self.children:
            if c.pid == pid:
                return c
        return None

    # --------------------------------------------------------- restarts

    async def _child_exit(self, pid: Pid, reason: ExitReason) -> None:
        child = self._by_pid(pid)
        if child is None:
            return
        child.pid = None
        spec = child.spec
        restart = should_restart(spec.restart, reason)
        if not is_quiet(reason):
            logger.error("supervisor %r: child %r (%r) terminated with reason %r", self.pid,
                         spec.id, pid, reason, extra={
                             "otpy_report": "child_terminated", "otpy_supervisor": self.pid,
                             "otpy_child_id": spec.id, "otpy_child_pid": pid,
                             "otpy_reason": reason})
        if not restart:
            if spec.restart == "temporary":
                self.children.remove(child)
            return
        if telemetry.active:
            telemetry.execute(_RESTART, {}, {"supervisor": self.pid, "id": spec.id, "pid": pid,
                                             "reason": reason, "retry": False})
        await self._restart(child)

    async def _restart(self, child: _Child) -> None:
        """Restart ``child`` by the strategy (also a retry of a failed restart).

        As OTP's ``supervisor:restart/2``: the group (the child; every child;
        the child and those after it) is stopped right to left — temporary
        ones are dropped — and started left to right. If a start fails, the
        children before it keep running, that child is marked `RESTARTING`
        and the supervisor sends itself a retry, which restarts the group
        *of the failed child* again from scratch (so a one_for_all sibling
        started by the failed attempt is stopped once more).
        """
        if not self.intensity.add():
            logger.error("supervisor %r reached max restart intensity (%d in %ss); shutting down",
                         self.pid, self.intensity.max_restarts, self.intensity.max_seconds,
                         extra={"otpy_report": "reached_max_restart_intensity",
                                "otpy_supervisor": self.pid, "otpy_child_id": child.spec.id,
                                "otpy_max_restarts": self.intensity.max_restarts,
                                "otpy_max_seconds": self.intensity.max_seconds})
            if telemetry.active:
                telemetry.execute(_GIVE_UP, {}, {"supervisor": self.pid, "id": child.spec.id})
            raise Stop(SHUTDOWN)
        if self.strategy == "one_for_one":
            group = [child]
        elif self.strategy == "one_for_all":
            group = list(self.children)
        else:
            group = self.children[self.children.index(child):]
        # The exited child has no pid: only the others are stopped here.
        for c in reversed(group):
            await self._shutdown(c)
        for c in group:
            if c.spec.restart == "temporary" and c is not child:
                self.children.remove(c)
        group = [c for c in group if c in self.children]
        for c in group:
            try:
                c.pid = await self._start(c.spec)
            except StartError:
                c.restarting = True
                current().node.send(self.pid, (*_RETRY, c.spec.id))
                return
            if c.pid is None and c.spec.restart == "temporary":
                self.children.remove(c)


class _Err:
    __slots__ = ("reason",)

    def __init__(self, reason: Any) -> None:
        self.reason = reason


def _checked(result: Any) -> Any:
    if isinstance(result, _Err):
        raise SupervisorError(result.reason)
    return result
