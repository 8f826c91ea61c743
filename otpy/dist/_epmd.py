"""The EPMD (Erlang Port Mapper Daemon) protocol, sans-IO.

EPMD maps node names ("alive" parts, the text before ``@``) to the TCP ports
on which the nodes accept distribution connections. Every request sent to
EPMD is framed with a 2-byte big-endian length; the responses are not framed
(their layout tells how long they are, or EPMD closes the socket after them).

This module never does I/O. It has three parts:

* client side: ``encode_*_req`` build request bytes, ``decode_*_resp`` parse
  response bytes (returning ``None`` while more bytes are needed);
* server side: `RequestReader` splits a byte stream into typed requests,
  `EpmdRegistry` holds the registered nodes and creation counters, and
  `EpmdServerConnection` answers one client connection's requests;
* typed errors: everything malformed raises `EpmdProtocolError`, a refused
  registration `EpmdRegistrationError` (both are `EpmdError`).

Layouts follow the "Distribution Protocol" chapter of the ERTS user's guide.
"""

from __future__ import annotations

import secrets
import struct
from typing import Final

import attrs

__all__ = [
    "ALIVE2_REQ",
    "ALIVE2_RESP",
    "ALIVE2_X_RESP",
    "DEFAULT_EPMD_PORT",
    "DIST_VERSION",
    "DUMP_REQ",
    "KILL_REQ",
    "NAMES_REQ",
    "NODE_TYPE_HIDDEN",
    "NODE_TYPE_NORMAL",
    "PORT2_RESP",
    "PORT_PLEASE2_REQ",
    "PROTOCOL_TCP_IPV4",
    "STOP_REQ",
    "Alive2Request",
    "AliveResponse",
    "DumpRequest",
    "EpmdError",
    "EpmdProtocolError",
    "EpmdRegistrationError",
    "EpmdRegistry",
    "EpmdRequest",
    "EpmdServerConnection",
    "KillRequest",
    "NamesRequest",
    "NamesResponse",
    "NodeInfo",
    "PortPlease2Request",
    "RequestReader",
    "StopRequest",
    "decode_alive2_resp",
    "decode_names_resp",
    "decode_port2_resp",
    "decode_request",
    "encode_alive2_req",
    "encode_alive2_resp",
    "encode_names_req",
    "encode_names_resp",
    "encode_port2_resp",
    "encode_port_please2_req",
    "encode_request",
    "validate_alive_name",
]

DEFAULT_EPMD_PORT: Final = 4369

ALIVE2_REQ: Final = 120
ALIVE2_X_RESP: Final = 118
ALIVE2_RESP: Final = 121
PORT_PLEASE2_REQ: Final = 122
PORT2_RESP: Final = 119
NAMES_REQ: Final = 110
DUMP_REQ: Final = 100
KILL_REQ: Final = 107
STOP_REQ: Final = 115

NODE_TYPE_NORMAL: Final = 77
NODE_TYPE_HIDDEN: Final = 72
PROTOCOL_TCP_IPV4: Final = 0

#: The only distribution protocol version OTP 25 and later speak.
DIST_VERSION: Final = 6

#: Longest node name EPMD accepts, in characters (and in bytes on the wire).
MAX_NAME_LENGTH: Final = 255
#: Longest ``Extra`` field EPMD accepts, in bytes.
MAX_EXTRA_LENGTH: Final = 255
#: Largest request payload we accept as a server (real EPMD uses 1024 too).
MAX_REQUEST_SIZE: Final = 1024


class EpmdError(Exception):
    """Base class of every EPMD error."""


class EpmdProtocolError(EpmdError):
    """Bytes that do not follow the EPMD protocol (malformed or truncated)."""


class EpmdRegistrationError(EpmdError):
    """EPMD refused an ALIVE2 registration (typically: the name is taken).

    Attributes:
        name: The alive name that was refused.
        result: EPMD's non-zero result code.
    """

    def __init__(self, name: str, result: int) -> None:
        super().__init__(
            f"EPMD refused to register {name!r} (result {result}); "
            "the name is probably already registered by another node"
        )
        self.name = name
        self.result = result


