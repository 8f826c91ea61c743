"""Fault injection: schedules of faults, `inject`, its checks and its report.

A `Fault` says when (virtual seconds after the previous one), where (a path
of child ids, a registered name, or an index into the tree's live
processes) and what (an exit, or any `Action`). `inject` applies a schedule
to a live tree, settles after each fault, and checks the built-in
invariants against a model of OTP supervision kept in step with the tree
through the node's telemetry events (`otpy.testing.record`):

* every supervisor reacts to each exit as its strategy, its children's
  restart types and its restart intensity say — the right children
  restarted, in order, the right siblings shut down, newest first, temporary
  children forgotten — and gives up exactly when the model says;
* after settling, each supervisor's children (ids, order, pids) are the
  model's;
* every registered name points at a live process, and a name that a
  restarted process held is held again;
* no process spawned inside the tree is left behind outside it, and no trio
  task outlives its process;
* the user's own invariants hold.

The report's timeline lists faults, exits, restarts and give-ups with their
virtual times; a failing report prints a replayable ``inject`` call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import attrs
import trio

from otpy._api import spawn
from otpy._genserver import call, stop
from otpy._node import Node
from otpy._process import Process, current
from otpy._reasons import (
    KILL,
    Crash,
    Exit,
    ExitReason,
    Normal,
    Shutdown,
)
from otpy._registry import Global, Via
from otpy._terms import Pid
from otpy.testing._model import ModelChild, Reaction, SupervisorModel, child_of, restarts_after
from otpy.testing._run import Entry, Recorder, recorder, settle

__all__ = [
    "Action",
    "Fault",
    "FaultContext",
    "InjectedFault",
    "Pause",
    "Report",
    "Timeline",
    "inject",
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

    def __init__(self, node: Node, caller: Process, checker: _Checker, report: Report) -> None:
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

    def note(self, kind: str, text: str) -> None:
        """Add a timeline line at the current virtual time."""
        self.timeline.append(TimelineEntry(trio.current_time(), kind, text))

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
        seed = f" (seed={self.seed})" if self.seed is not None else ""
        parts.append(f"replay{seed}:\n{self.replay()}")
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


# ---------------------------------------------------------------- checker


def _reason_text(reason: Any) -> str:
    if isinstance(reason, Crash) and isinstance(reason.exception, InjectedFault):
        return "Crash(InjectedFault())"
    return repr(reason)


@attrs.define(eq=False)
class _Pending:
    child: ModelChild
    reason: Any
    t: float


class _Checker:
    """Keeps models of every recorded supervisor in step with the events."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.node = rec.node
        self.index = 0  # next entry to process
        self.models: dict[Pid, SupervisorModel] = {}
        self.parent: dict[SupervisorModel, tuple[SupervisorModel, ModelChild]] = {}
        self.owner: dict[Pid, tuple[SupervisorModel, ModelChild]] = {}
        self.newborn: dict[Pid, SupervisorModel] = {}
        self.pending: dict[SupervisorModel, list[_Pending]] = {}
        self.expect_stop: dict[SupervisorModel, deque[ModelChild]] = {}
        self.expect_start: dict[SupervisorModel, deque[ModelChild]] = {}
        self.expect_give_up: set[SupervisorModel] = set()
        self.expect_exit: dict[Pid, str] = {}
        self.dead: dict[Pid, Any] = {}  # exited pids -> reason
        self.ever: set[Pid] = set()  # every pid ever seen in a checked tree
        self.genservers: set[Pid] = set()
        self.reported_leaks: set[Pid] = set()
        self.pid_child: dict[Pid, ModelChild] = {}  # every pid a child ever had
        self.labels: dict[Pid, str] = {}  # descriptions of named processes
        self.names: dict[Any, _Held] = {}
        self.sup_of: dict[ModelChild, SupervisorModel] = {}
        self.violations: list[str] = []
        self.report: Report | None = None
        self.task_baseline: int | None = None
        self.root: SupervisorModel | None = None
        self.root_pid: Pid | None = None
        self.root_name = "root"
        self.caller_pid: Pid | None = None

    # ---------------------------------------------------------- naming

    def path(self, model: SupervisorModel) -> str:
        parts: list[str] = []
        m = model
        while m in self.parent:
            sup, child = self.parent[m]
            parts.append(_id_text(child))
            m = sup
        root = self.root_name if m.pid == self.root_pid else f"{m.pid!r}"
        return "/".join([root, *reversed(parts)])

    def set_root(self, pid: Pid, name: str) -> None:
        """Make the model of ``pid`` the root (None when it is not a supervisor)."""
        self.root = self.models.get(pid)
        self.root_pid = pid
        self.root_name = name
        self.ever.add(pid)

    def reset_expectations(self) -> None:
        """Forget what was expected before injection began (history is lenient)."""
        self.pending.clear()
        self.expect_start.clear()
        self.expect_stop.clear()
        self.expect_give_up.clear()
        self.expect_exit.clear()

    def child_path(self, model: SupervisorModel, child: ModelChild) -> str:
        return f"{self.path(model)}/{_id_text(child)}"

    def describe(self, pid: Pid | None) -> str:
        if pid is None:
            return "nothing"
        if pid in self.models:
            return f"{self.path(self.models[pid])} {pid!r}"
        found = self.owner.get(pid)
        if found is not None:
            return f"{self.child_path(*found)} {pid!r}"
        proc = self.node.local(pid)
        name = proc.name if proc is not None else None
        if isinstance(name, str):
            self.labels[pid] = text = f"{name} {pid!r}"
            return text
        return self.labels.get(pid, repr(pid))

    def is_genserver(self, pid: Pid) -> bool:
        return pid in self.genservers or pid in self.models

    # ------------------------------------------------------------ events

    def note(self, t: float, kind: str, text: str) -> None:
        if self.report is not None:
            self.report.timeline.append(TimelineEntry(t, kind, text))

    def violation(self, text: str) -> None:
        self.violations.append(text)
        if self.report is not None:
            self.report.timeline.append(TimelineEntry(trio.current_time(), "VIOLATION", text))

    def process(self, strict: bool) -> None:
        """Feed the model every event recorded since the last call."""
        entries = self.rec.entries
        while self.index < len(entries):
            entry = entries[self.index]
            self.index += 1
            handler = getattr(self, f"_on_{entry.kind}", None)
            if handler is not None:
                handler(entry, strict)

    def _on_init(self, e: Entry, strict: bool) -> None:
        m = e.meta
        model = SupervisorModel(m["strategy"], m["max_restarts"], float(m["max_seconds"]),
                                [], m["kind"], pid=m["supervisor"])
        self.models[model.pid] = model  # type: ignore[index]
        self.newborn[model.pid] = model  # type: ignore[index]
        self.genservers.add(m["supervisor"])

    def _on_child_started(self, e: Entry, strict: bool) -> None:
        m = e.meta
        sup = self.models.get(m["supervisor"])
        if sup is None:
            return
        pid = m["pid"]
        spec = m["spec"]
        queue = self.expect_start.get(sup)
        child: ModelChild | None = None
        if queue:
            if sup.kind == "dynamic":
                child = queue.popleft()
            else:
                expected = next((c for c in queue if c.id == spec.id), None)
                if expected is not None:
                    if queue[0] is not expected and strict:
                        self.violation(
                            f"{self.path(sup)} started {_id_text(expected)} before "
                            f"{_id_text(queue[0])} (children start in order)")
                    queue.remove(expected)
                    child = expected
        if child is None and sup.kind == "supervisor":
            # restart_child through the API, or a child added with start_child
            child = next((c for c in sup.children if c.id == spec.id), None)
            if child is not None:
                child.starts += 1
        if child is None:
            child = child_of(spec)
            sup.children.append(child)
        if pid is None:
            child.running = False
            child.starts -= 1
            if (child.restart == "temporary" or sup.kind == "dynamic") and \
                    child in sup.children:
                sup.children.remove(child)
            self.note(e.t, "ignored", f"{self.child_path(sup, child)} ignored its start")
            return
        child.running = True
        child.pid = pid
        self.pid_child[pid] = child
        self.sup_of[child] = sup
        child.model = self.newborn.pop(pid, None)
        if child.model is not None:
            self.parent[child.model] = (sup, child)
        self.owner[pid] = (sup, child)
        if child.genserver:
            self.genservers.add(pid)
        self.note(e.t, "start", f"{self.child_path(sup, child)} {pid!r}")

    def _on_start_error(self, e: Entry, strict: bool) -> None:
        m = e.meta
        sup = self.models.get(m["supervisor"])
        if sup is None:
            return
        queue = self.expect_start.get(sup)
        self.note(e.t, "no start", f"{self.path(sup)}/{_id_text_raw(m['id'])} failed to start: "
                                    f"{_reason_text(m['reason'])}")
        if not queue:
            return
        # the supervisor stops starting the group at the first failure and retries later
        while queue:
            c = queue.popleft()
            sup.start_failed(c)
            c.running = False

    def _on_restart(self, e: Entry, strict: bool) -> None:
        m = e.meta
        sup = self.models.get(m["supervisor"])
        if sup is None:
            return
        if m.get("retry"):
            child = self._retry_child(sup, m["id"])
            if child is None:
                return
            self.note(e.t, "retry", f"{self.child_path(sup, child)}")
            self._react(sup, child, sup.restart(child, e.t), e.t, strict)
            return
        pending = self.pending.get(sup, [])
        item = next((p for p in pending if p.child.pid == m["pid"]), None)
        if item is None:
            found = self.owner.get(m["pid"])
            if strict and found is not None and found[0] is sup:
                self.violation(f"{self.path(sup)} restarted {_id_text(found[1])} after "
                               f"{_reason_text(m['reason'])}, which its restart type "
                               f"({found[1].restart}) does not restart")
            return
        pending.remove(item)
        child = item.child
        path = self.child_path(sup, child)
        self.note(e.t, "restart", f"{path} after {_reason_text(item.reason)}")
        self._react(sup, child, sup.exit(child, item.reason, e.t), e.t, strict)

    def _retry_child(self, sup: SupervisorModel, child_id: Any) -> ModelChild | None:
        if sup.kind == "dynamic":
            return next((c for c in sup.children if not c.running), None)
        return next((c for c in sup.children if c.id == child_id), None)

    def _react(self, sup: SupervisorModel, child: ModelChild, reaction: Reaction, t: float,
               strict: bool) -> None:
        if reaction.gave_up:
            self.expect_give_up.add(sup)
            # give_up() already set the model down; its children are shut down in order
            self.expect_stop.setdefault(sup, deque()).extend(reaction.stop)
            self._drop_pending(sup, reaction.stop)
            return
        self.expect_stop.setdefault(sup, deque()).extend(reaction.stop)
        self._drop_pending(sup, reaction.stop)
        self.expect_start.setdefault(sup, deque()).extend(reaction.start)
        for c in reaction.removed:
            self.note(t, "removed", f"{self.path(sup)}/{_id_text(c)} (temporary)")

    def _drop_pending(self, sup: SupervisorModel, stopped: Iterable[ModelChild]) -> None:
        pending = self.pending.get(sup)
        if pending:
            gone = set(map(id, stopped))
            pending[:] = [p for p in pending if id(p.child) not in gone]

    def _on_give_up(self, e: Entry, strict: bool) -> None:
        m = e.meta
        sup = self.models.get(m["supervisor"])
        if sup is None:
            return
        path = self.path(sup)
        if self.report is not None:
            self.report.gave_up.append(path)
        self.note(e.t, "GIVE UP", f"{path} (more than {sup.max_restarts} restarts in "
                                  f"{sup.max_seconds:g} s)")
        if sup in self.expect_give_up:
            self.expect_give_up.discard(sup)
        elif strict:
            self.violation(f"{path} gave up, but the model counts {len(sup.restarts)} restart(s) "
                           f"within {sup.max_seconds:g} s at t={e.t:g} "
                           f"(max_restarts={sup.max_restarts})")

    def _on_child_shutdown(self, e: Entry, strict: bool) -> None:
        m = e.meta
        sup = self.models.get(m["supervisor"])
        if sup is None:
            return
        pid = m["pid"]
        found = self.owner.get(pid)
        child = found[1] if found is not None and found[0] is sup else None
        queue = self.expect_stop.get(sup)
        if child is not None and queue and child in queue:
            if queue[0] is not child and sup.kind == "supervisor" and strict:
                self.violation(f"{self.path(sup)} shut {_id_text(child)} down before "
                               f"{_id_text(queue[0])} (newest first)")
            queue.remove(child)
        elif child is not None and sup.alive:
            # terminate_child through the API, or the supervisor's own shutdown
            sup.terminated(child)
        elif child is None and not sup.alive:
            pass
        if pid not in self.dead:
            self.expect_exit[pid] = "shutdown"
        if child is not None and child.model is None:
            nested = self.models.get(pid)
            if nested is not None:
                child.model = nested
        nested = self.models.get(pid)
        if nested is not None and nested.alive:
            # it terminates its own children, newest first, then exits
            self.expect_stop.setdefault(nested, deque()).extend(nested.shut_down())
        self.note(e.t, "stop", f"{self.describe(pid)}")

    def _on_exit(self, e: Entry, strict: bool) -> None:
        m = e.meta
        pid = m["pid"]
        reason = m["reason"]
        self.dead[pid] = reason
        self.genservers.discard(pid)
        desc = self.describe(pid)
        model = self.models.pop(pid, None)
        if model is not None:
            model.alive = False
            self.newborn.pop(pid, None)
            for c in model.children:
                if c.pid is not None and c.pid not in self.dead:
                    self.expect_exit.setdefault(c.pid, "its supervisor exited")
                c.running = False
            if model in self.expect_give_up and strict:
                self.expect_give_up.discard(model)
            self.expect_stop.pop(model, None)
            self.expect_start.pop(model, None)
            self.pending.pop(model, None)
        why = self.expect_exit.pop(pid, None)
        found = self.owner.pop(pid, None)
        if found is None:
            if pid in self.ever:
                self.note(e.t, "exit", f"{desc} {_reason_text(reason)}")
            return
        sup, child = found
        path = self.child_path(sup, child)
        self.note(e.t, "exit", f"{path} {pid!r} {_reason_text(reason)}")
        if why is not None or not sup.alive or sup.pid in self.dead or child.pid != pid:
            return
        if restarts_after(child.restart, reason):
            self.pending.setdefault(sup, []).append(_Pending(child, reason, e.t))
        else:
            sup.exit(child, reason, e.t)
            self.note(e.t, "no restart", f"{path} ({child.restart})")

    # ------------------------------------------------------------ checks

    def end_of_window(self) -> None:
        """After a settle: what the supervisors should have done and did not."""
        for sup, pending in self.pending.items():
            for p in pending:
                if sup.alive and sup.pid not in self.dead:
                    self.violation(f"{self.path(sup)} did not react to the exit of "
                                   f"{_id_text(p.child)} ({_reason_text(p.reason)}, "
                                   f"{p.child.restart})")
        self.pending.clear()
        for sup, queue in self.expect_start.items():
            for c in queue:
                if sup.alive:
                    self.violation(f"{self.path(sup)} did not start {_id_text(c)} again")
            queue.clear()
        for sup, queue in self.expect_stop.items():
            for c in queue:
                if c.pid is not None and c.pid not in self.dead:
                    self.violation(f"{self.path(sup)} did not shut {_id_text(c)} down")
            queue.clear()
        for sup in self.expect_give_up:
            self.violation(f"{self.path(sup)} should have given up: {len(sup.restarts)} "
                           f"restarts within {sup.max_seconds:g} s (max_restarts="
                           f"{sup.max_restarts})")
        self.expect_give_up.clear()
        for pid, why in list(self.expect_exit.items()):
            if self.node.local(pid) is not None:
                self.violation(f"{self.describe(pid)} is still running after {why}")
            del self.expect_exit[pid]

    async def compare(self, root_pid: Pid) -> None:
        """Each modelled supervisor of the tree against its live `which_children`."""
        root = self.root
        if root is None:
            return
        live_root = self.node.local(root_pid) is not None
        if root.alive != live_root:
            self.violation(f"{self.root_name} is {'alive' if live_root else 'dead'} but the "
                           f"model says {'alive' if root.alive else 'gone'}")
            return
        if not root.alive:
            return
        stack = [root]
        while stack:
            sup = stack.pop(0)
            assert sup.pid is not None
            try:
                rows = await call(sup.pid, ("which_children",), None)
            except Exception as exc:  # it died under us: the next window sees the exit
                self.violation(f"{self.path(sup)} did not answer which_children: {exc!r}")
                continue
            live = [(r.id, r.pid) for r in rows]
            expected = [(c.id, c.pid if c.running else None) for c in sup.children]
            if sup.kind == "dynamic":
                if sorted(p.id for _, p in live if p) != sorted(
                        p.id for _, p in expected if p):
                    self.violation(f"{self.path(sup)} has children {_pids(live)}; the model "
                                   f"expects {_pids(expected)}")
            elif live != expected:
                self.violation(f"{self.path(sup)} has children {_rows(live)}; the model "
                               f"expects {_rows(expected)}")
            for c in sup.children:
                if c.pid is not None and c.running:
                    self.ever.add(c.pid)
                    if c.model is not None and c.model.alive:
                        stack.append(c.model)

    def tree_pids(self) -> list[Pid]:
        """The tree's live processes in the stable order `Fault.target` ints index."""
        root = self.root
        if root is None or not root.alive or root.pid is None:
            return []
        order: list[Pid] = [root.pid]
        for _sup, child in root.walk():
            if child.running and child.pid is not None and self.node.local(child.pid):
                order.append(child.pid)
        seen = set(order)
        linked: list[Pid] = []
        for pid in order:
            proc = self.node.local(pid)
            if proc is not None and proc.links:
                for other in proc.links:
                    if other not in seen and other != self.caller_pid and \
                            self.node.local(other) is not None:
                        seen.add(other)
                        linked.append(other)
        linked.sort(key=lambda p: (p.id, p.serial))
        return order + linked

    def closure(self) -> set[Pid]:
        """The tree's processes and everything linked to them (transitively)."""
        found = set(self.tree_pids())
        todo = list(found)
        while todo:
            proc = self.node.local(todo.pop())
            if proc is None or not proc.links:
                continue
            for other in proc.links:
                if other not in found and other != self.caller_pid and \
                        self.node.local(other) is not None:
                    found.add(other)
                    todo.append(other)
        return found

    def check_leaks(self, tree: set[Pid]) -> None:
        """Processes spawned inside the tree, whose spawner is gone, outside the tree."""
        self.ever |= tree
        parents = self.rec.parents
        for proc in self.node.alive_procs():
            pid = proc.pid
            if pid in tree or pid == self.caller_pid or pid in self.reported_leaks:
                continue
            parent = parents.get(pid)
            if parent is None or self.node.local(parent) is not None:
                continue
            ancestor: Pid | None = parent
            steps = 0
            while ancestor is not None and ancestor not in self.ever and steps < 1000:
                ancestor = parents.get(ancestor)
                steps += 1
            if ancestor is not None:
                self.reported_leaks.add(pid)
                self.violation(f"{self.describe(pid)} was left behind: spawned by {parent!r} "
                               f"(inside the tree, now gone) and linked to nothing in the tree")

    def check_tasks(self) -> None:
        """No trio task outlives its process."""
        nursery = self.node.nursery
        if nursery is None:
            return
        stuck = [p for p in self.node.alive_procs() if p.pending is not None]
        for p in stuck:
            self.violation(f"{self.describe(p.pid)} was told to exit ({p.pending!r}) and is "
                           f"still running")
        run = getattr(type(self.node), "_run", None)
        code = getattr(run, "__code__", None)
        if code is None:
            return
        tasks = sum(1 for t in nursery.child_tasks if getattr(t.coro, "cr_code", None) is code)
        extra = tasks - len(self.node.procs)
        if self.task_baseline is None or extra < self.task_baseline:
            self.task_baseline = extra
        elif extra > self.task_baseline:
            self.violation(f"{extra - self.task_baseline} trio task(s) outlived their processes")
            self.task_baseline = extra

    def snapshot_names(self) -> dict[Any, Pid]:
        """Every name on the node: local, global and unique `Via` names."""
        node = self.node
        names: dict[Any, Pid] = dict(node.names)
        table = node.dist.globals.table if node.dist is not None else node.globals
        for key, pid in table.items():
            if pid.node is node.name:
                names[Global(key)] = pid
        for reg, t in node.registries.items():
            if getattr(t, "keys", None) != "unique":
                continue
            for key, owners in t.entries.items():
                for pid in owners:
                    names[Via(reg, key)] = pid
        return names

    def check_names(self, tree: set[Pid]) -> None:
        """Names point at live processes; names of restarted processes are back."""
        now = self.snapshot_names()
        for name, pid in now.items():
            if self.node.local(pid) is None:
                self.violation(f"{_name_text(name)} points at {pid!r}, which is not alive")
        for name, held in list(self.names.items()):
            if name in now:
                continue
            del self.names[name]
            if self.node.local(held.pid) is not None:
                continue  # it let the name go itself
            reason = self.dead.get(held.pid)
            back = self._slot_running(held)
            if not held.own:
                back = back and reason is not None and not isinstance(reason, Normal | Shutdown)
            if back:
                again = "restarted" if held.own else "tree is running again"
                self.violation(f"{_name_text(name)} is not registered any more: {held.desc} "
                               f"held it and exited ({_reason_text(reason)}); the {again} "
                               f"but nobody registered the name again")
        for name, pid in now.items():
            if pid in tree or pid in self.ever:
                found = self._held(pid)
                if found is not None:
                    self.names[name] = found

    def _held(self, pid: Pid) -> _Held | None:
        """Where a name holder sits in the tree: its own child slot, or the
        slot of the child that spawned it."""
        own = pid in self.pid_child
        child = self._owner_child(pid)
        if child is None:
            return None
        return _Held(pid, own, child, self._id_path(child), self.describe(pid))

    def _id_path(self, child: ModelChild) -> tuple[Any, ...] | None:
        path: list[Any] = []
        c: ModelChild | None = child
        while c is not None:
            sup = self.sup_of.get(c)
            if sup is None or sup.kind == "dynamic":
                return None
            path.append(c.id)
            if sup is self.root:
                return tuple(reversed(path))
            c = self.parent[sup][1] if sup in self.parent else None
        return None

    def _slot_running(self, held: _Held) -> bool:
        if held.path is None:
            return held.child.running and self._alive_model(held.child)
        sup = self.root
        child: ModelChild | None = None
        for part in held.path:
            if sup is None or not sup.alive:
                return False
            child = next((c for c in sup.children if c.id == part), None)
            if child is None or not child.running:
                return False
            sup = child.model
        return child is not None and child.running

    def _alive_model(self, child: ModelChild) -> bool:
        sup = self.sup_of.get(child)
        return sup is not None and sup.alive and sup.pid not in self.dead

    def _owner_child(self, pid: Pid) -> ModelChild | None:
        """The model child whose process (of any generation) spawned ``pid``."""
        parents = self.rec.parents
        p: Pid | None = pid
        for _ in range(1000):
            if p is None:
                return None
            child = self.pid_child.get(p)
            if child is not None:
                return child
            p = parents.get(p)
        return None


