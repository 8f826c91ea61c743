"""One connection to a peer node: its outbox and what crosses it.

A `Connection` is the state `otpy.dist._distribution.Distribution` keeps per
peer: the packets waiting to be written (sending never blocks), the links and
monitors that cross it (each fires with `NoConnection` when it is lost), and
small caches of encoded packet heads.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from otpy._terms import Atom, Pid, Ref
from otpy.dist._handshake_io import DistConnection
from otpy.dist._show import show_name

if TYPE_CHECKING:
    from otpy.dist._distribution import Distribution

__all__ = ["Connection", "remember"]

logger = logging.getLogger("otpy.dist")

_K = TypeVar("_K")
_V = TypeVar("_V")


class Connection:
    """One connection to a peer node (possibly still being set up)."""

    def __init__(self, dist: Distribution, peer: Atom) -> None:
        self.dist = dist
        self.peer = peer
        self.label = show_name(peer.name)  # the peer's name as logs show it
        self.up = False
        self.dc: DistConnection | None = None
        self.outbox: deque[bytes] = deque()
        # Bytes in the outbox and being written; past dist.busy_limit the reader
        # pauses (`busy` is then the event that resumes it), past `limit`
        # (dist.max_queue; -1 once closed) a push drops the connection.
        self.queued = 0
        self.limit = dist.max_queue
        self.busy: trio.Event | None = None
        self.wake = trio.Event()
        self.ready = trio.Event()  # set once up, or closed
        self.scope = trio.CancelScope()
        self.closed = False
        # (local pid, remote pid) pairs linked across this connection
        self.links: set[tuple[Pid, Pid]] = set()
        # our monitors of remote processes: ref -> (local watcher, target as given)
        self.monitors: dict[Ref, tuple[Pid, Any]] = {}
        # the peer's monitors of our processes: ref -> (remote watcher, local pid)
        self.remote_monitors: dict[Ref, tuple[Pid, Pid]] = {}
        self.node_watchers: dict[Pid, int] = {}
        self.last_recv = trio.current_time()
        self.sent_since_tick = False
        self.unlink_ids = itertools.count(1)
        # encoded b"p" + SEND control per destination pid (bounded)
        self.send_heads: dict[Pid, bytes] = {}
        # (caller, server) -> packet heads of a call's MONITOR_P, request and
        # DEMONITOR_P, each completed by the call's reference or message (bounded)
        self.call_heads: dict[tuple[Pid, Any], tuple[bytes, bytes, bytes]] = {}
        # our replying pid -> packet head of ALIAS_SEND {33, Pid, ...} (bounded)
        self.reply_heads: dict[Pid, bytes] = {}
        # Direct writes: when the writer task is idle and nothing is queued, a
        # packet is written to the socket by the sending task itself (one
        # task switch less on a call's critical path); a burst in the same
        # scheduler round is queued and batched by the writer instead.
        self.fd: int | None = None
        self.writing = False
        self.direct_used = False
        self.corked = 0
        # Received bytes of an incomplete packet, and how many it needs.
        self.rbuf = bytearray()
        self.rneed = 0

    def push(self, packet: bytes) -> None:
        """Send a packet: written at once if the socket is idle, else queued (never blocks).

        Past the hard cap (the node's ``max_queue`` bytes queued) the packet is
        not queued and the connection is dropped instead (see `overflow`).
        """
        queued = self.queued
        if queued > self.limit:
            self.overflow()
            return
        n = len(packet)
        self.outbox.append(n.to_bytes(4, "big") + packet)
        self.queued = queued + n + 4
        self.sent_since_tick = True
        if self.corked:
            return
        if self.fd is not None and not self.direct_used and not self.writing:
            self.flush_direct()
        elif not self.wake.is_set():
            self.wake.set()

    def push_later(self, packet: bytes) -> None:
        """Queue a packet that need not leave at once (a demonitor): it goes out
        with the next packet written, or when the writer next runs."""
        if self.queued > self.limit:
            self.overflow()
            return
        data = len(packet).to_bytes(4, "big") + packet
        self.outbox.append(data)
        self.queued += len(data)
        self.sent_since_tick = True
        if not self.wake.is_set():
            self.wake.set()

    def flush_direct(self) -> None:
        """Write what is queued straight to the socket, if the writer is idle."""
        box = self.outbox
        fd = self.fd
        if box and fd is not None and not self.writing:
            data = box[0] if len(box) == 1 else b"".join(box)
            box.clear()
            try:
                n = os.write(fd, data)
            except OSError:  # EAGAIN, or broken: the writer (and reader) will tell
                n = 0
            self.direct_used = True  # re-armed by the next packet read, or the writer
            if n == len(data):
                self.queued = 0
                return
            box.append(data[n:])
            self.queued = len(data) - n
        if not self.wake.is_set():
            self.wake.set()  # the writer sends the rest

    def uncork(self) -> None:
        """End a batch that ``corked += 1`` started: send what it pushed, in one write."""
        self.corked -= 1
        if not self.corked and self.outbox:
            if self.fd is not None and not self.direct_used and not self.writing:
                self.flush_direct()
            elif not self.wake.is_set():
                self.wake.set()

    def overflow(self) -> None:
        """A packet pushed past the hard cap: drop the connection (once).

        Its links and monitors fire with `NoConnection`, as for any lost
        connection; the reason is logged. A closed connection takes nothing.
        """
        if self.closed:
            return
        why = (f"{self.queued} bytes queued for it, over max_queue={self.dist.max_queue} "
               "(it does not read what it is sent)")
        if not self.up:  # a connection being set up: `drop` logs only lost ones
            logger.warning("dropping the connection to %s being set up: %s", self.label, why)
        self.dist.drop(self, why)

    def __repr__(self) -> str:
        return f"<Connection {self.label} {'up' if self.up else 'setting up'}>"


def remember(cache: dict[_K, _V], key: _K, value: _V) -> _V:
    """Store an encoding in one of a connection's caches, emptied past 4096 entries."""
    if len(cache) > 4096:
        cache.clear()
    cache[key] = value
    return value
