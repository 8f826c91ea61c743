"""DynamicSupervisor: children started on demand, identified by pid.

The modern form of OTP's simple_one_for_one: every child is restarted on its
own (one_for_one), children can be added at any time up to ``max_children``,
and restart intensity is counted across the supervisor as for `Supervisor`.
"""

from __future__ import annotations

import logging
from typing import Any

from otpy import telemetry
from otpy._genserver import GenServer, StartError, Stop, call
from otpy._reasons import SHUTDOWN, Exit, ExitReason, is_quiet
from otpy._supervisor import (
    ChildInfo,
    ChildSpec,
    Intensity,
    SupervisorError,
    should_restart,
    shutdown_child,
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


class DynamicSupervisor(GenServer):
    """A supervisor of children started one by one with `start_child`."""

    trap_exits = True

    children: dict[Pid, ChildSpec]
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
        restart: str = "permanent",
    ) -> ChildSpec:
        """A spec that runs this dynamic supervisor under another supervisor."""
        return ChildSpec(
            id=id if id is not None else (name if name is not None else cls.__name__),
            start=(cls.start_link, (max_children, max_restarts, max_seconds), {"name": name}),
            restart=restart,  # type: ignore[arg-type]
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
            SupervisorError: "max_children" or the start failure's reason.
        """
        result = await call(sup, ("start_child", spec), None)
        if isinstance(result, SupervisorError):
            raise result
        return result  # type: ignore[no-any-return]

    @staticmethod
    async def terminate_child(sup: Any, pid: Pid) -> None:
        """Stop a child; it is not restarted.

        Raises:
            SupervisorError: "not_found".
        """
        result = await call(sup, ("terminate_child", pid), None)
        if isinstance(result, SupervisorError):
            raise result

    @staticmethod
    async def which_children(sup: Any) -> list[ChildInfo]:
        """Every child: ``ChildInfo(None, pid, type, modules)``."""
        return await call(sup, ("which_children",), None)  # type: ignore[no-any-return]

    @staticmethod
    async def count_children(sup: Any) -> dict[str, int]:
        """Counts: ``specs``, ``active``, ``supervisors``, ``workers``."""
        return await call(sup, ("count_children",), None)  # type: ignore[no-any-return]

    # ------------------------------------------------------- callbacks

    async def init(
        self, max_children: int | None, max_restarts: int, max_seconds: float
    ) -> None:
        self.children = {}
        self.max_children = max_children
        self.intensity = Intensity(max_restarts, max_seconds)
        if telemetry.active:
            telemetry.execute(_INIT, {}, {
                "supervisor": self.pid, "kind": "dynamic", "strategy": "one_for_one",
                "max_restarts": max_restarts, "max_seconds": max_seconds, "children": []})

    async def handle_call(self, request: Any, caller: Any) -> Any:
        op = request[0]
        if op == "start_child":
            spec: ChildSpec = request[1]
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
            found = self.children.pop(request[1], None)
            if found is None:
                return SupervisorError("not_found")
            if telemetry.active:
                telemetry.execute(_SHUTDOWN, {}, {"supervisor": self.pid, "id": None,
                                                  "pid": request[1]})
            await shutdown_child(request[1], found.shutdown)
            return None
        if op == "which_children":
            return [ChildInfo(None, pid, s.type, s.modules or []) for pid, s in
                    self.children.items()]
        if op == "count_children":
            specs = list(self.children.values())
            return {
                "specs": len(specs),
                "active": len(specs),
                "supervisors": sum(1 for s in specs if s.type == "supervisor"),
                "workers": sum(1 for s in specs if s.type == "worker"),
            }
        raise ValueError(f"unknown request {request!r}")

    async def handle_info(self, message: Any) -> None:
        if type(message) is Exit:
            await self._child_exit(message.pid, message.reason)
        elif type(message) is tuple and message[:1] == ("$otpy_dynsup_retry",):
            if telemetry.active:
                telemetry.execute(_RESTART, {}, {"supervisor": self.pid, "id": None, "pid": None,
                                                 "reason": None, "retry": True})
            await self._restart(message[1])

    async def _child_exit(self, pid: Pid, reason: ExitReason) -> None:
        spec = self.children.pop(pid, None)
        if spec is None:
            return
        if not is_quiet(reason):
            logger.error("dynamic supervisor %r: child %r terminated with reason %r", self.pid,
                         pid, reason, extra={"otpy_report": "child_terminated"})
        if should_restart(spec.restart, reason):
            if telemetry.active:
                telemetry.execute(_RESTART, {}, {"supervisor": self.pid, "id": None, "pid": pid,
                                                 "reason": reason, "retry": False})
            await self._restart(spec)

    async def _restart(self, spec: ChildSpec) -> None:
        if not self.intensity.add():
            logger.error("dynamic supervisor %r reached max restart intensity; shutting down",
                         self.pid, extra={"otpy_report": "reached_max_restart_intensity"})
            if telemetry.active:
                telemetry.execute(_GIVE_UP, {}, {"supervisor": self.pid, "id": None})
            raise Stop(SHUTDOWN)
        try:
            pid = await start_from_spec(spec)
        except StartError as err:
            if telemetry.active:
                telemetry.execute(_START_ERROR, {}, {"supervisor": self.pid, "id": None,
                                                     "reason": err.reason})
            from otpy._process import current

            current().node.send(self.pid, ("$otpy_dynsup_retry", spec))
            return
        if pid is not None:
            self.children[pid] = spec
        if telemetry.active:
            telemetry.execute(_STARTED, {}, {"supervisor": self.pid, "id": None, "pid": pid,
                                             "spec": spec})

    async def terminate(self, reason: ExitReason) -> None:
        for pid, spec in reversed(list(self.children.items())):
            if telemetry.active:
                telemetry.execute(_SHUTDOWN, {}, {"supervisor": self.pid, "id": None, "pid": pid})
            await shutdown_child(pid, spec.shutdown)
        self.children.clear()
