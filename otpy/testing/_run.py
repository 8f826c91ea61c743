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
        # supervisors that exited and may still have children running
        self.dead_supervisors: set[Pid] = set()
        self.checker: Any = None  # the inject state of this node (see _faults)
        self.changed: trio.Event | None = None  # set by the next event
        self.seed: int | None = None  # the scheduler seed, under `run`
        # supervisor events and exits of supervisors and their children
        self.activity = 0
        # children a supervisor began to shut down that have not exited yet
        self.shutting_down: set[Pid] = set()

    def add(self, kind: str, meta: Mapping[str, Any]) -> None:
        """Record one event (called by the telemetry handler)."""
        self.entries.append(Entry(trio.current_time(), kind, meta))
        if kind == "spawn":
            self.parents[meta["pid"]] = meta["parent"]
        elif kind == "exit":
            self.shutting_down.discard(meta["pid"])
            if meta["pid"] in self.ever_supervisors:
                self.dead_supervisors.add(meta["pid"])
        elif kind == "child_shutdown":
            self.shutting_down.add(meta["pid"])
        elif kind == "init":
            self.supervisors[meta["supervisor"]] = meta
            self.ever_supervisors.add(meta["supervisor"])
        if kind != "spawn" and (kind != "exit" or meta["pid"] in self.ever_supervisors
                                or self.parents.get(meta["pid"]) in self.ever_supervisors):
            self.activity += 1
        if self.changed is not None:
            self.changed.set()
            self.changed = None

    def idle(self) -> bool:
        """Whether every supervisor is visibly idle: waiting in a plain receive
        with no timeout and an empty mailbox, and no child shutdown under way.

        True only when it is sure; `settle` then needs no call round.
        """
        if self.shutting_down:
            return False
        node = self.node
        dead: list[Pid] = []
        for sup in self.supervisors:
            proc = node.local(sup)
            if proc is None:
                dead.append(sup)
                continue
            # (read defensively: should the runtime's records change, the
            # answer is "not sure", and settle asks the supervisors instead)
            waiters = getattr(proc, "waiters", None)
            if not waiters or len(waiters) != 1 or getattr(proc, "replies", True) or \
                    getattr(proc, "mailbox", True):
                return False
            w = waiters[0]
            if getattr(w, "pred", 1) is not None or getattr(w, "ref", 1) is not None or \
                    getattr(w, "handle", 1) is not None:
                return False
        for sup in dead:
            del self.supervisors[sup]
        return True

    def orphans(self) -> list[Pid]:
        """Live processes started by a supervisor that is gone (still finishing
        their `terminate`, typically)."""
        node = self.node
        sups = self.dead_supervisors
        if not sups:
            return []
        found = [p for p in node.alive_procs() if p.parent in sups]
        # a dead supervisor gets no new children: once none runs, forget it
        sups.intersection_update(p.parent for p in found)
        return [p.pid for p in found]

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
    virtual: bool = True,
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
        virtual: False runs on the real clock (for trees with real
            subprocesses or sockets: CLIs, peer nodes), still seeded and
            recorded.
        **kw: passed to `otpy.run` (``shutdown_timeout``, ``node``, ...).

    Returns:
        What ``main`` returned.
    """
    seed_scheduler(seed)

    async def recorded(*a: Any) -> T:
        with record() as rec:
            rec.seed = seed
            return await main(*a)

    if clock is None and virtual:
        clock = trio.testing.MockClock(autojump_threshold=0)
    return otpy_run(recorded, *args, clock=clock, **kw)


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
    virtual = isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock)
    if cushion is None:
        cushion = 0.0 if virtual else 0.05
    rec = _recorders.get(node)

    async def quiet() -> None:
        if virtual:
            await trio.testing.wait_all_tasks_blocked(cushion)
        else:
            # On a real clock other work (a workload, I/O) may never pause:
            # wait a moment for the tree's reactions to arrive instead.
            await trio.sleep(cushion)

    def progress() -> int:
        if rec is None:
            return hash(frozenset(node.procs))
        return len(rec.entries) if virtual else rec.activity

    while True:
        await quiet()
        mark = progress()
        if virtual and rec is not None and rec.idle():
            sups = []  # all blocked and no supervisor mid-reaction: nothing to ask
        else:
            sups = rec.live_supervisors() if rec is not None else []
        for sup in sups:
            if sup == proc.pid:
                continue
            with trio.move_on_after(limit) as scope, contextlib.suppress(CallError):
                await call(sup, ("which_children",), None)  # CallError: it exited meanwhile
            if scope.cancelled_caught:
                raise TimeoutError(f"supervisor {sup!r} was still busy after {limit} s")
        if sups:
            await quiet()
        if rec is not None and progress() == mark and rec.orphans():
            rec.changed = trio.Event()
            with trio.move_on_after(orphans):
                await rec.changed.wait()
            rec.changed = None
        if progress() == mark:
            return
