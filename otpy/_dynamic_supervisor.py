"""DynamicSupervisor: children started on demand, identified by pid.

The modern form of OTP's simple_one_for_one: every child is restarted on its
own (one_for_one), children can be added at any time up to ``max_children``,
and restart intensity is counted across the supervisor as for `Supervisor`.
A restart that fails is retried; meanwhile the child is listed under its old
pid as `RESTARTING`. On shutdown all children are stopped at once.
"""

from __future__ import annotations

import logging
from typing import Any

from otpy import telemetry
from otpy._child_spec import ChildSpec, RestartType
from otpy._genserver import GenServer, StartError, Stop, call
from otpy._process import current
from otpy._reasons import SHUTDOWN, Exit, ExitReason, TermReason, is_quiet
from otpy._supervisor import (
    RESTARTING,
    ChildInfo,
    Intensity,
    SupervisorError,
    check_flags,
    should_restart,
    shutdown_child,
    shutdown_children,
    start_from_spec,
)
from otpy._terms import Pid

__all__ = ["DynamicSupervisor"]

logger = logging.getLogger("otpy.supervisor")
# telemetry events (docs/otpy/telemetry.md); children are identified by pid (id None)
_INIT = ("otpy", "supervisor", "init")
_STARTED = ("otpy", "supervisor", "child_started")
_START_ERROR = ("otpy", "supervisor", "start_error")
_RESTART = ("otpy", "supervisor", "restart")
_GIVE_UP = ("otpy", "supervisor", "give_up")
_SHUTDOWN = ("otpy", "supervisor", "child_shutdown")

_RETRY = "$otpy_dynsup_retry"


