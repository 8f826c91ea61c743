"""Run the distribution handshake over trio streams; framed packets afterwards.

`connect` runs the `Initiator` machine of `otpy.dist._handshake` over a stream we
opened, `accept` runs the `Acceptor` over a stream we accepted. Both enforce a
timeout, close the stream on any failure (after sending a final status if the
machine queued one) and return a `DistConnection`: the `HandshakeResult` plus
4-byte framed packet I/O for the layer above (control messages, ticks).
`connect_to_node` adds the EPMD lookup and TCP connect.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

import attrs
import trio

from otpy.dist._epmd_io import port_please
from otpy.dist._handshake import (
    Acceptor,
    AliveQuery,
    HandshakeClosed,
    HandshakeComplete,
    HandshakeError,
    HandshakeResult,
    HandshakeTimeout,
    Initiator,
    NameReceived,
    PacketDecoder,
    frame,
    split_node,
)
from otpy.dist._tls import tls_failure

__all__ = [
    "ConnectionLost",
    "DistConnection",
    "accept",
    "connect",
    "connect_to_node",
]

#: Decides the status an acceptor answers: called with the peer's node name
#: and its flags, returns "ok", "ok_simultaneous", "nok", "not_allowed" or
#: "alive".
StatusDecider = Callable[[str, int], str]
#: Answers an "alive" status (initiator): called with the peer's node name,
#: returns True to replace the peer's old connection, False to give up.
AliveAnswer = Callable[[str], bool]


class ConnectionLost(Exception):
    """The distribution connection closed (or was cut mid-packet)."""


@attrs.define(eq=False)
class DistConnection:
    """An authenticated distribution connection.

    After the handshake every packet has a 4-byte big-endian length prefix;
    an empty packet is a tick (keep-alive).

    Attributes:
        result: What the handshake established (peer name, flags, creation).
        stream: The underlying stream.
    """

    result: HandshakeResult
    stream: trio.abc.Stream
    _decoder: PacketDecoder = attrs.field(alias="decoder")
    _send_lock: trio.Lock = attrs.field(factory=trio.Lock, alias="send_lock")

    @property
    def peer_node(self) -> str:
        """The peer's node name."""
        return self.result.peer_node

    @property
    def peer_flags(self) -> int:
        """The flags the peer advertised."""
        return self.result.peer_flags

    @property
    def flags(self) -> int:
        """The flags in effect on this connection."""
        return self.result.flags

    @property
    def peer_creation(self) -> int:
        """The peer's creation number."""
        return self.result.peer_creation

    @property
    def fileno(self) -> int | None:
        """The socket's file descriptor when the stream is plain TCP (None over TLS).

        The distribution reader reads it directly (`trio.lowlevel.wait_readable`
        and ``os.read``): a third of the cost of `trio.SocketStream.receive_some`
        per packet.
        """
        stream = self.stream
        if isinstance(stream, trio.SocketStream):
            return stream.socket.fileno()
        return None

    def take_buffered(self) -> bytes:
        """Remove and return the bytes received but not yet returned as packets.

        Returns:
            The buffered bytes (the start of the packet stream).
        """
        return self._decoder.take_buffer()

    async def receive_packet(self) -> bytes:
        """Read the next packet.

        Returns:
            Its payload; ``b""`` is a tick.

        Raises:
            ConnectionLost: The peer closed the connection (or it broke).
        """
        while (packet := self._decoder.next_packet()) is None:
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ConnectionLost(f"connection to {self.peer_node} broke: {exc}") from exc
            if not data:
                cut = " in the middle of a packet" if self._decoder.buffered else ""
                raise ConnectionLost(f"{self.peer_node} closed the connection{cut}")
            self._decoder.feed(bytes(data))
        return packet

    async def send_packet(self, payload: bytes) -> None:
        """Send one packet (framed with its 4-byte length).

        Args:
            payload: The packet; ``b""`` sends a tick.

        Raises:
            ConnectionLost: The connection is broken.
        """
        data = frame(payload, 4)
        async with self._send_lock:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ConnectionLost(f"connection to {self.peer_node} broke: {exc}") from exc

    async def send_tick(self) -> None:
        """Send a tick (an empty packet)."""
        await self.send_packet(b"")

    async def aclose(self) -> None:
        """Close the connection."""
        await self.stream.aclose()


async def _pump(
    stream: trio.abc.Stream,
    machine: Initiator | Acceptor,
    on_name: StatusDecider | None,
    on_alive: AliveAnswer | None,
) -> HandshakeResult:
    while True:
        out = machine.data_to_send()
        if out:
            await stream.send_all(out)
        data = await stream.receive_some(65536)
        for event in machine.receive_data(bytes(data)):
            if isinstance(event, NameReceived) and isinstance(machine, Acceptor):
                status = on_name(event.peer_node, event.peer_flags) if on_name else "ok"
                machine.send_status(status)
            elif isinstance(event, AliveQuery) and isinstance(machine, Initiator):
                machine.answer_alive(on_alive(event.peer_node) if on_alive else True)
            elif isinstance(event, HandshakeComplete):
                out = machine.data_to_send()
                if out:
                    await stream.send_all(out)
                return event.result


async def _run(
    stream: trio.abc.Stream,
    machine: Initiator | Acceptor,
    timeout: float,
    on_name: StatusDecider | None = None,
    on_alive: AliveAnswer | None = None,
) -> DistConnection:
    try:
        with trio.fail_after(timeout):
            try:
                result = await _pump(stream, machine, on_name, on_alive)
            except HandshakeError:
                # Give the peer our final status (nok, not_allowed, ...).
                out = machine.data_to_send()
                if out:
                    with trio.move_on_after(1.0):
                        await stream.send_all(out)
                raise
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise HandshakeClosed(f"connection broke during the handshake: {exc}") from exc
    except trio.TooSlowError:
        await trio.aclose_forcefully(stream)
        raise HandshakeTimeout(
            f"the handshake did not finish within {timeout} s (state {machine.state.value})"
        ) from None
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return DistConnection(
        result=result, stream=stream, decoder=PacketDecoder(4, machine.trailing_data)
    )