def validate_alive_name(name: str) -> bytes:
    """Check an alive name (the part before ``@``) and return its UTF-8 bytes.

    Args:
        name: The node's alive name, e.g. ``"py1"``.

    Returns:
        The name encoded as UTF-8.

    Raises:
        EpmdProtocolError: The name is empty, too long, contains ``@`` or NUL,
            or is not encodable.
    """
    if not isinstance(name, str):
        raise EpmdProtocolError(f"node name must be str, not {type(name).__name__}")
    if not name:
        raise EpmdProtocolError("node name is empty")
    if "@" in name:
        raise EpmdProtocolError(f"EPMD names are the part before '@', got {name!r}")
    if "\x00" in name:
        raise EpmdProtocolError(f"node name contains NUL: {name!r}")
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EpmdProtocolError(f"node name is not valid UTF-8 text: {name!r}") from exc
    if len(raw) > MAX_NAME_LENGTH:
        raise EpmdProtocolError(f"node name is longer than {MAX_NAME_LENGTH} bytes")
    return raw


def _decode_name(raw: bytes, what: str) -> str:
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EpmdProtocolError(f"{what}: node name is not UTF-8: {raw!r}") from exc
    if not name or "\x00" in name:
        raise EpmdProtocolError(f"{what}: invalid node name {raw!r}")
    return name


def _u16(value: int, what: str) -> int:
    if not 0 <= value <= 0xFFFF:
        raise EpmdProtocolError(f"{what} must fit in 16 bits, got {value}")
    return value


def _u8(value: int, what: str) -> int:
    if not 0 <= value <= 0xFF:
        raise EpmdProtocolError(f"{what} must fit in 8 bits, got {value}")
    return value


@attrs.frozen
class NodeInfo:
    """What EPMD knows about one registered node.

    Attributes:
        name: The alive name (the part before ``@``).
        port: The TCP port the node accepts distribution connections on.
        node_type: 77 for a normal node, 72 for a hidden node.
        protocol: 0 for TCP/IPv4.
        highest_version: Highest distribution version the node speaks.
        lowest_version: Lowest distribution version the node speaks.
        extra: The opaque ``Extra`` field.
    """

    name: str
    port: int
    node_type: int = NODE_TYPE_NORMAL
    protocol: int = PROTOCOL_TCP_IPV4
    highest_version: int = DIST_VERSION
    lowest_version: int = DIST_VERSION
    extra: bytes = b""

    @property
    def hidden(self) -> bool:
        """Whether the node registered as hidden (node type 72)."""
        return self.node_type == NODE_TYPE_HIDDEN

    def encode_fields(self) -> bytes:
        """Encode the fields shared by ALIVE2_REQ and PORT2_RESP.

        Returns:
            PortNo, NodeType, Protocol, HighestVersion, LowestVersion, Nlen,
            NodeName, Elen and Extra, packed big-endian.

        Raises:
            EpmdProtocolError: A field is out of range.
        """
        raw = validate_alive_name(self.name)
        if len(self.extra) > MAX_EXTRA_LENGTH:
            raise EpmdProtocolError(f"extra field is longer than {MAX_EXTRA_LENGTH} bytes")
        return (
            struct.pack(
                ">HBBHHH",
                _u16(self.port, "port"),
                _u8(self.node_type, "node type"),
                _u8(self.protocol, "protocol"),
                _u16(self.highest_version, "highest version"),
                _u16(self.lowest_version, "lowest version"),
                len(raw),
            )
            + raw
            + struct.pack(">H", len(self.extra))
            + self.extra
        )


def _decode_node_fields(buf: bytes, start: int, what: str) -> tuple[NodeInfo, int] | None:
    """Parse the shared node fields at ``buf[start:]``; None if incomplete."""
    if len(buf) < start + 10:
        return None
    port, node_type, protocol, high, low, nlen = struct.unpack_from(">HBBHHH", buf, start)
    pos = start + 10
    if len(buf) < pos + nlen + 2:
        return None
    name = _decode_name(bytes(buf[pos : pos + nlen]), what)
    pos += nlen
    (elen,) = struct.unpack_from(">H", buf, pos)
    pos += 2
    if len(buf) < pos + elen:
        return None
    extra = bytes(buf[pos : pos + elen])
    pos += elen
    info = NodeInfo(
        name=name,
        port=port,
        node_type=node_type,
        protocol=protocol,
        highest_version=high,
        lowest_version=low,
        extra=extra,
    )
    return info, pos


# ---------------------------------------------------------------- requests


@attrs.frozen
class Alive2Request:
    """ALIVE2_REQ: register a node. Attributes: info (the node to register)."""

    info: NodeInfo


