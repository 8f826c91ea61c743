"""The distribution runtime: connections to other nodes and what crosses them.

One `Distribution` per named node. It listens for connections, registers the
node with EPMD (starting an embedded EPMD when none runs), connects on demand
(a send, link, monitor or call to a node we are not connected to), and per
connection runs a reader, a writer and a ticker.

Sending never blocks: packets go to the connection's outbox (buffered while
the connection is being set up) and a writer task flushes them in batches.

Every link and monitor that crosses a connection is recorded on it. When the
connection is lost — the peer closed it, the socket broke, ticks stopped
arriving within ``net_ticktime``, or a setup failed — each of them fires with
`NoConnection` on this side (the peer does the same on its side), `NodeDown`
reaches `monitor_node` watchers, and the connection entry is removed so the
next send reconnects.
"""

from __future__ import annotations

import logging
import os
import ssl
from typing import TYPE_CHECKING, Any

import trio

from otpy import telemetry
from otpy._process import flush_ref
from otpy._reasons import NOPROC, Down, ExitReason, NoConnection, NodeDown
from otpy._terms import Atom, Pid, Ref
from otpy.dist import _control as ctl
from otpy.dist._connection import Connection, remember
from otpy.dist._control import ControlError, reason_to_term, term_to_reason
from otpy.dist._cookie import check_cookie
from otpy.dist._epmd_io import EPMD_MODES, Registration, ensure_epmd, register
from otpy.dist._etf import ETFDecodeError, decode_at, set_max_atoms, term_ext, term_to_binary
from otpy.dist._global import GlobalNames
from otpy.dist._handshake import (
    DFLAG_PUBLISHED,
    HandshakeError,
    HandshakeRejected,
    simultaneous_status,
    split_node,
)
from otpy.dist._handshake_io import ConnectionLost, DistConnection, accept, connect_to_node
from otpy.dist._show import show, show_name
from otpy.dist._tls import TLSConfig, tls_failure

if TYPE_CHECKING:
    from otpy._node import Node
    from otpy._process import Process

__all__ = ["DEFAULT_BUSY_LIMIT", "DEFAULT_MAX_QUEUE", "CallHandle", "Distribution"]

logger = logging.getLogger("otpy.dist")
_EMPTY = Atom("")
# telemetry events (docs/otpy/telemetry.md)
_NODE_UP = ("otpy", "dist", "node_up")
_NODE_DOWN = ("otpy", "dist", "node_down")
_CONNECT_FAILED = ("otpy", "dist", "connect_failed")

#: Bytes queued for a peer past which the node stops reading from it until they
#: drain (Erlang's ``dist_buf_busy_limit`` default).
DEFAULT_BUSY_LIMIT = 1 << 20
#: Bytes queued for a peer past which a further send drops the connection.
DEFAULT_MAX_QUEUE = 64 << 20


class _Cookies(dict[str, str]):
    """Per-node cookies (`otpy.set_cookie`): each is checked when it is set."""

    def __setitem__(self, node: str, cookie: str) -> None:
        super().__setitem__(node, check_cookie(cookie))

    def __repr__(self) -> str:
        return f"<{len(self)} per-node cookies>"


#: What `Distribution.start_call` hands to `Distribution.end_call`: the
#: connection and the head of the call's DEMONITOR_P packet.
CallHandle = tuple[Connection, bytes]