@attrs.define(eq=False)
class _Held:
    """A name's holder: its pid, whether it is a supervised child itself, the
    child slot it belongs to (a path of ids when there is one), a description."""

    pid: Pid
    own: bool
    child: ModelChild
    path: tuple[Any, ...] | None
    desc: str


def _id_text(child: ModelChild) -> str:
    return _id_text_raw(child.id) if child.id is not None else f"[{child.pid!r}]"


def _id_text_raw(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _rows(rows: Sequence[tuple[Any, Pid | None]]) -> str:
    return "[" + ", ".join(f"{_id_text_raw(i)}={p!r}" if p else f"{_id_text_raw(i)}=down"
                           for i, p in rows) + "]"


def _pids(rows: Sequence[tuple[Any, Pid | None]]) -> str:
    return "[" + ", ".join(repr(p) for _, p in rows if p) + "]"


def _name_text(name: Any) -> str:
    if isinstance(name, Global | Via):
        return f"otpy.{name!r}"
    return repr(name)


# ------------------------------------------------------------------ inject


def _force_exit(node: Node, pid: Pid, reason: ExitReason) -> None:
    """End ``pid`` at once with ``reason``, as if its own code had raised it."""
    proc = node.local(pid)
    if proc is not None:
        node.kill(proc, reason)


async def _stop_in_order(pid: Pid, reason: ExitReason) -> None:
    try:
        await stop(pid, reason)
    except Exception:  # it was gone, or exited with another reason: nothing to do
        return


async def _apply(ctx: FaultContext, action: Any, pid: Pid | None) -> None:
    node = ctx.node
    if isinstance(action, Action):
        await action.apply(ctx, pid)
        return
    assert pid is not None
    if isinstance(action, ExitReason):
        node.signal_exit(pid, ctx.caller.pid, action, link=False)
    elif action == "kill":
        node.signal_exit(pid, ctx.caller.pid, KILL, link=False)
    elif action == "crash":
        _force_exit(node, pid, Crash(InjectedFault("crash injected by otpy.testing")))
    elif action in ("normal", "shutdown"):
        reason: ExitReason = Normal() if action == "normal" else Shutdown()
        if ctx.is_genserver(pid):
            spawn(_stop_in_order, pid, reason)
        else:
            _force_exit(node, pid, reason)
    else:
        raise ValueError(f"unknown fault action {action!r}: use one of {EXIT_ACTIONS}, an "
                         f"otpy.ExitReason or an otpy.testing.Action")


def _needs_target(action: Any) -> bool:
    return not isinstance(action, Action) or action.needs_target


def _check_action(action: Any) -> None:
    if not (isinstance(action, Action | ExitReason) or action in EXIT_ACTIONS):
        raise ValueError(f"unknown fault action {action!r}: use one of {EXIT_ACTIONS}, an "
                         f"otpy.ExitReason or an otpy.testing.Action")


def _resolve_path(checker: _Checker, path: tuple[Any, ...]) -> Pid | None:
    sup = checker.root
    pid: Pid | None = sup.pid if sup is not None and sup.alive else None
    for part in path:
        if sup is None or not sup.alive:
            return None
        if sup.kind == "dynamic" and isinstance(part, int):
            running = [c for c in sup.children if c.running]
            child = running[part % len(running)] if running else None
        else:
            child = next((c for c in sup.children if c.id == part), None)
        if child is None or not child.running:
            return None
        pid = child.pid
        sup = child.model
    return pid


def resolve_target(checker: _Checker, node: Node, target: Any) -> Pid | None:
    """The live process a `Fault.target` names now (None if there is none)."""
    if isinstance(target, bool):
        raise TypeError(f"not a fault target: {target!r}")
    if isinstance(target, int):
        pids = checker.tree_pids()
        return pids[target % len(pids)] if pids else None
    if isinstance(target, Pid):
        return target if node.local(target) is not None else None
    if isinstance(target, tuple) and not isinstance(target, Global | Via) and (
            not target or not (len(target) == 2 and isinstance(target[1], str) and "@" in
                               target[1])):
        return _resolve_path(checker, target)
    try:
        pid = node.resolve(target)
    except (TypeError, LookupError):
        return None
    return pid if pid is not None and node.local(pid) is not None else None


Invariant = Callable[[], Awaitable[Any]]


async def inject(
    root: Any,
    schedule: Iterable[Fault],
    *,
    invariants: Sequence[Invariant] = (),
    names: bool = True,
    leaks: bool = True,
    cushion: float | None = None,
    root_name: str | None = None,
) -> Report:
    """Apply a schedule of faults to the live tree under ``root``, checking as it goes.

    Before each fault the virtual clock advances by ``fault.at`` seconds
    (with `run`'s MockClock this costs nothing, and whatever is due in the
    meantime happens); after each fault the node settles and the built-in
    invariants are checked (see the module docs), then ``invariants``.
    Injection stops at the first settle with a violation. The caller traps
    exits for the duration (the root giving up does not kill it); `Exit`
    messages from the tree are dropped from its mailbox afterwards unless it
    trapped exits already.

    Args:
        root: the tree's root: a supervisor's pid or name (a worker pid
            works too; then only names, leaks and ``invariants`` are checked).
        schedule: the faults, e.g. drawn by `faults`.
        invariants: async functions of no arguments, awaited after every
            settle while the root is alive; an exception (e.g. a failed
            ``assert``) is a violation.
        names: check registered names.
        leaks: check for processes left behind and leaked trio tasks.
        cushion: passed to `settle` (real seconds of quiet on a real clock).
        root_name: how the replay line names the root (default ``root``).

    Returns:
        The `Report`; call ``report.check()`` to fail a test on violations.

    Raises:
        RuntimeError: the node's events are not recorded (use `run`, or
            `record` before starting the tree).
        ValueError: ``root`` is not a live process, or an action is unknown.
    """
    faults = list(schedule)
    for f in faults:
        _check_action(f.action)
    proc = current()
    node = proc.node
    rec = recorder(node)
    if rec is None:
        raise RuntimeError("otpy.testing.inject needs the node's events: run the test with "
                           "otpy.testing.run(...), or start the tree inside "
                           "`with otpy.testing.record():`")
    root_pid = root if isinstance(root, Pid) else node.resolve(root)
    if root_pid is None or node.local(root_pid) is None:
        raise ValueError(f"the root {root!r} is not a live process")
    report = Report(faults, root=root_name or "root")
    checker: _Checker | None = rec.checker
    if checker is None:
        checker = rec.checker = _Checker(rec)
    checker.caller_pid = proc.pid
    old_trap = proc.trap
    proc.trap = True
    ctx = FaultContext(node, proc, checker, report)
    try:
        await settle(cushion=cushion)
        checker.set_root(root_pid, root_name or "root")
        checker.process(strict=False)
        checker.set_root(root_pid, root_name or "root")
        checker.reset_expectations()
        checker.report = report
        checker.violations = report.violations
        await checker.compare(root_pid)
        tree = checker.closure()
        checker.ever |= tree
        for pid in tree:
            checker.describe(pid)
        if names:
            checker.check_names(tree)
        if leaks:
            checker.check_tasks()
        for i, fault in enumerate(faults):
            if fault.at > 0:
                await trio.sleep(fault.at)
                if len(rec.entries) > checker.index:
                    await settle(cushion=cushion)
                    await _window(checker, root_pid, invariants, names, leaks)
                    if report.violations:
                        break
            target = resolve_target(checker, node, fault.target)
            report.applied = i + 1
            what = fault.action if isinstance(fault.action, str) else fault_repr(fault).split(
                "action=", 1)[1][:-1]
            if target is None and _needs_target(fault.action):
                report.note("fault", f"#{i + 1} {what}: no live target {fault.target!r}, skipped")
                continue
            report.note("fault", f"#{i + 1} {what} {checker.describe(target)}")
            await _apply(ctx, fault.action, target)
            await settle(cushion=cushion)
            await _window(checker, root_pid, invariants, names, leaks)
            if report.violations:
                break
    finally:
        proc.trap = old_trap
        if not old_trap and proc.mailbox:
            keep = [m for m in proc.mailbox
                    if not (type(m) is Exit and (m.pid in checker.ever or m.pid == root_pid))]
            proc.mailbox.clear()
            proc.mailbox.extend(keep)
        checker.report = None
        checker.violations = []
    return report


async def _window(checker: _Checker, root_pid: Pid, invariants: Sequence[Invariant],
                  names: bool, leaks: bool) -> None:
    checker.process(strict=True)
    checker.end_of_window()
    await checker.compare(root_pid)
    tree = checker.closure()
    checker.ever |= tree
    for pid in tree:
        checker.describe(pid)
    if names:
        checker.check_names(tree)
    if leaks:
        checker.check_leaks(tree)
        checker.check_tasks()
    if invariants and checker.node.local(root_pid) is None:
        return  # the user's invariants are about a running tree
    for inv in invariants:
        try:
            await inv()
        except Exception as exc:
            name = getattr(inv, "__name__", repr(inv))
            checker.violation(f"invariant {name} failed: {exc!r}")