@attrs.frozen
class PortPlease2Request:
    """PORT_PLEASE2_REQ: look up a node's port. Attributes: name (alive name)."""

    name: str


@attrs.frozen
class NamesRequest:
    """NAMES_REQ: list the registered names."""


@attrs.frozen
class DumpRequest:
    """DUMP_REQ: debug dump of everything EPMD knows."""


@attrs.frozen
class KillRequest:
    """KILL_REQ: ask EPMD to terminate."""


@attrs.frozen
class StopRequest:
    """STOP_REQ (unused by Erlang): forcibly unregister a name."""

    name: str


EpmdRequest = (
    Alive2Request | PortPlease2Request | NamesRequest | DumpRequest | KillRequest | StopRequest
)


def _frame(payload: bytes) -> bytes:
    if len(payload) > 0xFFFF:
        raise EpmdProtocolError("EPMD request is longer than 65535 bytes")
    return struct.pack(">H", len(payload)) + payload


def encode_request(request: EpmdRequest) -> bytes:
    """Encode any request, including its 2-byte length prefix.

    Args:
        request: The request to encode.

    Returns:
        The bytes to write to the EPMD socket.

    Raises:
        EpmdProtocolError: A field is invalid (bad name, port out of range...).
    """
    if isinstance(request, Alive2Request):
        return _frame(bytes([ALIVE2_REQ]) + request.info.encode_fields())
    if isinstance(request, PortPlease2Request):
        return _frame(bytes([PORT_PLEASE2_REQ]) + validate_alive_name(request.name))
    if isinstance(request, NamesRequest):
        return _frame(bytes([NAMES_REQ]))
    if isinstance(request, DumpRequest):
        return _frame(bytes([DUMP_REQ]))
    if isinstance(request, KillRequest):
        return _frame(bytes([KILL_REQ]))
    if isinstance(request, StopRequest):
        return _frame(bytes([STOP_REQ]) + validate_alive_name(request.name))
    raise TypeError(f"not an EPMD request: {request!r}")


def encode_alive2_req(info: NodeInfo) -> bytes:
    """Encode ALIVE2_REQ (framed).

    Args:
        info: The node to register.

    Returns:
        The framed request bytes.
    """
    return encode_request(Alive2Request(info))


def encode_port_please2_req(name: str) -> bytes:
    """Encode PORT_PLEASE2_REQ (framed).

    Args:
        name: The alive name to look up.

    Returns:
        The framed request bytes.
    """
    return encode_request(PortPlease2Request(name))


def encode_names_req() -> bytes:
    """Encode NAMES_REQ (framed).

    Returns:
        The framed request bytes.
    """
    return encode_request(NamesRequest())


def decode_request(payload: bytes) -> EpmdRequest:
    """Decode one request payload (without its 2-byte length prefix).

    Args:
        payload: The request bytes.

    Returns:
        The typed request.

    Raises:
        EpmdProtocolError: The payload is not a well-formed request.
    """
    if not payload:
        raise EpmdProtocolError("empty EPMD request")
    tag = payload[0]
    if tag == ALIVE2_REQ:
        parsed = _decode_node_fields(payload, 1, "ALIVE2_REQ")
        if parsed is None:
            raise EpmdProtocolError("truncated ALIVE2_REQ")
        info, end = parsed
        if end != len(payload):
            raise EpmdProtocolError("trailing bytes after ALIVE2_REQ")
        validate_alive_name(info.name)
        if len(info.extra) > MAX_EXTRA_LENGTH:
            raise EpmdProtocolError("ALIVE2_REQ extra field too long")
        return Alive2Request(info)
    if tag in (PORT_PLEASE2_REQ, STOP_REQ):
        raw = bytes(payload[1:])
        if raw.endswith(b"\x00"):  # some clients NUL-terminate the name
            raw = raw[:-1]
        what = "PORT_PLEASE2_REQ" if tag == PORT_PLEASE2_REQ else "STOP_REQ"
        name = _decode_name(raw, what)
        if len(raw) > MAX_NAME_LENGTH:
            raise EpmdProtocolError(f"{what}: name too long")
        return PortPlease2Request(name) if tag == PORT_PLEASE2_REQ else StopRequest(name)
    simple: dict[int, EpmdRequest] = {
        NAMES_REQ: NamesRequest(),
        DUMP_REQ: DumpRequest(),
        KILL_REQ: KillRequest(),
    }
    if tag in simple:
        if len(payload) != 1:
            raise EpmdProtocolError(f"unexpected bytes after request tag {tag}")
        return simple[tag]
    raise EpmdProtocolError(f"unknown EPMD request tag {tag}")