class Distribution:
    """The distribution layer of one node. Created by `otpy.open_node(node=...)`."""

    def __init__(
        self,
        node: Node,
        name: str,
        cookie: str,
        *,
        hidden: bool = False,
        net_ticktime: float = 60.0,
        epmd_port: int | None = None,
        listen_host: str = "0.0.0.0",
        connect_timeout: float = 7.0,
        rpc_allow: Any = (),
        tls: TLSConfig | None = None,
        busy_limit: int = DEFAULT_BUSY_LIMIT,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_atoms: int | None = None,
        epmd: str = "daemon",
    ) -> None:
        if "@" not in name:
            raise ValueError(f"a node name is 'name@host', not {name!r}")
        for option, value in (("busy_limit", busy_limit), ("max_queue", max_queue)):
            if type(value) is not int or value < 1:
                raise ValueError(f"{option} must be a positive int, not {value!r}")
        if epmd not in EPMD_MODES:
            raise ValueError(f"epmd must be one of {', '.join(EPMD_MODES)}, not {epmd!r}")
        if max_atoms is not None:
            set_max_atoms(max_atoms)
        self.node = node
        self.name = name
        self.alive_name, self.host = split_node(name)
        self.cookie = check_cookie(cookie)
        self.busy_limit = busy_limit
        self.max_queue = max_queue
        self.epmd = epmd
        self.hidden = hidden
        self.net_ticktime = net_ticktime
        self.epmd_port = epmd_port
        self.listen_host = listen_host
        self.connect_timeout = connect_timeout
        from otpy.dist.rpc import check_allow_list

        self.rpc_allow = check_allow_list(rpc_allow)
        self.tls_server = tls.server_context() if tls is not None else None
        self.tls_client = tls.client_context() if tls is not None else None
        self.conns: dict[Atom, Connection] = {}
        self.cookies: dict[str, str] = _Cookies()  # per-node cookies (erlang:set_cookie/2)
        self.aliases: dict[Ref, Process] = {}
        self.registration: Registration | None = None
        self.port = 0
        self.nursery: trio.Nursery | None = None
        self.globals = GlobalNames(node)

    # ---------------------------------------------------------------- start

    async def start(self, nursery: trio.Nursery) -> None:
        """Listen, make sure EPMD runs, register. Sets the node's creation.

        Args:
            nursery: where the listener and connection tasks run.
        """
        self.nursery = nursery
        listeners = await trio.open_tcp_listeners(0, host=self.listen_host)
        self.port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(self._accept_loop, listeners)
        await ensure_epmd(nursery, self.epmd_port, mode=self.epmd)
        self.registration = await register(
            self.alive_name, self.port, hidden=self.hidden, epmd_port=self.epmd_port
        )
        logger.info("node %s listening on port %d (creation %d)", self.name, self.port,
                    self.registration.creation)

    async def stop(self) -> None:
        """Drop every connection and unregister from EPMD."""
        for conn in list(self.conns.values()):
            self._drop(conn, "node stopping")
        if self.registration is not None:
            await self.registration.aclose()

    @property
    def creation(self) -> int:
        """The creation EPMD gave this incarnation of the node."""
        return self.registration.creation if self.registration else 0

    # ------------------------------------------------------------ connecting

    def connected_nodes(self) -> list[str]:
        """Names of the nodes with an established connection."""
        return [c.peer.name for c in self.conns.values() if c.up]

    def _conn(self, peer: Atom) -> Connection:
        conn = self.conns.get(peer)
        if conn is None:
            conn = self.conns[peer] = Connection(self, peer)
            assert self.nursery is not None
            self.nursery.start_soon(self._connect, conn)
        return conn

    async def connect(self, peer: str) -> bool:
        """Connect to ``peer`` (if not already connected).

        Returns:
            True once connected, False if the connection could not be made.
        """
        if peer == self.name:
            return True
        conn = self._conn(Atom(peer))
        await conn.ready.wait()
        if conn.up:
            # Return with the peer's global names known here (global:sync/0).
            await self.globals.exchange(peer, self.connect_timeout)
        return conn.up

    def disconnect(self, peer: str) -> bool:
        """Drop the connection to ``peer``.

        Returns:
            True if there was one.
        """
        conn = self.conns.get(Atom(peer))
        if conn is None:
            return False
        self._drop(conn, "disconnected")
        return True

    async def _connect(self, conn: Connection) -> None:
        try:
            dc = await connect_to_node(
                conn.peer.name,
                this_node=self.name,
                cookie=self.cookies.get(conn.peer.name, self.cookie),
                creation=self.creation,
                hidden=self.hidden,
                epmd_port=self.epmd_port,
                timeout=self.connect_timeout,
                ssl_context=self.tls_client,
            )
        except Exception as exc:
            if isinstance(exc, HandshakeRejected) and exc.status == "nok":
                # Simultaneous connect that the peer won: its connection to us
                # takes over this entry (see _accepted).
                with trio.move_on_after(self.connect_timeout):
                    await conn.ready.wait()
            if not conn.up and not conn.closed and self.conns.get(conn.peer) is conn:
                logger.warning("cannot connect to %s: %s", conn.label, exc, extra={
                    "otpy_report": "connect_failed", "otpy_node": conn.peer.name,
                    "otpy_why": str(exc)})
                if telemetry.active:
                    telemetry.execute(_CONNECT_FAILED, {}, {"node": conn.peer.name,
                                                            "reason": str(exc)})
                self._drop(conn, f"connect failed: {exc}")
            return
        if conn.closed or self.conns.get(conn.peer) is not conn:
            await trio.aclose_forcefully(dc.stream)
            return
        await self._run_connection(conn, dc)

    async def _accept_loop(self, listeners: list[trio.SocketListener]) -> None:
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(trio.serve_listeners, self._accepted, [listener])

    async def _accepted(self, stream: trio.SocketStream) -> None:
        try:
            await self._accept_one(stream)
        except Exception:  # one bad connection attempt must never stop the listener
            logger.exception("error while accepting a distribution connection")
            await trio.aclose_forcefully(stream)

    async def _accept_one(self, stream: trio.SocketStream) -> None:
        def decide(peer: str, flags: int) -> str:
            existing = self.conns.get(Atom(peer))
            if existing is None:
                return "ok"
            if existing.up:
                return "alive"
            return simultaneous_status(self.name, peer)

        if self.tls_server is not None:
            tls = trio.SSLStream(stream, self.tls_server, server_side=True)
            try:
                with trio.fail_after(self.connect_timeout):
                    await tls.do_handshake()
            except (trio.BrokenResourceError, trio.TooSlowError, ssl.SSLError) as exc:
                logger.warning("refused a distribution connection: TLS failed: %s",
                               tls_failure(exc))
                await trio.aclose_forcefully(stream)
                return
            stream = tls  # type: ignore[assignment]
        try:
            dc = await accept(stream, this_node=self.name, cookie=self.cookie,
                              creation=self.creation, hidden=self.hidden,
                              timeout=self.connect_timeout, decide_status=decide,
                              header=4 if self.tls_server is not None else 2)
        except HandshakeError as exc:
            logger.warning("refused a distribution connection: %s", exc, extra={
                "otpy_report": "connection_refused", "otpy_why": str(exc)})
            return
        peer = Atom(dc.peer_node)
        old = self.conns.get(peer)
        if old is not None:
            # "alive" (a stale connection) or a simultaneous connect we lost:
            # the accepted connection replaces ours, keeping what was queued.
            if old.up:
                self._drop(old, "replaced by a new connection")
                conn = self.conns[peer] = Connection(self, peer)
            else:
                conn = old
        else:
            conn = self.conns[peer] = Connection(self, peer)
        await self._run_connection(conn, dc)

    async def _run_connection(self, conn: Connection, dc: DistConnection) -> None:
        conn.dc = dc
        conn.up = True
        conn.last_recv = trio.current_time()
        conn.wake.set()
        conn.ready.set()
        logger.info("connected to %s", conn.label, extra={
            "otpy_report": "connected", "otpy_node": conn.peer.name})
        if telemetry.active:
            telemetry.execute(_NODE_UP, {}, {
                "node": conn.peer.name, "hidden": not dc.peer_flags & DFLAG_PUBLISHED})
        self.globals.connection_up(conn.peer.name)
        reason = "connection closed"
        with conn.scope:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, conn)
                    nursery.start_soon(self._ticker, conn)
                    await self._reader(conn)
            except* ConnectionLost as group:
                reason = str(group.exceptions[0])
            except* ControlError as group:
                logger.error("bad data from %s, dropping the connection: %s", conn.label,
                             group.exceptions[0])
                reason = f"protocol error: {group.exceptions[0]}"
            except* Exception as group:  # a bug must not take the node down
                logger.error("connection to %s failed", conn.label,
                             exc_info=group.exceptions[0])
                reason = f"internal error: {show(group.exceptions[0])}"
        self._drop(conn, reason)
        await trio.aclose_forcefully(dc.stream)

    # ------------------------------------------------------------- the wire

    async def _writer(self, conn: Connection) -> None:
        dc = conn.dc
        assert dc is not None
        stream = dc.stream
        box = conn.outbox
        conn.fd = dc.fileno  # None over TLS: no direct writes
        while True:
            if not box:
                conn.direct_used = False
                conn.wake = trio.Event()
                await conn.wake.wait()
                continue
            parts = []
            size = 0
            while box and size < 1 << 20:
                p = box.popleft()
                parts.append(p)
                size += len(p)
            conn.writing = True
            try:
                await stream.send_all(b"".join(parts))
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ConnectionLost(f"connection to {conn.label} broke: {exc}") from exc
            finally:
                conn.writing = False
            conn.queued -= size
            if conn.busy is not None:
                # The peer reads what we send: it is alive (with our reader
                # paused this is the only sign); under the limit it may send again.
                conn.last_recv = trio.current_time()
                if conn.queued <= self.busy_limit:
                    conn.busy.set()
                    conn.busy = None

    async def _ticker(self, conn: Connection) -> None:
        interval = self.net_ticktime / 4
        while True:
            await trio.sleep(interval)
            if trio.current_time() - conn.last_recv > self.net_ticktime:
                raise ConnectionLost(
                    f"{conn.label} sent nothing for {self.net_ticktime} s (net tick timeout)"
                    if conn.busy is None else
                    f"{conn.label} read nothing of the {conn.queued} bytes queued for it for "
                    f"{self.net_ticktime} s (busy; net tick timeout)")
            if not conn.sent_since_tick:
                conn.push(b"")
            conn.sent_since_tick = False

    async def _paused(self, conn: Connection) -> None:
        """Stop reading from a peer until its output drains under ``busy_limit``
        (Erlang's ``dist_buf_busy_limit``): a peer that never reads what it is
        sent gets no further (its own sends block), and past ``net_ticktime``
        without progress the ticker drops the connection."""
        if conn.busy is None:
            conn.busy = trio.Event()
            logger.info("connection to %s is busy (%d bytes queued): not reading from it "
                        "until they drain", conn.label, conn.queued)
        await conn.busy.wait()

    async def _reader(self, conn: Connection) -> None:
        dc = conn.dc
        assert dc is not None
        fd = dc.fileno
        if fd is None:  # TLS: through the stream
            while True:
                if conn.queued > self.busy_limit:
                    await self._paused(conn)
                packet = await dc.receive_packet()
                conn.last_recv = trio.current_time()
                if packet:
                    control, message = ctl.decode_packet(packet)
                    self._dispatch(conn, control, message)
        # Plain TCP: read the socket directly (see _feed).
        rest = dc.take_buffered()
        if rest:
            self._feed(conn, rest)
        wait_readable = trio.lowlevel.wait_readable
        read = os.read
        peer = conn.label
        limit = self.busy_limit
        while True:
            if conn.queued > limit:
                await self._paused(conn)
            await wait_readable(fd)
            try:
                data = read(fd, 262144)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise ConnectionLost(f"connection to {peer} broke: {exc}") from exc
            if not data:
                cut = " in the middle of a packet" if conn.rbuf else ""
                raise ConnectionLost(f"{peer} closed the connection{cut}")
            self._feed(conn, data)

    def _feed(self, conn: Connection, data: bytes) -> None:
        """Dispatch the complete 4-byte framed packets in ``data`` (after what
        was buffered); keep the incomplete rest."""
        buf = conn.rbuf
        conn.last_recv = trio.current_time()
        conn.direct_used = False  # a new exchange: direct writes are fine again
        if buf:
            buf += data
            if len(buf) < conn.rneed:
                return
            data = bytes(buf)
            buf.clear()
        decode_packet = ctl.decode_packet
        dispatch = self._dispatch
        pos = 0
        end = len(data)
        while end - pos >= 4:
            size = int.from_bytes(data[pos:pos + 4], "big")
            stop = pos + 4 + size
            if stop > end:
                break
            if size:
                fast = _FAST_PATHS.get(data[pos + 4:pos + 10])
                if fast is not None and fast(self, conn, data, pos + 10, stop):
                    pos = stop
                    continue
                control, message = decode_packet(data[pos + 4:stop])
                dispatch(conn, control, message)
            pos = stop
        if pos != end:
            buf += data[pos:] if pos else data
            conn.rneed = 4 + int.from_bytes(buf[:4], "big") if len(buf) >= 4 else 4

    # Fast paths for the packets of calls and messages, chosen by the packet's
    # first six bytes (b"p", 131, the control tuple's head and its opcode). Each
    # gets the offset of the control's first argument and returns False when the
    # packet is not exactly the expected shape: the generic path then decodes
    # (and, if need be, rejects) it.

    def _fast_reg_send(self, conn: Connection, data: bytes, pos: int, stop: int) -> bool:
        """REG_SEND ``{6, From, '', ToName}`` and its message."""
        try:
            sender, pos = decode_at(data, pos)
            _unused, pos = decode_at(data, pos)
            name, pos = decode_at(data, pos)
            if type(sender) is not Pid or type(name) is not Atom or data[pos] != 131:
                return False
            message, end = decode_at(data, pos + 1)
        except (ETFDecodeError, IndexError):
            return False
        if end != stop:
            return False
        pid = self.node.names.get(name.name)
        if pid is not None:
            self._deliver(pid, message)
        return True

    def _fast_monitor(self, conn: Connection, data: bytes, pos: int, stop: int) -> bool:
        """MONITOR_P ``{19, Watcher, Target, Ref}``."""
        args = _monitor_args(data, pos, stop)
        if args is None:
            return False
        self._monitor(conn, *args)
        return True

    def _fast_demonitor(self, conn: Connection, data: bytes, pos: int, stop: int) -> bool:
        """DEMONITOR_P ``{20, Watcher, Target, Ref}``."""
        args = _monitor_args(data, pos, stop)
        if args is None:
            return False
        self._demonitor(conn, args[2])
        return True

    def _call_reply(self, conn: Connection, data: bytes, pos: int, stop: int) -> bool:
        """ALIAS_SEND ``{33, From, Alias}`` with ``{[alias | Alias], Value}``: the reply
        to one of our calls, delivered as ``(Alias, Value)`` without decoding the tag."""
        try:
            _sender, pos = decode_at(data, pos)
            alias, pos = decode_at(data, pos)
            if type(alias) is not Ref or not data.startswith(ctl.REPLY_HEAD, pos):
                return False
            ext = alias._ext
            pos += len(ctl.REPLY_HEAD)
            if ext is None or not data.startswith(ext, pos):
                return False
            value, end = decode_at(data, pos + len(ext))
        except ETFDecodeError:
            return False
        if end != stop:
            return False
        proc = self.aliases.get(alias)
        if proc is not None and proc.alive:
            proc.deliver((alias, value))
        return True

    def _dispatch(self, conn: Connection, control: tuple[Any, ...], message: Any) -> None:
        node = self.node
        op = control[0]
        # The controls of messages and calls first.
        if op == ctl.SEND or op == ctl.SEND_SENDER:
            self._deliver(control[2], message)  # SEND {2, _, To}; SEND_SENDER {22, From, To}
        elif op == ctl.REG_SEND:
            pid = node.names.get(control[3].name)
            if pid is not None:
                self._deliver(pid, message)
        elif op == ctl.MONITOR_P:
            self._monitor(conn, control[1], control[2], control[3])
        elif op == ctl.DEMONITOR_P:
            self._demonitor(conn, control[3])
        elif op == ctl.ALIAS_SEND:
            alias = control[2]
            proc = self.aliases.get(alias)
            if proc is not None and proc.alive:
                if type(message) is tuple and len(message) == 2 and ctl.tag_alias(
                        message[0]) == alias:
                    message = (alias, message[1])  # a gen reply: as a local one
                proc.deliver(message)
        elif op == ctl.LINK:
            remote, local = control[1], control[2]
            proc = node.local(local)
            if proc is None:
                conn.push(ctl.encode_packet((ctl.EXIT, local, remote, reason_to_term(NOPROC))))
                return
            if proc.links is None:
                proc.links = set()
            proc.links.add(remote)
            conn.links.add((local, remote))
        elif op == ctl.EXIT:
            remote, local, reason = control[1], control[2], control[3]
            conn.links.discard((local, remote))
            node.signal_exit(local, remote, term_to_reason(reason, conn.peer.name), link=True)
        elif op == ctl.EXIT2:
            remote, local, reason = control[1], control[2], control[3]
            node.signal_exit(local, remote, term_to_reason(reason, conn.peer.name), link=False)
        elif op in (ctl.UNLINK_ID, ctl.UNLINK):
            if op == ctl.UNLINK_ID:
                uid, remote, local = control[1], control[2], control[3]
            else:
                uid, remote, local = None, control[1], control[2]
            conn.links.discard((local, remote))
            proc = node.local(local)
            if proc is not None and proc.links is not None:
                proc.links.discard(remote)
            if uid is not None:
                conn.push(ctl.encode_packet((ctl.UNLINK_ID_ACK, uid, local, remote)))
        elif op == ctl.MONITOR_P_EXIT:
            ref, reason = control[3], control[4]
            mon = conn.monitors.pop(ref, None)
            if mon is None:
                return
            watcher, target = mon
            proc = node.local(watcher)
            if proc is not None:
                if proc.monitors is not None:
                    proc.monitors.pop(ref, None)
                proc.deliver(Down(ref, target, term_to_reason(reason, conn.peer.name)))
        elif op == ctl.SPAWN_REQUEST:
            self._spawn_request(conn, control, message)
        elif op == ctl.UNLINK_ID_ACK or op == ctl.GROUP_LEADER or op == ctl.NODE_LINK:
            pass
        else:
            logger.info("ignoring control message %s from %s", show(control[:1]), conn.label)

    def _monitor(self, conn: Connection, watcher: Pid, target: Any, ref: Ref) -> None:
        """MONITOR_P: a remote process monitors a local one (by pid or name)."""
        node = self.node
        pid = node.names.get(target.name) if type(target) is Atom else target
        proc = node.local(pid) if pid is not None else None
        if proc is None:
            conn.push(ctl.encode_packet(
                (ctl.MONITOR_P_EXIT, target, watcher, ref, reason_to_term(NOPROC))))
            return
        if proc.monitored_by is None:
            proc.monitored_by = {}
        proc.monitored_by[ref] = (watcher, target)
        conn.remote_monitors[ref] = (watcher, proc.pid)

    def _demonitor(self, conn: Connection, ref: Ref) -> None:
        """DEMONITOR_P: the remote watcher dropped its monitor."""
        entry = conn.remote_monitors.pop(ref, None)
        if entry is not None:
            proc = self.node.local(entry[1])
            if proc is not None and proc.monitored_by is not None:
                proc.monitored_by.pop(ref, None)

    def _spawn_request(self, conn: Connection, control: tuple[Any, ...], args: Any) -> None:
        """SPAWN_REQUEST: what ``erpc`` (so ``rpc:call``) and ``spawn/4`` send."""
        from otpy.dist.rpc import spawn_target

        req_id, frm, _group_leader, mfa, opts = control[1:6]
        node = self.node
        target = spawn_target(self.rpc_allow, mfa, args)
        if isinstance(target, Atom):
            conn.push(ctl.encode_packet((ctl.SPAWN_REPLY, req_id, frm, 0, target)))
            return
        fn, fn_args = target
        opts = list(opts) if isinstance(opts, list | tuple) else []
        link = Atom("link") in opts
        monitor = Atom("monitor") in opts
        pid, _ = node.spawn(fn, fn_args, parent=None)
        proc = node.local(pid)
        assert proc is not None
        flags = 0
        if link:
            proc.links = {frm}
            conn.links.add((pid, frm))
            flags |= 1
        if monitor:
            proc.monitored_by = {req_id: (frm, pid)}
            conn.remote_monitors[req_id] = (frm, pid)
            flags |= 2
        conn.push(ctl.encode_packet((ctl.SPAWN_REPLY, req_id, frm, flags, pid)))

    def _deliver(self, to: Any, message: Any) -> None:
        if type(to) is not Pid:
            return
        proc = self.node.local(to)
        if proc is not None:
            proc.deliver(message)

    # -------------------------------------------------------- loss of a peer

    def drop(self, conn: Connection, why: str) -> None:
        """Drop a connection: its links and monitors fire with `NoConnection`,
        `monitor_node` watchers get `NodeDown`, and the reason is logged.

        Args:
            conn: the connection.
            why: the reason, for the log.
        """
        self._drop(conn, why)

    def _drop(self, conn: Connection, why: str) -> None:
        if conn.closed:
            return
        conn.closed = True
        conn.limit = -1  # from now on every push is refused (see Connection.push)
        conn.fd = None
        if conn.busy is not None:
            conn.busy.set()
        if self.conns.get(conn.peer) is conn:
            del self.conns[conn.peer]
        conn.scope.cancel()
        conn.wake.set()
        conn.ready.set()
        peer = conn.peer.name
        if conn.up:
            logger.warning("connection to %s lost: %s", conn.label, why, extra={
                "otpy_report": "connection_lost", "otpy_node": peer, "otpy_why": why})
            if telemetry.active:
                telemetry.execute(_NODE_DOWN, {}, {"node": peer, "reason": why})
        node = self.node
        reason = NoConnection(peer)
        for local, remote in conn.links:
            node.signal_exit(local, remote, reason, link=True)
        for ref, (watcher, target) in conn.monitors.items():
            proc = node.local(watcher)
            if proc is not None:
                if proc.monitors is not None:
                    proc.monitors.pop(ref, None)
                proc.deliver(Down(ref, target, reason))
        for ref, (_, local) in conn.remote_monitors.items():
            proc = node.local(local)
            if proc is not None and proc.monitored_by is not None:
                proc.monitored_by.pop(ref, None)
        for watcher in conn.node_watchers:
            proc = node.local(watcher)
            if proc is not None:
                proc.deliver(NodeDown(peer))
        conn.links.clear()
        conn.monitors.clear()
        conn.remote_monitors.clear()
        conn.outbox.clear()
        conn.queued = 0
        self.globals.connection_down(peer)

    # ------------------------------------------------------ the node's hooks

    def send(self, pid: Pid, message: Any) -> None:
        """Send to a remote pid (queued; connects if needed)."""
        conn = self.conns.get(pid.node) or self._conn(pid.node)
        head = conn.send_heads.get(pid)
        if head is None:
            head = remember(conn.send_heads, pid, ctl.packet_head((ctl.SEND, _EMPTY, pid), 3))
        conn.push(head + term_to_binary(message))

    def send_named(self, name: Any, node: Any, message: Any, sender: Pid | None = None) -> None:
        """Send to ``{name, node}`` on a remote node."""
        peer, atom = _as_atom(node), _as_atom(name)
        frm = sender if sender is not None else self.node.init_pid
        self._conn(peer).push(
            ctl.encode_packet((ctl.REG_SEND, frm, _EMPTY, atom), message, has_message=True))

    def start_call(self, proc: Process, server: Any, ref: Ref, request: Any) -> CallHandle:
        """Send a call: monitor ``server`` with ``ref`` (also the reply alias) and
        send the request, in one write.

        Args:
            proc: the calling process.
            server: a remote pid or ``(name, node)``.
            ref: the call's reference.
            request: the request term (encoded here: an unencodable one raises
                before anything is sent).

        Returns:
            What `end_call` needs.
        """
        message = ctl.call_message(proc.pid, ref, request)
        peer, to = _address(server)
        conn = self.conns.get(peer) or self._conn(peer)
        me = proc.pid
        heads = conn.call_heads.get((me, to))
        if heads is None:
            request_head = (ctl.packet_head((ctl.SEND, _EMPTY, to), 3) if type(to) is Pid
                            else ctl.packet_head((ctl.REG_SEND, me, _EMPTY, to), 4))
            heads = remember(conn.call_heads, (me, to),
                              (ctl.packet_head((ctl.MONITOR_P, me, to), 4), request_head,
                               ctl.packet_head((ctl.DEMONITOR_P, me, to), 4)))
        monitor = heads[0] + term_ext(ref)
        monitors = proc.monitors
        if monitors is None:
            monitors = proc.monitors = {}
        monitors[ref] = server
        conn.monitors[ref] = (me, server)
        self.aliases[ref] = proc
        conn.corked += 1
        conn.push(monitor)
        conn.push(heads[1] + message)
        conn.uncork()
        return conn, heads[2]

    def end_call(self, proc: Process, call: CallHandle, ref: Ref) -> None:
        """After a call: drop its alias and its monitor (the demonitor leaves
        with the next packet), and any late reply or `Down` already queued."""
        del self.aliases[ref]
        conn, demonitor_head = call
        monitors = proc.monitors
        if monitors and monitors.pop(ref, None) is not None and conn.monitors.pop(ref, None):
            conn.push_later(demonitor_head + term_ext(ref))
        if proc.mailbox:
            flush_ref(proc, ref)

    def send_reply(self, sender: Pid, to: Pid, tag: Any, value: Any) -> None:
        """Reply to a remote call: ``{Tag, Value}`` to the caller's alias when the
        tag is ``[alias | Alias]`` (OTP 24+), else to the caller's pid."""
        alias = ctl.tag_alias(tag)
        if alias is None:
            self.send(to, (tag, value))
            return
        conn = self.conns.get(to.node) or self._conn(to.node)
        head = conn.reply_heads.get(sender)
        if head is None:
            head = remember(conn.reply_heads, sender,
                             ctl.packet_head((ctl.ALIAS_SEND, sender), 3))
        conn.push(head + term_ext(alias) + ctl.reply_message(alias, value))

    def send_exit(self, target: Pid, sender: Pid, reason: ExitReason, link: bool) -> None:
        """An exit signal to a remote process (a link exit, or `exit/2`)."""
        conn = self.conns.get(target.node)
        if link:
            if conn is None or (sender, target) not in conn.links:
                return
            conn.links.discard((sender, target))
            conn.push(ctl.encode_packet((ctl.EXIT, sender, target, reason_to_term(reason))))
        else:
            self._conn(target.node).push(
                ctl.encode_packet((ctl.EXIT2, sender, target, reason_to_term(reason))))

    def link(self, local: Pid, remote: Pid) -> None:
        """Link a local process to a remote one."""
        conn = self._conn(remote.node)
        conn.links.add((local, remote))
        conn.push(ctl.encode_packet((ctl.LINK, local, remote)))

    def unlink(self, local: Pid, remote: Pid) -> None:
        """Remove a link to a remote process."""
        conn = self.conns.get(remote.node)
        if conn is None:
            return
        conn.links.discard((local, remote))
        conn.push(ctl.encode_packet((ctl.UNLINK_ID, next(conn.unlink_ids), local, remote)))

    def monitor(self, watcher: Pid, target: Any, ref: Ref) -> None:
        """Monitor a remote pid or ``(name, node)``."""
        peer, to = _address(target)
        conn = self._conn(peer)
        conn.monitors[ref] = (watcher, target)
        conn.push(ctl.encode_packet((ctl.MONITOR_P, watcher, to, ref)))

    def demonitor(self, target: Any, ref: Ref) -> None:
        """Remove our monitor of a remote pid or ``(name, node)``."""
        peer, to = _address(target)
        conn = self.conns.get(peer)
        mon = conn.monitors.pop(ref, None) if conn is not None else None
        if conn is None or mon is None:
            return
        conn.push_later(ctl.encode_packet((ctl.DEMONITOR_P, mon[0], to, ref)))

    def send_down(self, watcher: Pid, ref: Ref, by: Any, reason: ExitReason) -> None:
        """Tell a remote watcher that a local process it monitors exited."""
        conn = self.conns.get(watcher.node)
        if conn is None or conn.remote_monitors.pop(ref, None) is None:
            return
        conn.push(ctl.encode_packet((ctl.MONITOR_P_EXIT, by, watcher, ref,
                                     reason_to_term(reason))))

    def global_whereis(self, name: Any) -> Pid | None:
        """`Global` lookup."""
        return self.globals.whereis(name)

    def global_register(self, name: Any, pid: Pid) -> bool:
        """`Global` registration."""
        return self.globals.register(name, pid)

    def global_unregister(self, name: Any) -> None:
        """`Global` release."""
        self.globals.unregister(name)

    def monitor_node(self, proc: Process, name: str, flag: bool) -> None:
        """`monitor_node`: `NodeDown(name)` when the connection is lost."""
        peer = Atom(name)
        if not flag:
            conn = self.conns.get(peer)
            if conn is not None:
                conn.node_watchers.pop(proc.pid, None)
            return
        conn = self._conn(peer)
        conn.node_watchers[proc.pid] = conn.node_watchers.get(proc.pid, 0) + 1


