"""The node: process table, spawning, message delivery, exit signals, names.

One `Node` per `otpy.run` / `otpy.open_node`. It owns the trio nursery every
process runs in, so a process body that raises never touches its siblings:
the per-process wrapper turns any outcome into an exit reason and propagates
it along links and monitors with Erlang's rules.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

import trio

from otpy import telemetry
from otpy._process import CURRENT, Process, flush_ref
from otpy._reasons import (
    KILLED,
    NOPROC,
    NORMAL,
    SHUTDOWN,
    Crash,
    Down,
    Exit,
    ExitReason,
    Kill,
    Normal,
    ProcessExit,
    Shutdown,
    leaf_exit,
)
from otpy._terms import NONODE, Atom, Pid, Ref
from otpy._timers import Timers

__all__ = ["Name", "NameResolver", "Node", "NotRegisteredError"]

logger = logging.getLogger("otpy")
_SPAWN = ("otpy", "process", "spawn")
_EXIT = ("otpy", "process", "exit")


class NotRegisteredError(LookupError):
    """Sending to (or resolving) a name that nobody has registered."""

    def __init__(self, name: object) -> None:
        super().__init__(f"no process is registered as {name!r}")
        self.name = name


@runtime_checkable
class NameResolver(Protocol):
    """A name kind other than a plain local name (`Via`, `Global`)."""

    def whereis_name(self, node: Node) -> Pid | None: ...

    def register_name(self, node: Node, pid: Pid) -> bool: ...

    def unregister_name(self, node: Node) -> None: ...


Name = str | tuple[str, str] | NameResolver


class Node:
    """A running otpy node. Created by `otpy.run` / `otpy.open_node`."""

    def __init__(self, name: str | None = None, creation: int = 0) -> None:
        self.name: Atom = Atom(name) if name else NONODE
        self.creation = creation
        self.procs: dict[int, Process] = {}
        self.names: dict[str, Pid] = {}
        self.globals: dict[Any, Pid] = {}
        self.registries: dict[Any, Any] = {}
        self._ids = itertools.count(1)
        self.nursery: trio.Nursery | None = None
        # The pseudo-process that stands for the runtime itself ("init").
        self.init_pid = Pid(self.name, 0, 0, creation)
        self.dist: Any = None  # the distribution layer, when the node is distributed
        self.timers = Timers()
        self._run_bound = self._run
        self._exited_event = trio.Event()
        self._shutting_down = False

    # ------------------------------------------------------------------ spawn

    def spawn(
        self,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        *,
        parent: Process | None = None,
        link: bool = False,
        monitor: bool = False,
        trap_exits: bool = False,
        name: str | None = None,
    ) -> tuple[Pid, Ref | None]:
        """Create a process running ``fn(*args)``.

        Args:
            fn: the async function that is the process body.
            args: its positional arguments.
            parent: the spawning process (for link / monitor).
            link: link the new process to ``parent`` atomically.
            monitor: monitor the new process from ``parent``.
            trap_exits: start with trap_exits set.
            name: register the new process under this local name.

        Returns:
            The new pid and, with ``monitor``, the monitor reference.
        """
        nursery = self.nursery
        if nursery is None:
            raise RuntimeError("the node is not running")
        pid = Pid(self.name, next(self._ids), 0, self.creation)
        proc = Process(self, pid, trap_exits, parent.pid if parent is not None else None)
        pid._proc = proc
        if name is not None:
            self.register(name, pid)
        ref = None
        if parent is not None:
            if link:
                proc.links = {parent.pid}
                if parent.links is None:
                    parent.links = {pid}
                else:
                    parent.links.add(pid)
            if monitor:
                ref = Ref.make(self.name, self.creation)
                proc.monitored_by = {ref: (parent.pid, pid)}
                if parent.monitors is None:
                    parent.monitors = {ref: pid}
                else:
                    parent.monitors[ref] = pid
        self.procs[pid.id] = proc
        nursery.start_soon(self._run_bound, proc, fn, args, name=_task_name(fn))
        if telemetry.active:
            telemetry.execute(_SPAWN, {}, {"pid": pid, "parent": proc.parent})
        return pid, ref

    async def _run(
        self, proc: Process, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]
    ) -> None:
        CURRENT.set(proc)
        reason: ExitReason = NORMAL
        try:
            with proc.scope:
                await fn(*args)
        except ProcessExit as exc:
            reason = exc.reason
        except Exception as exc:
            # Also a helper task's exception, out of the nursery's group.
            reason = Crash(exc)
            if proc.pending is None:
                _report_crash(proc, reason)
        except BaseException as exc:
            exit_ = leaf_exit(exc)
            if exit_ is None:
                # Cancelled from outside the process (node shutdown), or
                # KeyboardInterrupt: the process is gone either way.
                self.exited(proc, proc.pending or Shutdown("node stopped"))
                raise
            # A task of the process exited it (inside a nursery's group).
            reason = exit_.reason
        if proc.pending is not None:
            reason = proc.pending
        self.exited(proc, reason)

    # ---------------------------------------------------------------- exiting

    def exited(self, proc: Process, reason: ExitReason) -> None:
        """Tear down a process that has finished: names, links, monitors.

        Args:
            proc: the process.
            reason: its exit reason.
        """
        if not proc.alive:
            return
        proc.alive = False
        pid = proc.pid
        self.procs.pop(pid.id, None)
        if telemetry.active:
            telemetry.execute(_EXIT, {}, {"pid": pid, "reason": reason})
        if proc.name is not None:
            self._drop_name(proc)
        if proc.cleanups:
            for fn in proc.cleanups:
                try:
                    fn(proc, reason)
                except Exception:  # pragma: no cover - cleanup hooks are ours
                    logger.exception("cleanup hook failed for %r", pid)
        if proc.links:
            for other in proc.links:
                self.signal_exit(other, pid, reason, link=True)
        if proc.monitored_by:
            for ref, (watcher, by) in proc.monitored_by.items():
                w = self.local(watcher)
                if w is not None:
                    # A monitor still in place, or the monitor of a call still
                    # waiting for its reply; a call already answered gets no Down.
                    mons = w.monitors
                    if (mons is not None and mons.pop(ref, None) is not None) or (
                            w.aliases is not None and ref in w.aliases):
                        w.deliver(Down(ref, by, reason))
                elif watcher.node is not self.name and self.dist is not None:
                    self.dist.send_down(watcher, ref, by, reason)
        if proc.monitors:
            for ref, target in proc.monitors.items():
                self._drop_monitor(ref, target)
        proc.links = proc.monitors = proc.monitored_by = proc.aliases = None
        proc.mailbox = proc.waiters = proc.replies = None
        proc.cleanups = None
        if self._shutting_down:
            self._exited_event.set()

    def _drop_monitor(self, ref: Ref, target: Any) -> None:
        if self.dist is not None and self.is_remote(target):
            self.dist.demonitor(target, ref)
            return
        p = self.local(target) if type(target) is Pid else None
        if p is not None and p.monitored_by is not None:
            p.monitored_by.pop(ref, None)

    def signal_exit(self, target: Pid, sender: Pid, reason: ExitReason, link: bool) -> None:
        """Deliver an exit signal with Erlang's rules.

        Args:
            target: the process receiving the signal.
            sender: the process it comes from.
            reason: the exit reason carried.
            link: True for a link exit (the sender died), False for `exit/2`.
        """
        proc = self.local(target)
        if proc is None:
            if target.node is not self.name and self.dist is not None:
                self.dist.send_exit(target, sender, reason, link)
            return
        if not proc.alive:
            return
        if link:
            if proc.links is None or sender not in proc.links:
                return  # unlinked meanwhile: the signal is ignored
            proc.links.discard(sender)
        elif type(reason) is Kill:
            self.kill(proc, KILLED)
            return
        if proc.trap:
            proc.deliver(Exit(sender, reason))
        elif type(reason) is Normal:
            if sender == target:
                self.kill(proc, reason)
        else:
            self.kill(proc, reason)

    def kill(self, proc: Process, reason: ExitReason) -> None:
        """Make a process exit with ``reason`` (cancel its task)."""
        if proc.pending is None:
            proc.pending = reason
        proc.scope.cancel()

    # ------------------------------------------------------------- delivery

    def local(self, pid: Pid) -> Process | None:
        """The live local process of ``pid``, if any."""
        proc: Process | None = pid._proc
        if proc is None:
            if pid.node is not self.name or pid.creation != self.creation:
                return None
            proc = self.procs.get(pid.id)
            if proc is None:
                return None
            pid._proc = proc
        return proc if proc.alive else None

    def send(self, dest: Any, message: Any) -> None:
        """Send a message (see `otpy.send`)."""
        if type(dest) is Pid:
            proc = dest._proc
            if proc is not None:
                if proc.alive:
                    proc.deliver(message)
                return
            proc = self.local(dest)
            if proc is not None:
                proc.deliver(message)
            elif dest.node is not self.name and self.dist is not None:
                self.dist.send(dest, message)
            return
        pid = self.resolve(dest)
        if pid is None:
            if type(dest) is tuple and self.dist is not None:
                self.dist.send_named(dest[0], dest[1], message)
                return
            raise NotRegisteredError(dest)
        self.send(pid, message)

    def resolve(self, dest: Any) -> Pid | None:
        """Resolve a pid or name to a pid, or None if nobody has it."""
        if type(dest) is Pid:
            return dest
        if type(dest) is str:
            return self.names.get(dest)
        if type(dest) is tuple and len(dest) == 2:
            name, node = dest
            if node == self.name.name or node is self.name:
                return self.names.get(name)
            return None
        if isinstance(dest, NameResolver):
            return dest.whereis_name(self)
        if isinstance(dest, Atom):
            return self.names.get(dest.name)
        raise TypeError(f"not a pid or a name: {dest!r}")

    # ---------------------------------------------------------------- names

    def register(self, name: Any, pid: Pid) -> None:
        """Register ``pid`` under ``name`` (a str, `Via` or `Global`)."""
        proc = self.local(pid)
        if proc is None:
            raise ValueError(f"cannot register {name!r}: {pid!r} is not a live local process")
        if isinstance(name, NameResolver):
            if not name.register_name(self, pid):
                raise ValueError(f"name {name!r} is already registered")
            return
        if not isinstance(name, str):
            raise TypeError(f"a name is a str, Via or Global, not {type(name).__name__}")
        if name in self.names:
            raise ValueError(f"name {name!r} is already registered to {self.names[name]!r}")
        if proc.name is not None:
            raise ValueError(f"{pid!r} is already registered as {proc.name!r}")
        self.names[name] = pid
        proc.name = name

    def unregister(self, name: str) -> None:
        """Remove a local name."""
        pid = self.names.pop(name, None)
        if pid is None:
            raise NotRegisteredError(name)
        proc = self.local(pid)
        if proc is not None:
            proc.name = None

    def _drop_name(self, proc: Process) -> None:
        name = proc.name
        if isinstance(name, str) and self.names.get(name) == proc.pid:
            del self.names[name]
        proc.name = None

    # ------------------------------------------------------------ links etc.

    def link(self, proc: Process, pid: Pid) -> None:
        """Link the calling process ``proc`` with ``pid``."""
        if pid == proc.pid:
            return
        other = self.local(pid)
        if other is None:
            if pid.node is not self.name and self.dist is not None:
                if proc.links is None:
                    proc.links = set()
                proc.links.add(pid)
                self.dist.link(proc.pid, pid)
                return
            if proc.trap:
                proc.deliver(Exit(pid, NOPROC))
                return
            raise ProcessExit(NOPROC)
        if proc.links is None:
            proc.links = {pid}
        else:
            proc.links.add(pid)
        if other.links is None:
            other.links = {proc.pid}
        else:
            other.links.add(proc.pid)

    def unlink(self, proc: Process, pid: Pid) -> None:
        """Remove a link; in-flight link signals from ``pid`` are ignored after this."""
        if proc.links is not None:
            proc.links.discard(pid)
        other = self.local(pid)
        if other is not None:
            if other.links is not None:
                other.links.discard(proc.pid)
        elif pid.node is not self.name and self.dist is not None:
            self.dist.unlink(proc.pid, pid)
        # Drop an Exit from pid that is already queued (Erlang: unlink guarantees
        # the link has no further effect on the caller).
        if proc.trap and proc.mailbox:
            keep = [m for m in proc.mailbox if not (type(m) is Exit and m.pid == pid)]
            if len(keep) != len(proc.mailbox):
                proc.mailbox.clear()
                proc.mailbox.extend(keep)

    def is_remote(self, dest: Any) -> bool:
        """Whether ``dest`` (a pid or ``(name, node)``) lives on another node."""
        if type(dest) is Pid:
            return dest.node is not self.name
        if type(dest) is tuple and len(dest) == 2:
            node = dest[1]
            return (node.name if isinstance(node, Atom) else node) != self.name.name
        return False

    def monitor(self, proc: Process, target: Any, ref: Ref | None = None) -> Ref:
        """Monitor ``target`` (a pid or a name) from ``proc`` (optionally with a given ref)."""
        if ref is None:
            ref = Ref.make(self.name, self.creation)
        if self.dist is not None and self.is_remote(target):
            if proc.monitors is None:
                proc.monitors = {}
            proc.monitors[ref] = target
            self.dist.monitor(proc.pid, target, ref)
            return ref
        pid = target if type(target) is Pid else self.resolve(target)
        by = target
        other = self.local(pid) if pid is not None else None
        if other is None:
            if pid is not None and pid.node is not self.name and self.dist is not None:
                if proc.monitors is None:
                    proc.monitors = {}
                proc.monitors[ref] = pid
                self.dist.monitor(proc.pid, pid, ref)
                return ref
            proc.deliver(Down(ref, by, NOPROC))
            return ref
        if proc.monitors is None:
            proc.monitors = {ref: pid}
        else:
            proc.monitors[ref] = pid
        if other.monitored_by is None:
            other.monitored_by = {ref: (proc.pid, by)}
        else:
            other.monitored_by[ref] = (proc.pid, by)
        return ref

    def demonitor(self, proc: Process, ref: Ref, flush: bool) -> bool:
        """Remove a monitor; with ``flush`` also drop a queued `Down` for it."""
        target = proc.monitors.pop(ref, None) if proc.monitors else None
        if target is not None:
            self._drop_monitor(ref, target)
        if flush:
            flush_ref(proc, ref)
        return target is not None

    # ---------------------------------------------------------- lifecycle

    def alive_procs(self) -> list[Process]:
        """Live processes, oldest first."""
        return [p for p in self.procs.values() if p.alive]

    async def shutdown(self, timeout: float) -> None:
        """Stop every remaining process, supervision trees first and in order.

        Roots (processes not linked to another live process) get an exit
        signal `Shutdown` from the node; trapping servers and supervisors then
        terminate their children in order. Whatever is left after ``timeout``
        seconds is cancelled.

        Args:
            timeout: seconds to wait for an orderly shutdown.
        """
        signalled: set[int] = set()
        self._shutting_down = True
        with trio.move_on_after(timeout):
            while self.procs:
                self._exited_event = trio.Event()
                live = self.alive_procs()
                ids = {p.pid.id for p in live}
                # Roots: processes whose spawner is gone. Their subtrees
                # (supervisors' children) are left to them, in order.
                roots = [
                    p
                    for p in live
                    if p.pid.id not in signalled
                    and (p.parent is None or p.parent.id not in ids)
                ]
                for p in roots:
                    signalled.add(p.pid.id)
                    self.signal_exit(p.pid, self.init_pid, SHUTDOWN, link=False)
                if self.procs:
                    await self._exited_event.wait()
        for p in self.alive_procs():
            self.kill(p, SHUTDOWN)


def _report_crash(proc: Process, reason: Crash) -> None:
    if logger.isEnabledFor(logging.ERROR):
        exc = reason.exception
        logger.error(
            "process %r crashed: %r",
            proc.pid,
            exc,
            exc_info=exc,
            extra={"otpy_report": "crash_report", "otpy_pid": proc.pid,
                   "otpy_name": proc.name, "otpy_reason": reason},
        )


def _task_name(fn: Any) -> str:
    name = getattr(fn, "__qualname__", None)
    return name if type(name) is str else "otpy.process"