class RequestReader:
    """Split a byte stream into EPMD requests (server side, sans-IO).

    Feed it whatever arrives on the socket; it returns every complete request.
    """

    def __init__(self, max_size: int = MAX_REQUEST_SIZE) -> None:
        """Create a reader.

        Args:
            max_size: Largest request payload accepted.
        """
        self._buf = bytearray()
        self._max = max_size

    def add(self, data: bytes) -> None:
        """Buffer received bytes without parsing them.

        Args:
            data: Bytes read from the socket.
        """
        self._buf += data

    def next_request(self) -> EpmdRequest | None:
        """Remove and return the next complete request.

        Returns:
            The request, or None if no complete request is buffered.

        Raises:
            EpmdProtocolError: The next request is malformed or oversized.
        """
        if len(self._buf) < 2:
            return None
        (length,) = struct.unpack_from(">H", self._buf, 0)
        if length == 0:
            raise EpmdProtocolError("zero-length EPMD request")
        if length > self._max:
            raise EpmdProtocolError(f"EPMD request of {length} bytes is too large")
        if len(self._buf) < 2 + length:
            return None
        payload = bytes(self._buf[2 : 2 + length])
        del self._buf[: 2 + length]
        return decode_request(payload)

    def feed(self, data: bytes) -> list[EpmdRequest]:
        """Add received bytes and parse every complete request.

        Args:
            data: Bytes read from the socket.

        Returns:
            The requests completed by these bytes, in order.

        Raises:
            EpmdProtocolError: A malformed or oversized request.
        """
        self.add(data)
        out: list[EpmdRequest] = []
        while (request := self.next_request()) is not None:
            out.append(request)
        return out

    @property
    def pending(self) -> int:
        """Number of buffered bytes that do not yet form a full request."""
        return len(self._buf)


# --------------------------------------------------------------- responses


@attrs.frozen
class AliveResponse:
    """EPMD's answer to ALIVE2_REQ.

    Attributes:
        result: 0 for success, anything else for an error.
        creation: The node's new creation (incarnation) number.
        extended: True for ALIVE2_X_RESP (32-bit creation), False for the old
            ALIVE2_RESP (16-bit creation).
    """

    result: int
    creation: int
    extended: bool = True

    @property
    def ok(self) -> bool:
        """Whether the registration succeeded."""
        return self.result == 0


def encode_alive2_resp(response: AliveResponse) -> bytes:
    """Encode ALIVE2_X_RESP or ALIVE2_RESP (responses are not framed).

    Args:
        response: The response to encode.

    Returns:
        The response bytes.
    """
    if response.extended:
        return struct.pack(">BBI", ALIVE2_X_RESP, response.result & 0xFF, response.creation)
    return struct.pack(">BBH", ALIVE2_RESP, response.result & 0xFF, response.creation & 0xFFFF)


def decode_alive2_resp(buf: bytes) -> tuple[AliveResponse, int] | None:
    """Parse an ALIVE2 response from the start of ``buf``.

    Args:
        buf: Bytes received so far.

    Returns:
        ``(response, bytes_consumed)``, or None if more bytes are needed.

    Raises:
        EpmdProtocolError: The bytes are not an ALIVE2 response.
    """
    if not buf:
        return None
    tag = buf[0]
    if tag == ALIVE2_X_RESP:
        if len(buf) < 6:
            return None
        _, result, creation = struct.unpack_from(">BBI", buf, 0)
        return AliveResponse(result, creation, True), 6
    if tag == ALIVE2_RESP:
        if len(buf) < 4:
            return None
        _, result, creation = struct.unpack_from(">BBH", buf, 0)
        return AliveResponse(result, creation, False), 4
    raise EpmdProtocolError(f"expected ALIVE2_X_RESP (118) or ALIVE2_RESP (121), got tag {tag}")


def encode_port2_resp(info: NodeInfo | None, result: int = 1) -> bytes:
    """Encode PORT2_RESP.

    Args:
        info: The node found, or None when it is not registered.
        result: The error code to send when ``info`` is None (must be > 0).

    Returns:
        The response bytes.
    """
    if info is None:
        return bytes([PORT2_RESP, max(1, result & 0xFF)])
    return bytes([PORT2_RESP, 0]) + info.encode_fields()


