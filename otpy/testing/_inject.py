"""`inject`: apply a schedule of faults to a live tree, settling and checking after each.

Before each fault the clock advances by its ``at``; the fault is applied to
the process its target names now; the node settles (`settle`); then the
`Checker` compares what happened with the model, and the user's invariants
run. Injection stops at the first settle with a violation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import trio
import trio.testing

from otpy._api import spawn
from otpy._genserver import stop
from otpy._node import Node
from otpy._process import current
from otpy._reasons import KILL, Crash, Exit, ExitReason, Normal, Shutdown
from otpy._registry import Global, Via
from otpy._terms import Pid
from otpy.testing._checker import NAME_GRACE, Checker
from otpy.testing._faults import (
    EXIT_ACTIONS,
    Action,
    Fault,
    FaultContext,
    InjectedFault,
    Report,
    fault_repr,
)
from otpy.testing._run import recorder, settle

__all__ = ["inject", "resolve_target"]

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


def _resolve_path(checker: Checker, path: tuple[Any, ...]) -> Pid | None:
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


def resolve_target(checker: Checker, node: Node, target: Any) -> Pid | None:
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
    report = Report(faults, root=root_name or "root", seed=rec.seed)
    if not isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock):
        report.origin = trio.current_time()  # a real clock: times from the start of inject
    checker: Checker | None = rec.checker
    if checker is None:
        checker = rec.checker = Checker(rec)
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
            where = checker.describe(target) if _needs_target(fault.action) else ""
            report.note("fault", f"#{i + 1} {what} {where}".rstrip())
            await _apply(ctx, fault.action, target)
            await settle(cushion=cushion)
            await _window(checker, root_pid, invariants, names, leaks)
            if report.violations:
                break
        if checker.orphaned_names and not report.violations:
            await trio.sleep(NAME_GRACE)  # judge the names still waiting for their holder
            await settle(cushion=cushion)
            await _window(checker, root_pid, invariants, names, leaks)
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


async def _window(checker: Checker, root_pid: Pid, invariants: Sequence[Invariant],
                  names: bool, leaks: bool) -> None:
    checker.process(strict=True)
    checker.end_of_window()
    await checker.compare(root_pid)
    tree = checker.closure()
    checker.ever |= tree
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