class DynamicSupervisor(GenServer):
    """A supervisor of children started one by one with `start_child`."""

    trap_exits = True
    observer_kind = "supervisor"

    # Children by pid, in order of their (latest) start; a child whose
    # restart failed stays under its old pid, listed in ``restarting``.
    children: dict[Pid, ChildSpec]
    restarting: set[Pid]
    intensity: Intensity
    max_children: int | None

    @classmethod
    async def start_link(  # type: ignore[override]
        cls,
        max_children: int | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5,
        name: Any = None,
        timeout: float | None = None,
    ) -> Pid:
        """Start an (empty) dynamic supervisor linked to the caller.

        Args:
            max_children: the most children it will hold (None: no limit).
            max_restarts: restarts allowed within ``max_seconds``.
            max_seconds: the intensity window.
            name: register it under this name.
            timeout: seconds the start may take.

        Returns:
            Its pid.

        Raises:
            StartError: invalid flags (``TermReason(("supervisor_data",
                (what, value)))``, as for `Supervisor`).
        """
        return await super().start_link(
            max_children, max_restarts, max_seconds, name=name, timeout=timeout
        )

    @classmethod
    def child_spec(  # type: ignore[override]
        cls,
        max_children: int | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5,
        *,
        id: Any = None,
        name: Any = None,
        restart: RestartType = "permanent",
    ) -> ChildSpec:
        """A spec that runs this dynamic supervisor under another supervisor."""
        return ChildSpec(
            id=id if id is not None else (name if name is not None else cls.__name__),
            start=(cls.start_link, (max_children, max_restarts, max_seconds), {"name": name}),
            restart=restart,
            shutdown="infinity",
            type="supervisor",
            modules=[cls.__name__],
        )

    @staticmethod
    async def start_child(sup: Any, spec: ChildSpec) -> Pid | None:
        """Start a child from ``spec``.

        Returns:
            Its pid, or None if it ignored the start.

        Raises:
            SupervisorError: "max_children", ``("invalid_child_spec", spec)``
                when ``spec`` is not a `ChildSpec`, or the start failure's
                reason.
        """
        result = await call(sup, ("start_child", spec), None)
        if isinstance(result, SupervisorError):
            raise result
        return result  # type: ignore[no-any-return]

    @staticmethod
    async def terminate_child(sup: Any, pid: Pid) -> None:
        """Stop a child; it is not restarted. For a child in a restart loop
        (listed as `RESTARTING` under its old pid) this ends the retries.

        Raises:
            SupervisorError: "not_found".
        """
        result = await call(sup, ("terminate_child", pid), None)
        if isinstance(result, SupervisorError):
            raise result

    @staticmethod
    async def which_children(sup: Any) -> list[ChildInfo]:
        """Every child: ``ChildInfo(None, pid, type, modules)``; ``pid`` is
        `RESTARTING` for a child whose restart failed and is being retried."""
        return await call(sup, ("which_children",), None)  # type: ignore[no-any-return]

    @staticmethod
    async def count_children(sup: Any) -> dict[str, int]:
        """Counts: ``specs``, ``active``, ``supervisors``, ``workers``."""
        return await call(sup, ("count_children",), None)  # type: ignore[no-any-return]

    # ------------------------------------------------------- callbacks

    async def init(
        self, max_children: int | None, max_restarts: int, max_seconds: float
    ) -> None:
        if max_children is not None and (
            not isinstance(max_children, int) or isinstance(max_children, bool)
            or max_children < 0
        ):
            raise Stop(TermReason(("supervisor_data", ("invalid_max_children", max_children))))
        bad = check_flags(max_restarts, max_seconds)
        if bad is not None:
            raise Stop(TermReason(("supervisor_data", bad)))
        self.children = {}
        self.restarting = set()
        self.max_children = max_children
        self.intensity = Intensity(max_restarts, max_seconds)
        if telemetry.active:
            telemetry.execute(_INIT, {}, {
                "supervisor": self.pid, "kind": "dynamic", "strategy": "one_for_one",
                "max_restarts": max_restarts, "max_seconds": max_seconds, "children": []})

    def children_info(self) -> list[ChildInfo]:
        """`which_children`'s answer, read from the state (the observer reads it so)."""
        return [ChildInfo(None, RESTARTING if pid in self.restarting else pid, s.type,
                          s.modules or [])
                for pid, s in self.children.items()]

    def format_status(self) -> dict[str, Any]:
        """Limits and children counts (for the observer)."""
        return {"strategy": "one_for_one", "max_children": self.max_children,
                "max_restarts": self.intensity.max_restarts,
                "max_seconds": self.intensity.max_seconds, "children": len(self.children),
                "restarting": len(self.restarting)}

    async def handle_call(self, request: Any, caller: Any) -> Any:
        op = request[0]
        if op == "start_child":
            spec = request[1]
            # Checked here so that a bad request cannot crash the supervisor.
            if not isinstance(spec, ChildSpec):
                return SupervisorError(("invalid_child_spec", spec))
            if self.max_children is not None and len(self.children) >= self.max_children:
                return SupervisorError("max_children")
            try:
                pid = await start_from_spec(spec)
            except StartError as err:
                return SupervisorError(err.reason)
            if pid is not None:
                self.children[pid] = spec
            if telemetry.active:
                telemetry.execute(_STARTED, {}, {"supervisor": self.pid, "id": None, "pid": pid,
                                                 "spec": spec})
            return pid
        if op == "terminate_child":
            pid = request[1]
            found = self.children.pop(pid, None) if type(pid) is Pid else None
            if found is None:
                return SupervisorError("not_found")
            if pid in self.restarting:
                self.restarting.discard(pid)  # its queued retry is now ignored
                return None
            if telemetry.active:
                telemetry.execute(_SHUTDOWN, {}, {"supervisor": self.pid, "id": None,
                                                  "pid": pid})
            await shutdown_child(pid, found.shutdown)
            return None
        if op == "which_children":
            return self.children_info()
        if op == "count_children":
            specs = list(self.children.values())
            return {
                "specs": len(specs),
                "active": len(specs) - len(self.restarting),
                "supervisors": sum(1 for s in specs if s.type == "supervisor"),
                "workers": sum(1 for s in specs if s.type == "worker"),
            }
        raise ValueError(f"unknown request {request!r}")

    async def handle_info(self, message: Any) -> None:
        if type(message) is Exit:
            await self._child_exit(message.pid, message.reason)
        elif type(message) is tuple and len(message) == 2 and message[0] == _RETRY:
            old = message[1]
            if old in self.restarting:
                self.restarting.discard(old)
                if telemetry.active:
                    telemetry.execute(_RESTART, {}, {"supervisor": self.pid, "id": None,
                                                     "pid": None, "reason": None, "retry": True})
                await self._restart(old, self.children.pop(old))

    async def _child_exit(self, pid: Pid, reason: ExitReason) -> None:
        if pid in self.restarting:
            return
        spec = self.children.pop(pid, None)
        if spec is None:
            return
        if not is_quiet(reason):
            logger.error("dynamic supervisor %r: child %r terminated with reason %r", self.pid,
                         pid, reason, extra={
                             "otpy_report": "child_terminated", "otpy_supervisor": self.pid,
                             "otpy_child_id": None, "otpy_child_pid": pid,
                             "otpy_reason": reason})
        if should_restart(spec.restart, reason):
            if telemetry.active:
                telemetry.execute(_RESTART, {}, {"supervisor": self.pid, "id": None, "pid": pid,
                                                 "reason": reason, "retry": False})
            await self._restart(pid, spec)

    async def _restart(self, old: Pid, spec: ChildSpec) -> None:
        if not self.intensity.add():
            logger.error("dynamic supervisor %r reached max restart intensity; shutting down",
                         self.pid, extra={
                             "otpy_report": "reached_max_restart_intensity",
                             "otpy_supervisor": self.pid, "otpy_child_id": None,
                             "otpy_max_restarts": self.intensity.max_restarts,
                             "otpy_max_seconds": self.intensity.max_seconds})
            if telemetry.active:
                telemetry.execute(_GIVE_UP, {}, {"supervisor": self.pid, "id": None})
            raise Stop(SHUTDOWN)
        try:
            pid = await start_from_spec(spec)
        except StartError as err:
            logger.error("dynamic supervisor %r: child %r failed to restart: %r", self.pid,
                         old, err.reason, extra={
                             "otpy_report": "start_error", "otpy_supervisor": self.pid,
                             "otpy_child_id": None, "otpy_child_pid": old,
                             "otpy_reason": err.reason})
            if telemetry.active:
                telemetry.execute(_START_ERROR, {}, {"supervisor": self.pid, "id": None,
                                                     "reason": err.reason})
            self.children[old] = spec
            self.restarting.add(old)
            current().node.send(self.pid, (_RETRY, old))
            return
        if pid is not None:
            self.children[pid] = spec
        if telemetry.active:
            telemetry.execute(_STARTED, {}, {"supervisor": self.pid, "id": None, "pid": pid,
                                             "spec": spec})

    async def terminate(self, reason: ExitReason) -> None:
        running = [(pid, spec) for pid, spec in self.children.items()
                   if pid not in self.restarting]
        if telemetry.active:
            for pid, _spec in reversed(running):
                telemetry.execute(_SHUTDOWN, {}, {"supervisor": self.pid, "id": None, "pid": pid})
        await shutdown_children(self.pid, running)
        self.children.clear()
        self.restarting.clear()