def decode_port2_resp(buf: bytes) -> tuple[NodeInfo | None, int] | None:
    """Parse PORT2_RESP from the start of ``buf``.

    Args:
        buf: Bytes received so far.

    Returns:
        ``(info, bytes_consumed)`` where ``info`` is None if EPMD does not
        know the name; or None if more bytes are needed.

    Raises:
        EpmdProtocolError: The bytes are not a PORT2_RESP.
    """
    if not buf:
        return None
    if buf[0] != PORT2_RESP:
        raise EpmdProtocolError(f"expected PORT2_RESP (119), got tag {buf[0]}")
    if len(buf) < 2:
        return None
    if buf[1] != 0:
        return None, 2
    parsed = _decode_node_fields(buf, 2, "PORT2_RESP")
    if parsed is None:
        return None
    return parsed


@attrs.frozen
class NamesResponse:
    """EPMD's answer to NAMES_REQ.

    Attributes:
        epmd_port: The port EPMD listens on.
        nodes: ``(name, port)`` for every registered node.
    """

    epmd_port: int
    nodes: tuple[tuple[str, int], ...]


def encode_names_resp(epmd_port: int, nodes: list[tuple[str, int]]) -> bytes:
    """Encode NAMES_RESP: the 4-byte EPMD port then one text line per node.

    Args:
        epmd_port: The port EPMD listens on.
        nodes: ``(name, port)`` pairs.

    Returns:
        The response bytes (EPMD closes the connection after them).
    """
    lines = "".join(f"name {name} at port {port}\n" for name, port in nodes)
    return struct.pack(">I", epmd_port) + lines.encode("utf-8")


