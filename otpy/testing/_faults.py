"""Faults and reports: `Fault`, `Action`, and the `Report` that `inject` returns.

A `Fault` says when (virtual seconds after the previous one), where (a path
of child ids, a registered name, or an index into the tree's live
processes) and what (an exit, or any `Action`). A `Report` holds the
timeline — faults, exits, restarts and give-ups with their virtual times —
the violations, and a replayable ``inject`` call. `inject` itself is in
``_inject``, the model-driven checks in ``_checker``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import trio

from otpy._node import Node
from otpy._process import Process
from otpy._reasons import ExitReason
from otpy._registry import Global, Via
from otpy._terms import Pid

if TYPE_CHECKING:
    from otpy.testing._checker import Checker

__all__ = [
    "Action",
    "Fault",
    "FaultContext",
    "InjectedFault",
    "Pause",
    "Report",
    "Timeline",
    "TimelineEntry",
    "fault_repr",
]

EXIT_ACTIONS = ("kill", "crash", "normal", "shutdown")


class InjectedFault(Exception):
    """The exception inside the `Crash` reason of an injected ``"crash"``."""


@attrs.frozen
class Fault:
    """One fault of a schedule.

    Attributes:
        at: virtual seconds after the previous fault (or the start).
        target: a tuple of child ids from the root (``("workers", "w2")``;
            an int picks a DynamicSupervisor's child by position), a
            registered name (str, `otpy.Global`, `otpy.Via`), a pid, or an
            ``int`` picking among the tree's live processes in a stable
            order (modulo their number): depth first through the supervisors
            and their children, then the processes those are linked to.
        action: "kill" (the untrappable `Kill`), "crash" (the process exits
            at once with ``Crash(InjectedFault())``), "normal" or "shutdown"
            (a GenServer stops in order with that reason, running
            `terminate`; another process exits at once with it), an
            `otpy.ExitReason` (sent as an exit signal with Erlang's rules, so
            a process trapping exits gets a message), or an `Action`.
    """

    at: float
    target: Any
    action: Any = "kill"


class FaultContext:
    """What an `Action` may use: the node, the injecting process, the model.

    Attributes:
        node: the node.
        caller: the process running `inject`.
        report: the report being written (``report.note`` adds a line).
    """

    def __init__(self, node: Node, caller: Process, checker: Checker, report: Report) -> None:
        self.node = node
        self.caller = caller
        self.report = report
        self._checker = checker

    def is_genserver(self, pid: Pid) -> bool:
        """Whether ``pid`` is known to be a `GenServer` (started from a
        GenServer class's child spec, or a supervisor)."""
        return self._checker.is_genserver(pid)

    def describe(self, pid: Pid | None) -> str:
        """A readable name for a process of the tree (its path and pid)."""
        return self._checker.describe(pid)

    def spec(self, pid: Pid) -> Any:
        """The child spec ``pid`` was started from by its supervisor (or None)."""
        found = self._checker.owner.get(pid)
        return found[1].spec if found is not None else None


@attrs.frozen
class Action:
    """Base class of faults other than the built-in exits.

    Subclass it (an attrs class keeps the repr replayable) and implement
    `apply`. ``claudecode.testing`` has actions for sessions; `Cut` and
    `Partition` cut distribution connections.
    """

    #: False when the action ignores its target (it is then applied even if
    #: the tree has no live process left).
    needs_target = True

    async def apply(self, ctx: FaultContext, pid: Pid | None) -> None:
        """Do the fault.

        Args:
            ctx: the injection context.
            pid: the resolved target (None when there is none and
                ``needs_target`` is False).
        """
        raise NotImplementedError


@attrs.frozen
class Pause(Action):
    """No fault: only the time (the `Fault.at` before it) passes, then the
    tree is settled and checked. Ends a schedule with a quiet period."""

    needs_target = False

    async def apply(self, ctx: FaultContext, pid: Pid | None) -> None:
        """Nothing."""


# --------------------------------------------------------------- timeline


@attrs.frozen
class TimelineEntry:
    """One line of a timeline: a virtual time, a kind, a description."""

    t: float
    kind: str
    text: str

    def __str__(self) -> str:
        return f"{self.t:9.3f}  {self.kind:<9} {self.text}"


class Timeline(list[TimelineEntry]):
    """Faults, exits, restarts, starts and give-ups with their virtual times."""

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self)


@attrs.define
class Report:
    """What `inject` did and found.

    Attributes:
        schedule: the faults given.
        applied: how many of them were applied (injection stops at the
            first settle with a violation).
        timeline: faults, exits, restarts and give-ups, with virtual times.
        gave_up: supervisors (paths) that exceeded their restart intensity.
        violations: what broke an invariant (empty when all held).
        root: how the tree's root was named in the call.
        seed: the scheduler seed, when known (for the replay line).
    """

    schedule: list[Fault]
    applied: int = 0
    timeline: Timeline = attrs.Factory(Timeline)
    gave_up: list[str] = attrs.Factory(list)
    violations: list[str] = attrs.Factory(list)
    root: str = "root"
    seed: int | None = None
    origin: float = 0.0

    def note(self, kind: str, text: str) -> None:
        """Add a timeline line at the current (virtual) time."""
        self.timeline.append(TimelineEntry(trio.current_time() - self.origin, kind, text))

    @property
    def ok(self) -> bool:
        """True when no invariant was violated."""
        return not self.violations

    def replay(self) -> str:
        """Python code that replays the schedule up to the failing fault."""
        faults = self.schedule[: max(self.applied, 1)] if self.violations else self.schedule
        lines = ",\n".join(f"    {fault_repr(f)}" for f in faults)
        return f"report = await otpy.testing.inject({self.root}, [\n{lines},\n])"

    def __str__(self) -> str:
        head = (f"{len(self.violations)} violation(s) after {self.applied} of "
                f"{len(self.schedule)} fault(s)" if self.violations
                else f"all invariants held over {self.applied} fault(s)")
        parts = [head]
        if self.violations:
            parts.append("violations:\n" + "\n".join(f"  - {v}" for v in self.violations))
        parts.append("timeline:\n" + str(self.timeline))
        where = (f" (inside otpy.testing.run(..., seed={self.seed}), with {self.root} the "
                 f"tree's root)" if self.seed is not None else "")
        parts.append(f"replay{where}:\n{self.replay()}")
        return "\n".join(parts)

    def check(self) -> None:
        """Raise if any invariant was violated.

        Raises:
            AssertionError: with the violations, the timeline and the replay.
        """
        if self.violations:
            raise AssertionError(str(self))


def fault_repr(fault: Fault) -> str:
    """``Fault(...)`` as code that runs after ``import otpy``."""
    action = fault.action
    if isinstance(action, ExitReason):
        text = f"otpy.{action!r}"
    elif isinstance(action, Action):
        module = type(action).__module__
        prefix = "otpy.testing." if module.startswith("otpy.testing") else (
            "claudecode.testing." if module.startswith("claudecode.testing") else "")
        text = f"{prefix}{action!r}"
    else:
        text = repr(action)
    target = fault.target
    target_text = f"otpy.{target!r}" if isinstance(target, Global | Via) else repr(target)
    return f"otpy.testing.Fault(at={fault.at!r}, target={target_text}, action={text})"
