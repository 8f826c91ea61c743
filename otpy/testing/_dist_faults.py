"""Faults between nodes: a connection cut, a partition, and healing.

`Cut` shuts the TCP connection to a peer node down at the socket, at once:
both nodes see the connection break (not a polite disconnect) and deliver
`NoConnection` to every link and monitor across it. `Partition` freezes a
peer node's OS process (SIGSTOP), as a network partition does: nothing is
closed, the tick timeout notices; `Heal` lets it run again (SIGCONT) and
connects again. They run on the real clock (real sockets, real processes):
give the next fault's ``at`` enough real seconds for the tick time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket

import attrs

from otpy._terms import Atom, Pid
from otpy.testing._faults import Action, FaultContext

__all__ = ["Cut", "Heal", "Partition"]


def _socket_fd(ctx: FaultContext, node: str) -> int | None:
    dist = ctx.node.dist
    if dist is None:
        raise RuntimeError("connection faults need a distributed node")
    conn = dist.conns.get(Atom(node))
    dc = getattr(conn, "dc", None)
    if conn is None or dc is None or not conn.up:
        return None
    stream = dc.stream
    while not hasattr(stream, "socket") and hasattr(stream, "transport_stream"):
        stream = stream.transport_stream  # TLS: the TCP stream below it
    sock = getattr(stream, "socket", None)
    return sock.fileno() if sock is not None else None


@attrs.frozen
class Cut(Action):
    """Break the TCP connection to ``node`` at the socket (both directions).

    Attributes:
        node: the peer node's name.
    """

    node: str
    needs_target = False

    async def apply(self, ctx: FaultContext, pid: Pid | None) -> None:
        """Shut the connection's socket down; both sides see it break."""
        fd = _socket_fd(ctx, self.node)
        if fd is None:
            ctx.report.note("note", f"no connection to {self.node} to cut")
            return
        # A socket object on a duplicate of the descriptor: shutdown() acts on
        # the connection itself, closing the duplicate leaves the original.
        sock = socket.socket(fileno=os.dup(fd))
        try:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()


@attrs.frozen
class Partition(Action):
    """Freeze the peer node's OS process: the connection goes silent.

    Attributes:
        node: the peer node's name (for the timeline).
        os_pid: its OS process id (e.g. ``py_nodes[0].os_pid``).
    """

    node: str
    os_pid: int
    needs_target = False

    async def apply(self, ctx: FaultContext, pid: Pid | None) -> None:
        """SIGSTOP the peer."""
        os.kill(self.os_pid, signal.SIGSTOP)


@attrs.frozen
class Heal(Action):
    """End a `Partition` (SIGCONT) and connect to the node again.

    Attributes:
        node: the peer node's name.
        os_pid: its OS process id, when it was partitioned.
    """

    node: str
    os_pid: int | None = None
    needs_target = False

    async def apply(self, ctx: FaultContext, pid: Pid | None) -> None:
        """SIGCONT the peer, then reconnect."""
        if self.os_pid is not None:
            os.kill(self.os_pid, signal.SIGCONT)
        dist = ctx.node.dist
        if dist is None:
            raise RuntimeError("connection faults need a distributed node")
        up = await dist.connect(self.node)
        ctx.report.note("heal", f"{self.node} {'connected' if up else 'not reachable'}")