def decode_names_resp(buf: bytes) -> NamesResponse:
    """Parse a complete NAMES_RESP (read until EPMD closed the connection).

    Args:
        buf: Every byte EPMD sent.

    Returns:
        The parsed response.

    Raises:
        EpmdProtocolError: The response is truncated or a line is malformed.
    """
    if len(buf) < 4:
        raise EpmdProtocolError("NAMES_RESP shorter than its 4-byte header")
    (port,) = struct.unpack_from(">I", buf, 0)
    try:
        text = bytes(buf[4:]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EpmdProtocolError("NAMES_RESP is not UTF-8 text") from exc
    nodes: list[tuple[str, int]] = []
    for line in text.split("\n"):
        if not line:
            continue
        # "name <Name> at port <Port>" -- the name itself may contain spaces
        if not line.startswith("name ") or " at port " not in line:
            raise EpmdProtocolError(f"malformed NAMES_RESP line {line!r}")
        name, _, port_text = line[5:].rpartition(" at port ")
        if not port_text.isdigit() or not name or len(port_text) > 5:
            raise EpmdProtocolError(f"malformed NAMES_RESP line {line!r}")
        nodes.append((name, int(port_text)))
    return NamesResponse(port, tuple(nodes))


# ------------------------------------------------------------------ server


@attrs.define
class _Entry:
    info: NodeInfo
    owner: int
    counter: int


class EpmdRegistry:
    """The registered nodes of an EPMD server (pure state, no I/O).

    A registration is owned by the connection that made it (an ``int`` id);
    when that connection goes away the registration is dropped. Creation
    numbers are per name: each new registration of a name bumps its counter,
    as real EPMD does, so a restarted node gets a new incarnation.
    """

    def __init__(self, epmd_port: int = DEFAULT_EPMD_PORT) -> None:
        """Create an empty registry.

        Args:
            epmd_port: The port reported in NAMES/DUMP responses.
        """
        self.epmd_port = epmd_port
        self._nodes: dict[str, _Entry] = {}
        self._counters: dict[str, int] = {}
        self._next_owner = 1

    def new_owner(self) -> int:
        """Allocate an id for a new client connection.

        Returns:
            A fresh owner id.
        """
        owner = self._next_owner
        self._next_owner += 1
        return owner

    def register(self, info: NodeInfo, owner: int) -> AliveResponse:
        """Register a node.

        Args:
            info: The node, as sent in ALIVE2_REQ.
            owner: The id of the connection that sent the request.

        Returns:
            The response to send (result 1 if the name is taken).
        """
        extended = info.highest_version >= 6
        if info.name in self._nodes:
            return AliveResponse(1, 99, extended)
        counter = self._counters.get(info.name)
        if counter is None:
            counter = secrets.randbits(32)
        counter = (counter + 1) & 0xFFFFFFFF
        if counter < 4:
            counter = 4
        self._counters[info.name] = counter
        self._nodes[info.name] = _Entry(info, owner, counter)
        creation = counter if extended else counter % 3 + 1
        return AliveResponse(0, creation, extended)

    def unregister_owner(self, owner: int) -> list[str]:
        """Drop every registration made by a connection.

        Args:
            owner: The connection id.

        Returns:
            The names that were unregistered.
        """
        gone = [name for name, entry in self._nodes.items() if entry.owner == owner]
        for name in gone:
            del self._nodes[name]
        return gone

    def unregister(self, name: str) -> bool:
        """Drop a registration by name.

        Args:
            name: The alive name.

        Returns:
            Whether the name was registered.
        """
        return self._nodes.pop(name, None) is not None

    def lookup(self, name: str) -> NodeInfo | None:
        """Find a registered node.

        Args:
            name: The alive name.

        Returns:
            The node's info, or None.
        """
        entry = self._nodes.get(name)
        return entry.info if entry is not None else None

    def names(self) -> list[tuple[str, int]]:
        """List the registered nodes.

        Returns:
            ``(name, port)`` pairs, most recently registered first (like EPMD).
        """
        return [(name, e.info.port) for name, e in reversed(self._nodes.items())]

    def owner_of(self, name: str) -> int | None:
        """Return the connection id that registered ``name`` (or None)."""
        entry = self._nodes.get(name)
        return entry.owner if entry is not None else None


class EpmdServerConnection:
    """Serve one client connection of an EPMD server (sans-IO).

    Usage: feed bytes with `receive_data`; write what it returns; when
    `should_close` becomes true, close the socket after writing. Call
    `connection_lost` when the socket closes, which drops the connection's
    registration (that is how nodes unregister).
    """

    def __init__(self, registry: EpmdRegistry) -> None:
        """Create the machine for a newly accepted connection.

        Args:
            registry: The shared registry.
        """
        self.registry = registry
        self.owner = registry.new_owner()
        self._reader = RequestReader()
        self.registered: str | None = None
        self.should_close = False
        self.kill_requested = False

    def receive_data(self, data: bytes) -> bytes:
        """Process received bytes.

        Args:
            data: Bytes read from the client (``b""`` means the client closed
                its side).

        Returns:
            Bytes to send back.

        Raises:
            EpmdProtocolError: The client sent garbage; close the connection.
        """
        if self.should_close:
            return b""
        if not data:
            if self.registered is None:
                self.should_close = True
            return b""
        self._reader.add(data)
        out = bytearray()
        while not self.should_close:
            try:
                request = self._reader.next_request()
            except EpmdProtocolError:
                self.should_close = True
                if out:  # answer what was valid; the caller closes afterwards
                    return bytes(out)
                raise
            if request is None:
                break
            out += self._answer(request)
        return bytes(out)

    def _answer(self, request: EpmdRequest) -> bytes:
        if self.registered is not None:
            # A registered node's connection carries nothing else; real EPMD
            # ignores further requests on it.
            return b""
        if isinstance(request, Alive2Request):
            resp = self.registry.register(request.info, self.owner)
            if resp.ok:
                self.registered = request.info.name
            else:
                self.should_close = True
            return encode_alive2_resp(resp)
        self.should_close = True
        if isinstance(request, PortPlease2Request):
            return encode_port2_resp(self.registry.lookup(request.name))
        if isinstance(request, NamesRequest):
            return encode_names_resp(self.registry.epmd_port, self.registry.names())
        if isinstance(request, DumpRequest):
            out = bytearray(struct.pack(">I", self.registry.epmd_port))
            for name, port in self.registry.names():
                owner = self.registry.owner_of(name)
                out += f"active name     <{name}> at port {port}, fd = {owner}\n\x00".encode()
            return bytes(out)
        if isinstance(request, KillRequest):
            if self.registry.names():
                return b"NO"
            self.kill_requested = True
            return b"OK"
        # STOP_REQ is refused, as by a real EPMD without -relaxed_command_check.
        return b""

    def connection_lost(self) -> list[str]:
        """Tell the machine the socket is gone.

        Returns:
            The names this connection had registered (now unregistered).
        """
        self.should_close = True
        self.registered = None
        return self.registry.unregister_owner(self.owner)
