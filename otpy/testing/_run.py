"""Deterministic runs on virtual time, settling, and the event recorder.

`run` is `otpy.run` on a `trio.testing.MockClock` that jumps whenever every
task is blocked, with trio's scheduler seeded so that the same seed and the
same faults replay the same run. `settle` waits until the node is quiet:
every task blocked and every supervisor done with what it was doing.
`record` keeps the node's telemetry events (process spawns and exits,
supervisor starts, restarts, give-ups, shutdowns) with their virtual times:
`inject` builds its model and its timeline from them.
"""

from __future__ import annotations

import contextlib
import random
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

import attrs
import trio
import trio.testing

from otpy import telemetry
from otpy._api import run as otpy_run
from otpy._genserver import call
from otpy._node import Node
from otpy._process import current
from otpy._reasons import CallError
from otpy._terms import Pid

__all__ = ["Entry", "Recorder", "record", "recorder", "run", "seed_scheduler", "settle"]

T = TypeVar("T")

# Trio's scheduler randomness: trio 0.35 (and every version since 0.11) keeps
# one `random.Random` as `trio._core._run._r`; it decides the order of each
# batch of runnable tasks (and MockClock-free clock offsets). Seeding it is
# all that deterministic scheduling needs. If a future trio moves it, `run`
# still works, only without the guarantee (checked in the tests).
try:
    from trio._core import _run as _trio_run

    _SCHEDULER: random.Random | None = _trio_run._r
except (ImportError, AttributeError):  # pragma: no cover - a trio without it
    _SCHEDULER = None


def seed_scheduler(seed: int) -> None:
    """Seed trio's scheduling randomness (the order runnable tasks run in).

    Args:
        seed: any int.
    """
    if _SCHEDULER is not None:
        _SCHEDULER.seed(seed)


@attrs.frozen
class Entry:
    """One recorded event.

    Attributes:
        t: virtual (trio) time.
        kind: the event's last name part: "spawn", "exit", "init",
            "child_started", "start_error", "restart", "give_up",
            "child_shutdown".
        meta: the event's metadata.
    """

    t: float
    kind: str
    meta: Mapping[str, Any]


_PREFIXES = (("otpy", "process"), ("otpy", "supervisor"))
_recorders: weakref.WeakKeyDictionary[Node, Recorder] = weakref.WeakKeyDictionary()
_HANDLER_ID = "otpy.testing.recorder"


def _node_of(meta: Mapping[str, Any]) -> Node | None:
    pid = meta.get("supervisor") or meta.get("pid")
    proc = getattr(pid, "_proc", None)
    return proc.node if proc is not None else None


def _handle(event: tuple[str, ...], measurements: Mapping[str, Any],
            meta: Mapping[str, Any]) -> None:
    node = _node_of(meta)
    rec = _recorders.get(node) if node is not None else None
    if rec is not None:
        rec.add(event[-1], meta)