async def connect(
    stream: trio.abc.Stream,
    *,
    this_node: str,
    peer_node: str,
    cookie: str | bytes,
    creation: int,
    flags: int | None = None,
    hidden: bool = False,
    timeout: float = 7.0,
    on_alive: AliveAnswer | None = None,
    header: int = 2,
) -> DistConnection:
    """Run the initiator side of the handshake over a connected stream.

    Args:
        stream: A stream we connected to the peer's distribution port.
        this_node: Our node name.
        peer_node: The node we are connecting to.
        cookie: The shared cookie.
        creation: Our creation number.
        flags: Flags to advertise (default: `otpy.dist._handshake.default_flags`).
        hidden: Connect as a hidden node.
        timeout: Seconds for the whole handshake (Erlang's default setup
            time is 7 s).
        on_alive: Answers the peer's "alive" status (default: True, i.e.
            the peer's old connection to us is stale).
        header: Handshake length-prefix size: 2 over TCP, 4 over TLS.

    Returns:
        The authenticated connection.

    Raises:
        HandshakeError: The handshake failed (wrong cookie, rejected, timed
            out, ...); the stream has been closed.
    """
    machine = Initiator(this_node, peer_node, cookie, creation=creation, flags=flags, hidden=hidden,
                        header=header)
    return await _run(stream, machine, timeout, on_alive=on_alive)


async def accept(
    stream: trio.abc.Stream,
    *,
    this_node: str,
    cookie: str | bytes,
    creation: int,
    flags: int | None = None,
    hidden: bool = False,
    timeout: float = 7.0,
    decide_status: StatusDecider | None = None,
    header: int = 2,
) -> DistConnection:
    """Run the acceptor side of the handshake over an accepted stream.

    Args:
        stream: A stream accepted on our distribution port.
        this_node: Our node name.
        cookie: The shared cookie.
        creation: Our creation number.
        flags: Flags to advertise (default: `otpy.dist._handshake.default_flags`).
        hidden: Accept as a hidden node.
        timeout: Seconds for the whole handshake.
        decide_status: Chooses the status for the connecting node (default:
            always "ok"). A runtime answers "alive" when it already has a
            connection to that node, and uses
            `otpy.dist._handshake.simultaneous_status` when it is connecting to
            that node itself at the same moment.
        header: Handshake length-prefix size: 2 over TCP, 4 over TLS.

    Returns:
        The authenticated connection. If ``result.status`` is "alive", the
        old connection to that node must be dropped now.

    Raises:
        HandshakeError: The handshake failed or we refused it; the stream has
            been closed.
    """
    machine = Acceptor(this_node, cookie, creation=creation, flags=flags, hidden=hidden,
                       header=header)
    return await _run(stream, machine, timeout, on_name=decide_status)


async def connect_to_node(
    peer_node: str,
    *,
    this_node: str,
    cookie: str | bytes,
    creation: int,
    flags: int | None = None,
    hidden: bool = False,
    epmd_port: int | None = None,
    timeout: float = 7.0,
    on_alive: AliveAnswer | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> DistConnection:
    """Find ``peer_node`` through EPMD on its host, connect and handshake.

    Args:
        peer_node: ``"name@host"`` of the node to reach.
        this_node: Our node name.
        cookie: The shared cookie.
        creation: Our creation number.
        flags: Flags to advertise.
        hidden: Connect as a hidden node.
        epmd_port: EPMD's port on the peer's host (default ``$ERL_EPMD_PORT``
            or 4369).
        timeout: Seconds for lookup, connect and handshake together.
        on_alive: See `connect`.
        ssl_context: Run the connection over TLS with this client context
            (``erl -proto_dist inet_tls``); the peer's host name is checked
            if the context asks for it.

    Returns:
        The authenticated connection.

    Raises:
        HandshakeError: The handshake failed.
        otpy.dist._epmd.EpmdError: The lookup failed.
        ConnectionLost: The node is not registered or refused the TCP
            connection.
    """
    alive, host = split_node(peer_node)
    with trio.move_on_after(timeout) as scope:
        found = await port_please(alive, host, epmd_port=epmd_port, timeout=timeout)
        if found is None:
            raise ConnectionLost(f"{peer_node} is not registered with EPMD on {host}")
        port, _info = found
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            raise ConnectionLost(f"cannot connect to {peer_node} at port {port}: {exc}") from exc
        if ssl_context is not None:
            tls = trio.SSLStream(stream, ssl_context, server_hostname=host)
            try:
                await tls.do_handshake()
            except (trio.BrokenResourceError, ssl.SSLError) as exc:
                await trio.aclose_forcefully(stream)
                raise ConnectionLost(f"TLS with {peer_node} failed: {tls_failure(exc)}") from exc
            stream = tls  # type: ignore[assignment]
    if scope.cancelled_caught:
        raise HandshakeTimeout(f"looking up and connecting to {peer_node} took over {timeout} s")
    return await connect(
        stream,
        this_node=this_node,
        peer_node=peer_node,
        cookie=cookie,
        creation=creation,
        flags=flags,
        hidden=hidden,
        timeout=timeout,
        on_alive=on_alive,
        header=4 if ssl_context is not None else 2,
    )
