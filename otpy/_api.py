"""The process API as plain functions: spawn, send, link, monitor, exit, names, run.

Every function here acts on behalf of the calling process (found through a
context variable), like Erlang's BIFs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import trio

from otpy._node import Node, NotRegisteredError
from otpy._process import CURRENT, Process, current
from otpy._reasons import (
    NORMAL,
    Crash,
    ExitReason,
    NodeDown,
    Normal,
    ProcessExit,
    Shutdown,
    as_reason,
    leaf_exit,
    lone_exception,
)
from otpy._terms import Pid, Ref

__all__ = [
    "connect",
    "demonitor",
    "disconnect",
    "exit",
    "is_alive",
    "link",
    "monitor",
    "monitor_node",
    "node",
    "nodes",
    "open_node",
    "register",
    "registered",
    "run",
    "self",
    "send",
    "set_cookie",
    "spawn",
    "spawn_link",
    "spawn_monitor",
    "trap_exits",
    "unlink",
    "unregister",
    "whereis",
]

T = TypeVar("T")


def self() -> Pid:
    """The pid of the calling process."""
    return CURRENT.get().pid


def spawn(
    fn: Callable[..., Awaitable[Any]],
    *args: Any,
    link: bool = False,
    trap_exits: bool = False,
    name: str | None = None,
) -> Pid:
    """Start a new process running ``fn(*args)``. Returns at once.

    Args:
        fn: the async function that is the process body.
        *args: its arguments.
        link: link it to the caller atomically (as `spawn_link`).
        trap_exits: the new process starts trapping exits.
        name: register it under this local name before it runs.

    Returns:
        The new process's pid.
    """
    proc = current()
    return proc.node.spawn(fn, args, parent=proc, link=link, trap_exits=trap_exits, name=name)[0]


def spawn_link(fn: Callable[..., Awaitable[Any]], *args: Any) -> Pid:
    """`spawn` and link atomically.

    Args:
        fn: the process body.
        *args: its arguments.

    Returns:
        The new pid.
    """
    proc = current()
    return proc.node.spawn(fn, args, parent=proc, link=True)[0]


def spawn_monitor(fn: Callable[..., Awaitable[Any]], *args: Any) -> tuple[Pid, Ref]:
    """`spawn` and monitor atomically.

    Args:
        fn: the process body.
        *args: its arguments.

    Returns:
        ``(pid, monitor_ref)``.
    """
    proc = current()
    pid, ref = proc.node.spawn(fn, args, parent=proc, monitor=True)
    assert ref is not None
    return pid, ref


def send(dest: Any, message: Any) -> None:
    """Send ``message`` to ``dest``. Never blocks.

    Args:
        dest: a `Pid`, a registered name, ``(name, node)``, `Global` or `Via`.
        message: any value (any term, for a remote destination).

    Raises:
        NotRegisteredError: ``dest`` is a local name nobody holds.
    """
    CURRENT.get().node.send(dest, message)


def link(pid: Pid) -> None:
    """Link the caller with ``pid`` (bidirectional).

    Linking to a dead process delivers ``Exit(pid, NoProc())`` to a trapping
    caller, and makes a non-trapping caller exit with `NoProc`.

    Args:
        pid: the process to link to.
    """
    proc = current()
    proc.node.link(proc, pid)


def unlink(pid: Pid) -> None:
    """Remove the link between the caller and ``pid``.

    Args:
        pid: the linked process.
    """
    proc = current()
    proc.node.unlink(proc, pid)


def monitor(target: Any) -> Ref:
    """Monitor a process; its exit arrives as ``Down(ref, pid, reason)``.

    Monitors stack: each call gives a new reference and a separate `Down`.

    Args:
        target: a pid or a name.

    Returns:
        The monitor reference.
    """
    proc = current()
    return proc.node.monitor(proc, target)


def demonitor(ref: Ref, flush: bool = False) -> bool:
    """Turn a monitor off.

    Args:
        ref: the reference `monitor` returned.
        flush: also remove a `Down` for it that is already in the mailbox.

    Returns:
        True if the monitor was still active.
    """
    proc = current()
    return proc.node.demonitor(proc, ref, flush)


def exit(pid: Pid, reason: Any) -> None:
    """Send an exit signal to ``pid`` (Erlang's ``exit/2``).

    ``Kill()`` cannot be trapped (the target exits `Killed`); `Normal` is
    ignored unless the target traps exits (or is the caller itself); any other
    reason kills a non-trapping target and reaches a trapping one as `Exit`.

    Args:
        pid: the target.
        reason: an `ExitReason` (other values are wrapped with `as_reason`).
    """
    proc = current()
    proc.node.signal_exit(pid, proc.pid, as_reason(reason), link=False)


def trap_exits(flag: bool = True) -> bool:
    """Set whether exit signals reach the caller as `Exit` messages.

    Args:
        flag: the new setting.

    Returns:
        The previous setting.
    """
    proc = current()
    old = proc.trap
    proc.trap = flag
    return old


def is_alive(pid: Pid) -> bool:
    """Whether a local process is alive."""
    return current().node.local(pid) is not None


def register(name: Any, pid: Pid | None = None) -> None:
    """Register a name for ``pid`` (default: the caller).

    Args:
        name: a str (local), `Via` or `Global`.
        pid: the process; defaults to the caller.

    Raises:
        ValueError: the name is taken or the process already has a name.
    """
    proc = current()
    proc.node.register(name, pid if pid is not None else proc.pid)


def unregister(name: str) -> None:
    """Remove a local name.

    Args:
        name: the name.

    Raises:
        NotRegisteredError: nobody holds it.
    """
    current().node.unregister(name)


def whereis(name: Any) -> Pid | None:
    """The pid registered under ``name`` (str, `Via`, `Global`), or None."""
    return current().node.resolve(name)


def registered() -> list[str]:
    """All local names."""
    return list(current().node.names)


def node() -> str:
    """The name of the caller's node (``nonode@nohost`` when not distributed)."""
    return current().node.name.name


def nodes() -> list[str]:
    """The nodes this node is connected to."""
    dist = current().node.dist
    return [] if dist is None else dist.connected_nodes()


def set_cookie(node: str, cookie: str) -> None:
    """Use ``cookie`` for connections this node makes to ``node`` (Erlang's
    ``erlang:set_cookie/2``); other nodes keep the node's own cookie.

    Args:
        node: the peer node.
        cookie: its cookie. Never logged.

    Raises:
        RuntimeError: this node is not distributed.
    """
    dist = current().node.dist
    if dist is None:
        raise RuntimeError("set_cookie needs a distributed node (otpy.run(..., node=...))")
    dist.cookies[node] = cookie


async def connect(node: str) -> bool:
    """Connect to another node (Erlang's ``net_kernel:connect_node``).

    Returns:
        True when connected, False if the node could not be reached (or this
        node is not distributed).
    """
    dist = current().node.dist
    return False if dist is None else await dist.connect(node)


def disconnect(node: str) -> bool:
    """Drop the connection to ``node``; links and monitors across it fire.

    Returns:
        True if there was a connection.
    """
    dist = current().node.dist
    return False if dist is None else dist.disconnect(node)


def monitor_node(name: str, flag: bool = True) -> None:
    """Ask for `NodeDown(name)` when the connection to ``name`` is lost.

    Without a connection (or without distribution) `NodeDown` arrives at once.

    Args:
        name: the node.
        flag: False turns a previous monitor_node off.
    """
    proc = current()
    dist = proc.node.dist
    if dist is None:
        if flag:
            proc.deliver(NodeDown(name))
        return
    dist.monitor_node(proc, name, flag)


# ---------------------------------------------------------------- runtime


@contextlib.asynccontextmanager
async def open_node(
    node: str | None = None,
    cookie: str | None = None,
    *,
    shutdown_timeout: float = 5.0,
    **dist_options: Any,
) -> AsyncIterator[Node]:
    """Run an otpy node inside an existing trio program.

    The body of the ``async with`` runs as a process (it can spawn, receive,
    call, be linked). When the body ends, every remaining process is shut
    down (supervision trees in order, see `Node.shutdown`).

    Args:
        node: ``"name@host"`` to make the node distributed.
        cookie: the distribution cookie.
        shutdown_timeout: seconds allowed for the orderly shutdown.
        **dist_options: options for the distribution layer (and ``observer``:
            False to run no ``otpy_observer`` process, see docs/otpy/observer.md).

    Yields:
        The `Node`.

    Raises:
        ProcessExit: the body process was killed by an exit signal.
    """
    rt = Node(node)
    error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            rt.nursery = nursery
            nursery.start_soon(rt.timers.run)
            if node is not None:
                await _start_distribution(rt, node, cookie, nursery, dist_options)
            proc = _main_process(rt)
            token = CURRENT.set(proc)
            reason: ExitReason = NORMAL
            try:
                with proc.scope:
                    yield rt
            except ProcessExit as exc:
                reason = exc.reason
            except BaseException as exc:
                exit_ = leaf_exit(exc)
                if exit_ is not None:  # a task of the body exited it, inside a nursery's group
                    reason = exit_.reason
                else:
                    reason = Crash(exc) if isinstance(exc, Exception) else Shutdown("node stopped")
                    error = exc
            finally:
                CURRENT.reset(token)
            if proc.pending is not None:
                reason = proc.pending
            rt.exited(proc, reason)
            await rt.shutdown(shutdown_timeout)
            if rt.dist is not None:
                await rt.dist.stop()
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # A bad cookie, option or address while distribution starts (or a
        # runtime task's own failure) surfaces as itself, not in the nursery's
        # ExceptionGroup.
        raise lone_exception(group) from None
    if error is not None:
        raise error
    if not isinstance(reason, Normal):
        raise ProcessExit(reason)


async def _start_distribution(
    rt: Node, name: str, cookie: str | None, nursery: trio.Nursery, options: dict[str, Any]
) -> None:
    from otpy.dist._cookie import default_cookie
    from otpy.dist._distribution import Distribution
    from otpy.dist.rpc import start_system_servers

    allow = options.pop("rpc_allow", ())
    observer = options.pop("observer", True)
    dist = Distribution(rt, name, cookie if cookie is not None else default_cookie(),
                        rpc_allow=allow, **options)
    await dist.start(nursery)
    rt.creation = dist.creation
    rt.init_pid = Pid(rt.name, 0, 0, rt.creation)
    rt.dist = dist
    start_system_servers(rt, allow)
    if observer:  # the read-only otpy_observer process (docs/otpy/observer.md)
        from otpy.observer._backend import ensure_backend

        ensure_backend(rt)


def _main_process(rt: Node) -> Process:
    """The process record of the task running the body of `open_node`."""
    pid = Pid(rt.name, next(rt._ids), 0, rt.creation)
    proc = Process(rt, pid, False)
    pid._proc = proc
    rt.procs[pid.id] = proc
    return proc


def run(
    main: Callable[..., Awaitable[T]],
    *args: Any,
    node: str | None = None,
    cookie: str | None = None,
    shutdown_timeout: float = 5.0,
    clock: trio.abc.Clock | None = None,
    **kw: Any,
) -> T:
    """Run ``main(*args)`` as the first process of a new node (like `trio.run`).

    Args:
        main: the async function.
        *args: its arguments.
        node: ``"name@host"`` for a distributed node.
        cookie: the distribution cookie.
        shutdown_timeout: seconds for the orderly shutdown after ``main``.
        clock: a trio clock (e.g. ``trio.testing.MockClock``).
        **kw: distribution options.

    Returns:
        What ``main`` returned.

    Raises:
        Exception: the exception ``main`` raised.
        ProcessExit: ``main`` was killed by an exit signal.
    """
    result: list[T] = []

    async def boot() -> None:
        async with open_node(node, cookie, shutdown_timeout=shutdown_timeout, **kw):
            result.append(await main(*args))

    trio.run(boot, clock=clock)
    return result[0]


__all__ += ["NotRegisteredError"]