class Recorder:
    """The telemetry events of one node, with virtual times.

    Attributes:
        node: the node.
        entries: every event since recording began, in order.
        parents: pid -> the pid that spawned it.
        supervisors: supervisor pid -> its ``init`` metadata.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self.entries: list[Entry] = []
        self.parents: dict[Pid, Pid | None] = {}
        self.supervisors: dict[Pid, Mapping[str, Any]] = {}
        self.ever_supervisors: set[Pid] = set()
        self.checker: Any = None  # the inject state of this node (see _faults)
        self.changed: trio.Event | None = None  # set by the next event

    def add(self, kind: str, meta: Mapping[str, Any]) -> None:
        """Record one event (called by the telemetry handler)."""
        self.entries.append(Entry(trio.current_time(), kind, meta))
        if kind == "spawn":
            self.parents[meta["pid"]] = meta["parent"]
        elif kind == "init":
            self.supervisors[meta["supervisor"]] = meta
            self.ever_supervisors.add(meta["supervisor"])
        if self.changed is not None:
            self.changed.set()
            self.changed = None

    def orphans(self) -> list[Pid]:
        """Live processes started by a supervisor that is gone (still finishing
        their `terminate`, typically)."""
        node = self.node
        sups = self.ever_supervisors
        return [p.pid for p in node.alive_procs()
                if p.parent in sups and node.local(p.parent) is None]

    def live_supervisors(self) -> list[Pid]:
        """Supervisors of this node that are alive, oldest first."""
        dead = [p for p in self.supervisors if self.node.local(p) is None]
        for p in dead:
            del self.supervisors[p]
        return list(self.supervisors)


def recorder(node: Node | None = None) -> Recorder | None:
    """The recorder of ``node`` (default: the caller's), if recording."""
    return _recorders.get(node if node is not None else current().node)


@contextlib.contextmanager
def record(node: Node | None = None) -> Iterator[Recorder]:
    """Record the node's events while the block runs (`run` does this for you).

    Use it with `otpy.open_node` (e.g. under pytest-trio) before starting the
    tree that `inject` will test: the model of a supervisor comes from the
    events of its start.

    Args:
        node: the node (default: the calling process's).

    Yields:
        The `Recorder`.
    """
    node = node if node is not None else current().node
    rec = _recorders.get(node)
    if rec is not None:
        yield rec
        return
    rec = _recorders[node] = Recorder(node)
    if not any(hid == _HANDLER_ID for hid, _ in telemetry.handlers()):
        telemetry.attach(_HANDLER_ID, _PREFIXES, _handle)
    try:
        yield rec
    finally:
        _recorders.pop(node, None)
        if not _recorders:
            telemetry.detach(_HANDLER_ID)


def run(
    main: Callable[..., Awaitable[T]],
    *args: Any,
    seed: int = 0,
    clock: trio.abc.Clock | None = None,
    **kw: Any,
) -> T:
    """`otpy.run` on virtual time, deterministic, with events recorded.

    The clock is a `trio.testing.MockClock` that jumps to the next deadline
    whenever every task is blocked (``autojump_threshold=0``), so timeouts,
    shutdown timeouts and intensity windows cost no real time; trio's
    scheduler is seeded with ``seed``. The same seed and the same faults
    replay the same run (same pids, same timeline) within one interpreter;
    across interpreters set ``PYTHONHASHSEED`` too (sets of pids iterate in
    hash order).

    Args:
        main: the async function run as the first process.
        *args: its arguments.
        seed: seeds trio's scheduling randomness.
        clock: another clock (e.g. a MockClock with a different threshold).
        **kw: passed to `otpy.run` (``shutdown_timeout``, ``node``, ...).

    Returns:
        What ``main`` returned.
    """
    seed_scheduler(seed)

    async def recorded(*a: Any) -> T:
        with record():
            return await main(*a)

    return otpy_run(recorded, *args, clock=clock or trio.testing.MockClock(autojump_threshold=0),
                    **kw)


async def settle(*, cushion: float | None = None, limit: float = 3600.0,
                 orphans: float = 60.0) -> None:
    """Wait until the node is quiet: every task blocked, every supervisor idle.

    Each round waits until every task is blocked, then calls each live
    supervisor (a call is answered only between two of its reactions, so it
    returns once the supervisor finished restarting or shutting down), then
    waits for the children of supervisors that are gone (a trapping child
    runs its `terminate` after its supervisor died), and ends when a round
    saw no event. On a `MockClock` with autojump, virtual time passes only
    while a supervisor or such a child still waits for a timeout (a child
    slow to shut down or start).

    Args:
        cushion: seconds of quiet `trio.testing.wait_all_tasks_blocked` waits
            for; default 0 on a MockClock, 0.05 on a real clock (where
            subprocesses and sockets answer in real time).
        limit: seconds (virtual on a MockClock) a supervisor may take to
            finish reacting before `settle` raises.
        orphans: seconds to wait for the children of a supervisor that is
            gone to exit (`inject` reports those still running after that).

    Raises:
        TimeoutError: a supervisor was still busy after ``limit`` seconds.
    """
    proc = current()
    node = proc.node
    if cushion is None:
        cushion = 0.0 if isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock) else 0.05
    rec = _recorders.get(node)
    while True:
        await trio.testing.wait_all_tasks_blocked(cushion)
        mark = len(rec.entries) if rec is not None else None
        pids = None if rec is not None else set(node.procs)
        sups = rec.live_supervisors() if rec is not None else []
        for sup in sups:
            if sup == proc.pid:
                continue
            with trio.move_on_after(limit) as scope, contextlib.suppress(CallError):
                await call(sup, ("which_children",), None)  # CallError: it exited meanwhile
            if scope.cancelled_caught:
                raise TimeoutError(f"supervisor {sup!r} was still busy after {limit} s")
        if sups:
            await trio.testing.wait_all_tasks_blocked(cushion)
        if rec is not None and len(rec.entries) == mark and rec.orphans():
            rec.changed = trio.Event()
            with trio.move_on_after(orphans):
                await rec.changed.wait()
            rec.changed = None
        if (rec is not None and len(rec.entries) == mark) or (
            rec is None and set(node.procs) == pids
        ):
            return
