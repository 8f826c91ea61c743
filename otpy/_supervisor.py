"""Supervisor: child specs, restart strategies, restart intensity, shutdown.

A supervisor is a `GenServer` that traps exits. Children start left to right,
each synchronously; they stop right to left. When a child exits the
supervisor applies the child's restart type (permanent / transient /
temporary) and its strategy (one_for_one / one_for_all / rest_for_one).
More than ``max_restarts`` restarts within ``max_seconds`` — counted across
the whole supervisor — make it shut every child down and exit `Shutdown`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal

import attrs
import trio

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
    "ChildInfo",
    "ChildSpec",
    "Intensity",
    "Supervisor",
    "SupervisorError",
    "shutdown_child",
    "start_from_spec",
]

logger = logging.getLogger("otpy.supervisor")

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]


@attrs.frozen
class ChildInfo:
    """One row of `which_children`: ``(id, pid, type, modules)``."""

    id: Any
    pid: Pid | None
    type: str
    modules: list[str]

    def __iter__(self) -> Any:
        return iter((self.id, self.pid, self.type, self.modules))


class SupervisorError(Exception):
    """A child API request failed: ``.reason`` is "not_found", "running",
    "restarting", "already_present", ("already_started", pid), "max_children"
    or a start failure."""

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


def _report_shutdown(sup: Any, spec: ChildSpec, reason: ExitReason) -> None:
    if isinstance(reason, Shutdown | Killed | Normal):
        return
    logger.error("supervisor %r: child %r did not shut down cleanly: %r", sup, spec.id, reason,
                 extra={"otpy_report": "shutdown_error"})


@attrs.define(slots=True, eq=False)
class _Child:
    spec: ChildSpec
    pid: Pid | None = None
    restarting: bool = False


_RETRY = ("$otpy_supervisor", "try_again")


class Supervisor(GenServer):
    """A supervisor of an ordered list of children. See the module docs."""

    trap_exits = True

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
                ``Shutdown(("failed_to_start_child", id, reason))``).
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
        """Every child, in start order: ``ChildInfo(id, pid | None, type, modules)``."""
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
            SupervisorError: duplicate id or start failure.
        """
        return _checked(await call(sup, ("start_child", spec), None))  # type: ignore[no-any-return]

    @staticmethod
    async def terminate_child(sup: Any, child_id: Any) -> None:
        """Stop a child, keeping its spec (a temporary child's spec is removed)."""
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
        if strategy not in ("one_for_one", "one_for_all", "rest_for_one"):
            raise ValueError(f"unknown strategy {strategy!r}")
        self.strategy = strategy
        self.intensity = Intensity(max_restarts, max_seconds)
        self.children = []
        ids = set()
        for spec in children:
            if not isinstance(spec, ChildSpec):
                raise TypeError(f"not a ChildSpec: {spec!r}")
            if spec.id in ids:
                raise Stop(Shutdown(("duplicate_child_name", spec.id)))
            ids.add(spec.id)
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
                         err.reason, extra={"otpy_report": "start_error"})
            raise
        if logger.isEnabledFor(logging.INFO):
            logger.info("supervisor %r started child %r as %r", self.pid, spec.id, pid,
                        extra={"otpy_report": "progress"})
        return pid

    async def terminate(self, reason: ExitReason) -> None:
        await self._terminate_children(self.children)

    async def _terminate_children(self, children: list[_Child]) -> None:
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
        reason = await shutdown_child(pid, child.spec.shutdown)
        _report_shutdown(self.pid, child.spec, reason)

    async def handle_info(self, message: Any) -> None:
        if type(message) is Exit:
            await self._child_exit(message.pid, message.reason)
        elif message == _RETRY or (type(message) is tuple and message[:2] == _RETRY):
            child = self._by_id(message[2])
            if child is not None and child.restarting:
                await self._restart(child)
        # anything else is ignored, as in OTP

    async def handle_call(self, request: Any, caller: Any) -> Any:
        op = request[0]
        if op == "which_children":
            return [
                ChildInfo(c.spec.id, c.pid, c.spec.type, c.spec.modules or [])
                for c in self.children
            ]
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

    async def _api_start_child(self, spec: ChildSpec) -> Any:
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
                         spec.id, pid, reason, extra={"otpy_report": "child_terminated"})
        if not restart:
            if spec.restart == "temporary":
                self.children.remove(child)
            return
        await self._restart(child)

    async def _restart(self, child: _Child) -> None:
        if not self.intensity.add():
            logger.error("supervisor %r reached max restart intensity (%d in %ss); shutting down",
                         self.pid, self.intensity.max_restarts, self.intensity.max_seconds,
                         extra={"otpy_report": "reached_max_restart_intensity"})
            raise Stop(SHUTDOWN)
        child.restarting = False
        if self.strategy == "one_for_one":
            group = [child]
        else:
            i = self.children.index(child)
            others = self.children[i + 1:] if self.strategy == "rest_for_one" else [
                c for c in self.children if c is not child]
            for other in reversed(others):
                await self._shutdown(other)
            for other in [c for c in others if c.spec.restart == "temporary"]:
                self.children.remove(other)
            group = [c for c in self.children if c is child or c in others]
        for c in group:
            if c.pid is not None:
                continue
            try:
                c.pid = await self._start(c.spec)
            except StartError:
                child.restarting = True
                c.restarting = True
                current().node.send(self.pid, (*_RETRY, child.spec.id))
                return


class _Err:
    __slots__ = ("reason",)

    def __init__(self, reason: Any) -> None:
        self.reason = reason


def _checked(result: Any) -> Any:
    if isinstance(result, _Err):
        raise SupervisorError(result.reason)
    return result