def _monitor_args(data: bytes, pos: int, stop: int) -> tuple[Pid, Any, Ref] | None:
    """``(Watcher, Target, Ref)`` of a MONITOR_P/DEMONITOR_P packet, or None if not that shape."""
    try:
        watcher, pos = decode_at(data, pos)
        target, pos = decode_at(data, pos)
        ref, end = decode_at(data, pos)
    except ETFDecodeError:
        return None
    if (end != stop or type(watcher) is not Pid or type(ref) is not Ref
            or not (type(target) is Pid or type(target) is Atom)):
        return None
    return watcher, target, ref


#: A packet's first six bytes (b"p", 131, tuple head, opcode) -> its fast path.
_FAST_PATHS = {
    ctl.packet_head((ctl.REG_SEND,), 4): Distribution._fast_reg_send,
    ctl.packet_head((ctl.MONITOR_P,), 4): Distribution._fast_monitor,
    ctl.packet_head((ctl.DEMONITOR_P,), 4): Distribution._fast_demonitor,
    ctl.packet_head((ctl.ALIAS_SEND,), 3): Distribution._call_reply,
}


def _as_atom(value: Any) -> Atom:
    return value if type(value) is Atom else Atom(str(value))


def _address(target: Any) -> tuple[Atom, Any]:
    """``(peer node, what to name in a control message)`` of a pid or ``(name, node)``."""
    if type(target) is Pid:
        return target.node, target
    name, node = target
    return _as_atom(node), _as_atom(name)
