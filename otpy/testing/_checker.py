"""The built-in checks of `inject`: a model of every supervisor kept in step with the tree.

`Checker` feeds the node's recorded events (`otpy.testing.record`) to a
`SupervisorModel` per supervisor and checks, window after window (a window
is what happened between two settles):

* every supervisor reacts to each exit as its strategy, its children's
  restart types and its restart intensity say — the right children
  restarted, in order, the right siblings shut down, newest first, temporary
  children forgotten — and gives up exactly when the model says;
* after settling, each supervisor's children (ids, order, pids) are the
  model's;
* every registered name points at a live process, a name that a restarted
  process held is held again, and a `Via` name does not vanish with its
  registry while its holder runs on;
* no process spawned inside the tree is left behind outside it, no process
  told to exit still runs, and no trio task outlives its process.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import trio

from otpy._genserver import call
from otpy._reasons import Crash, Normal, Shutdown
from otpy._registry import Global, Via
from otpy._terms import Pid
from otpy.testing._faults import InjectedFault, Report, TimelineEntry
from otpy.testing._model import ModelChild, Reaction, SupervisorModel, child_of, restarts_after
from otpy.testing._run import Entry, Recorder

__all__ = ["NAME_GRACE", "Checker"]

#: Seconds a process may keep running after its registry exited, nameless,
#: before it is a violation (a trapping holder runs its terminate first).
NAME_GRACE = 5.0

def _reason_text(reason: Any) -> str:
    if isinstance(reason, Crash) and isinstance(reason.exception, InjectedFault):
        return "Crash(InjectedFault())"
    return repr(reason)


@attrs.define(eq=False)
class _Pending:
    child: ModelChild
    reason: Any
    t: float


class Checker:
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
        self.terminating: set[SupervisorModel] = set()  # told to shut down by their parent
        self.expect_exit: dict[Pid, str] = {}
        self.dead: dict[Pid, Any] = {}  # exited pids -> reason
        self.ever: set[Pid] = set()  # every pid ever seen in a checked tree
        self.genservers: set[Pid] = set()
        self.reported_leaks: set[Pid] = set()
        self.pid_child: dict[Pid, ModelChild] = {}  # every pid a child ever had
        self.labels: dict[Pid, str] = {}  # descriptions of named processes
        self.paths: dict[SupervisorModel, str] = {}
        self.touched: set[SupervisorModel] = set()  # supervisors with events to compare
        self._tree_cache: tuple[int, list[Pid]] = (-1, [])
        self.names: dict[Any, _Held] = {}
        # Via names whose registry died while their holder runs on: since when
        self.orphaned_names: dict[Any, tuple[_Held, float]] = {}
        self.sup_of: dict[ModelChild, SupervisorModel] = {}
        self.violations: list[str] = []
        self.report: Report | None = None
        self.task_baseline: int | None = None
        self.root: SupervisorModel | None = None
        self.root_pid: Pid | None = None
        self.root_name = "root"
        self.caller_pid: Pid | None = None
        self._handlers: dict[str, Callable[[Entry, bool], None]] = {
            "init": self._on_init, "child_started": self._on_child_started,
            "start_error": self._on_start_error, "restart": self._on_restart,
            "give_up": self._on_give_up, "child_shutdown": self._on_child_shutdown,
            "exit": self._on_exit}

    # ---------------------------------------------------------- naming

    def path(self, model: SupervisorModel) -> str:
        found = self.paths.get(model)
        if found is not None:
            return found
        text = self._path(model)
        if model in self.parent or model is self.root:
            self.paths[model] = text  # the chain above a model never changes
        return text

    def _path(self, model: SupervisorModel) -> str:
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
        self.paths.clear()
        self._tree_cache = (-1, [])
        self.touched = set(self.models.values())
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
        self.terminating.clear()

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
            self.report.timeline.append(TimelineEntry(t - self.report.origin, kind, text))

    def violation(self, text: str) -> None:
        self.violations.append(text)
        if self.report is not None:
            self.report.note("VIOLATION", text)

    def process(self, strict: bool) -> None:
        """Feed the model every event recorded since the last call."""
        entries = self.rec.entries
        while self.index < len(entries):
            entry = entries[self.index]
            self.index += 1
            handler = self._handlers.get(entry.kind)
            if handler is not None:
                sup = self.models.get(entry.meta.get("supervisor"))  # type: ignore[arg-type]
                if sup is not None:
                    self.touched.add(sup)
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
        if sup in self.terminating and (not queue or child not in queue):
            # its parent's shutdown signal reached it (after whatever was queued
            # before it): it terminates its running children, newest first
            self.terminating.discard(sup)
            queue = self.expect_stop.setdefault(sup, deque())
            queue.extend(c for c in sup.shut_down() if c not in queue)
        if child is not None and queue and child in queue:
            if queue[0] is not child and sup.kind == "supervisor" and strict:
                self.violation(f"{self.path(sup)} shut {_id_text(child)} down before "
                               f"{_id_text(queue[0])} (newest first)")
            queue.remove(child)
        elif child is not None and sup.alive and child in sup.children:
            # terminate_child through the API, or the supervisor's own shutdown
            sup.terminated(child)
        # (a child the model already let go — a temporary one that exited while
        # its supervisor was busy — may still be shut down by the supervisor
        # before it gets to that exit: nothing changes)
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
            # it terminates its own children once it gets to the signal
            self.terminating.add(nested)
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
            self.terminating.discard(model)
        why = self.expect_exit.pop(pid, None)
        found = self.owner.get(pid)  # kept: its supervisor may still shut it down
        if found is not None:
            self.touched.add(found[0])
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
        touched, self.touched = self.touched, set()
        while stack:
            sup = stack.pop(0)
            assert sup.pid is not None
            for c in sup.children:
                if c.pid is not None and c.running and c.model is not None and c.model.alive:
                    stack.append(c.model)
            if sup not in touched:
                continue  # no event since it was last compared: it cannot have changed
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

    def tree_pids(self) -> list[Pid]:
        """The tree's live processes in the stable order `Fault.target` ints index."""
        mark = len(self.rec.entries)
        if self._tree_cache[0] == mark:
            return self._tree_cache[1]  # no spawn, exit or start since: the same tree
        pids = self._tree_pids()
        self._tree_cache = (mark, pids)
        return pids

    def _tree_pids(self) -> list[Pid]:
        root = self.root
        if root is None or not root.alive or root.pid is None:
            return []
        local = self.node.local
        order: list[Pid] = [root.pid]
        procs = [local(root.pid)]
        for _sup, child in root.walk():
            if child.running and child.pid is not None:
                proc = local(child.pid)
                if proc is not None:
                    order.append(child.pid)
                    procs.append(proc)
        seen = set(order)
        linked: list[Pid] = []
        for proc in procs:
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
        pids = self.tree_pids()
        found = set(pids)
        # tree_pids followed the links of the supervised processes already;
        # only what the linked processes link to is left to follow
        todo = [p for p in pids if p not in self.owner and p not in self.models]
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
        t = trio.current_time()
        for name, (held, since) in list(self.orphaned_names.items()):
            if self.node.local(held.pid) is None or name in now:
                del self.orphaned_names[name]  # it went too (after its terminate), or is back
            elif t - since >= NAME_GRACE:
                del self.orphaned_names[name]
                self.violation(f"{_name_text(name)} went with its registry, which exited: "
                               f"{held.desc} still runs, without its name")
        for name, held in list(self.names.items()):
            if name in now:
                continue
            del self.names[name]
            if self.node.local(held.pid) is not None:
                gone = self.dead.get(getattr(held.table, "owner", None))  # type: ignore[arg-type]
                if held.table is not None and self.node.registries.get(
                        name.registry) is not held.table and not isinstance(gone, Normal):
                    # a trapping holder may be on its way out (its terminate
                    # runs): judged after NAME_GRACE seconds
                    self.orphaned_names[name] = (held, t)
                continue  # it let the name go itself
            reason = self.dead.get(held.pid)
            back = self._slot_running(held)
            if not held.own:
                back = back and reason is not None and not isinstance(reason, Normal | Shutdown)
            if back:
                again = "it was restarted" if held.own else "the tree is running again"
                self.violation(f"{_name_text(name)} is not registered any more: {held.desc} "
                               f"held it and exited ({_reason_text(reason)}); {again} "
                               f"but nobody registered the name again")
        for name, pid in now.items():
            known = self.names.get(name)
            if known is not None and known.pid == pid:
                continue  # the same holder as last time
            if pid in tree or pid in self.ever:
                found = self._held(pid)
                if found is not None:
                    if isinstance(name, Via):
                        found.table = self.node.registries.get(name.registry)
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
    table: Any = None  # a Via name's registry table


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
