"""The Erlang distribution handshake (protocol version 6), sans-IO.

Two nodes that want to talk first run this handshake over a fresh TCP
connection: they exchange names and capability flags, and each proves it
knows the shared cookie by answering the other's random challenge with
``md5(cookie ++ decimal(challenge))``. The cookie itself never travels.

Roles: the `Initiator` opened the connection (node A in the Erlang docs), the
`Acceptor` accepted it (node B). Both are h11-style machines that never do
I/O: feed received bytes to ``receive_data`` (``b""`` means end of file), and
write whatever ``data_to_send()`` returns. ``receive_data`` returns events:

* `NameReceived` (acceptor): the peer introduced itself; the caller must
  answer with ``send_status("ok" | "ok_simultaneous" | "nok" |
  "not_allowed" | "alive")`` (see `simultaneous_status` for the rule Erlang
  uses when both nodes connect to each other at once);
* `StatusReceived` (both): informational;
* `AliveQuery` (initiator): the peer says we are already connected; the
  caller answers with ``answer_alive(True | False)``;
* `HandshakeComplete` (both): carries the `HandshakeResult`.

Failures raise a `HandshakeError` subclass. When one is raised, flush
``data_to_send()`` (it may hold a final status for the peer) and close the
connection. During the handshake every message is framed by a 2-byte
big-endian length; afterwards the connection switches to 4-byte framing
(`PacketDecoder` and `frame` do both). Bytes that arrived after the last
handshake message are kept in ``trailing_data`` for the next layer.

Sources of the facts used here: the "Distribution Protocol" chapter of the
ERTS user's guide and OTP's ``dist.hrl`` / ``dist_util.erl`` (flag values;
which flags are mandatory in OTP 25, 26 and 27).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import socket
import struct
from typing import Final, NoReturn

import attrs

from otpy.dist._show import show_bytes, show_name

__all__ = [
    "DEFAULT_FLAGS",
    "DFLAG_ALIAS",
    "DFLAG_ATOM_CACHE",
    "DFLAG_BIG_CREATION",
    "DFLAG_BIG_SEQTRACE_LABELS",
    "DFLAG_BIT_BINARIES",
    "DFLAG_DIST_HDR_ATOM_CACHE",
    "DFLAG_DIST_MONITOR",
    "DFLAG_DIST_MONITOR_NAME",
    "DFLAG_EXIT_PAYLOAD",
    "DFLAG_EXPORT_PTR_TAG",
    "DFLAG_EXTENDED_PIDS_PORTS",
    "DFLAG_EXTENDED_REFERENCES",
    "DFLAG_FRAGMENTS",
    "DFLAG_FUN_TAGS",
    "DFLAG_HANDSHAKE_23",
    "DFLAG_HIDDEN_ATOM_CACHE",
    "DFLAG_MANDATORY_25_DIGEST",
    "DFLAG_MAP_TAG",
    "DFLAG_NAME_ME",
    "DFLAG_NEW_FLOATS",
    "DFLAG_NEW_FUN_TAGS",
    "DFLAG_PUBLISHED",
    "DFLAG_SEND_SENDER",
    "DFLAG_SMALL_ATOM_TAGS",
    "DFLAG_SPAWN",
    "DFLAG_UNICODE_IO",
    "DFLAG_UNLINK_ID",
    "DFLAG_UTF8_ATOMS",
    "DFLAG_V4_NC",
    "MANDATORY_FLAGS_25",
    "MANDATORY_FLAGS_26",
    "REQUIRED_FLAGS",
    "STATUSES",
    "Acceptor",
    "AliveQuery",
    "Event",
    "HandshakeAuthError",
    "HandshakeClosed",
    "HandshakeComplete",
    "HandshakeError",
    "HandshakeFlagsError",
    "HandshakeProtocolError",
    "HandshakeRejected",
    "HandshakeResult",
    "HandshakeTimeout",
    "Initiator",
    "MAX_HANDSHAKE_MESSAGE",
    "NameReceived",
    "PacketDecoder",
    "State",
    "StatusReceived",
    "default_flags",
    "default_host",
    "expand_flags",
    "flag_names",
    "frame",
    "gen_challenge",
    "gen_digest",
    "simultaneous_status",
    "split_node",
]

# ------------------------------------------------------------------ flags
# Values from OTP's lib/kernel/include/dist.hrl (OTP 25). Note: the ERTS
# guide lists DFLAG_MANDATORY_25_DIGEST as (1 bsl 36); the source, which is
# what nodes actually send, uses 16#04000000.

DFLAG_PUBLISHED: Final = 0x01
DFLAG_ATOM_CACHE: Final = 0x02
DFLAG_EXTENDED_REFERENCES: Final = 0x04
DFLAG_DIST_MONITOR: Final = 0x08
DFLAG_FUN_TAGS: Final = 0x10
DFLAG_DIST_MONITOR_NAME: Final = 0x20
DFLAG_HIDDEN_ATOM_CACHE: Final = 0x40
DFLAG_NEW_FUN_TAGS: Final = 0x80
DFLAG_EXTENDED_PIDS_PORTS: Final = 0x100
DFLAG_EXPORT_PTR_TAG: Final = 0x200
DFLAG_BIT_BINARIES: Final = 0x400
DFLAG_NEW_FLOATS: Final = 0x800
DFLAG_UNICODE_IO: Final = 0x1000
DFLAG_DIST_HDR_ATOM_CACHE: Final = 0x2000
DFLAG_SMALL_ATOM_TAGS: Final = 0x4000
DFLAG_UTF8_ATOMS: Final = 0x10000
DFLAG_MAP_TAG: Final = 0x20000
DFLAG_BIG_CREATION: Final = 0x40000
DFLAG_SEND_SENDER: Final = 0x80000
DFLAG_BIG_SEQTRACE_LABELS: Final = 0x100000
DFLAG_EXIT_PAYLOAD: Final = 0x400000
DFLAG_FRAGMENTS: Final = 0x800000
DFLAG_HANDSHAKE_23: Final = 0x1000000
DFLAG_UNLINK_ID: Final = 0x2000000
DFLAG_MANDATORY_25_DIGEST: Final = 0x4000000
DFLAG_SPAWN: Final = 1 << 32
DFLAG_NAME_ME: Final = 1 << 33
DFLAG_V4_NC: Final = 1 << 34
DFLAG_ALIAS: Final = 1 << 35

#: Flags every OTP 25+ node requires. A peer may send the single flag
#: DFLAG_MANDATORY_25_DIGEST instead of all of them.
MANDATORY_FLAGS_25: Final = (
    DFLAG_EXTENDED_REFERENCES
    | DFLAG_FUN_TAGS
    | DFLAG_EXTENDED_PIDS_PORTS
    | DFLAG_NEW_FUN_TAGS
    | DFLAG_EXPORT_PTR_TAG
    | DFLAG_BIT_BINARIES
    | DFLAG_NEW_FLOATS
    | DFLAG_UTF8_ATOMS
    | DFLAG_MAP_TAG
    | DFLAG_BIG_CREATION
    | DFLAG_HANDSHAKE_23
)
#: Flags that became mandatory in OTP 26 (new link protocol, v4 node containers).
MANDATORY_FLAGS_26: Final = DFLAG_V4_NC | DFLAG_UNLINK_ID

#: What we demand of a peer: everything OTP 26/27 demand. Our term codec only
#: speaks the new pid/port/reference formats and our link layer only the
#: UNLINK_ID protocol, so a peer without these cannot talk to us. (OTP 27
#: additionally rejects peers that do not send MANDATORY_25_DIGEST; we accept
#: the individual flags as well, as OTP 25 and 26 do.)
REQUIRED_FLAGS: Final = MANDATORY_FLAGS_25 | MANDATORY_FLAGS_26

#: What we advertise (plus DFLAG_PUBLISHED unless hidden): the required set,
#: the OTP 25 digest flag, monitors by pid and by name, small atom tags and
#: process aliases. Deliberately *not* advertised: DIST_HDR_ATOM_CACHE (peers
#: then send the plain "pass through" format, tag 112, no atom cache),
#: FRAGMENTS (peers send every message whole, no reassembly needed),
#: EXIT_PAYLOAD and SEND_SENDER (peers use the classic EXIT/SEND control
#: tuples) and NAME_ME. SPAWN is advertised because OTP 25's ``rpc:call``
#: goes through ``erpc``, which needs spawn requests (see otpy.rpc).
_ADVERTISED: Final = (
    REQUIRED_FLAGS
    | DFLAG_MANDATORY_25_DIGEST
    | DFLAG_DIST_MONITOR
    | DFLAG_DIST_MONITOR_NAME
    | DFLAG_SMALL_ATOM_TAGS
    | DFLAG_ALIAS
    | DFLAG_SPAWN
)
DEFAULT_FLAGS: Final = _ADVERTISED | DFLAG_PUBLISHED

_FLAG_NAMES: Final = {
    DFLAG_PUBLISHED: "PUBLISHED",
    DFLAG_ATOM_CACHE: "ATOM_CACHE",
    DFLAG_EXTENDED_REFERENCES: "EXTENDED_REFERENCES",
    DFLAG_DIST_MONITOR: "DIST_MONITOR",
    DFLAG_FUN_TAGS: "FUN_TAGS",
    DFLAG_DIST_MONITOR_NAME: "DIST_MONITOR_NAME",
    DFLAG_HIDDEN_ATOM_CACHE: "HIDDEN_ATOM_CACHE",
    DFLAG_NEW_FUN_TAGS: "NEW_FUN_TAGS",
    DFLAG_EXTENDED_PIDS_PORTS: "EXTENDED_PIDS_PORTS",
    DFLAG_EXPORT_PTR_TAG: "EXPORT_PTR_TAG",
    DFLAG_BIT_BINARIES: "BIT_BINARIES",
    DFLAG_NEW_FLOATS: "NEW_FLOATS",
    DFLAG_UNICODE_IO: "UNICODE_IO",
    DFLAG_DIST_HDR_ATOM_CACHE: "DIST_HDR_ATOM_CACHE",
    DFLAG_SMALL_ATOM_TAGS: "SMALL_ATOM_TAGS",
    DFLAG_UTF8_ATOMS: "UTF8_ATOMS",
    DFLAG_MAP_TAG: "MAP_TAG",
    DFLAG_BIG_CREATION: "BIG_CREATION",
    DFLAG_SEND_SENDER: "SEND_SENDER",
    DFLAG_BIG_SEQTRACE_LABELS: "BIG_SEQTRACE_LABELS",
    DFLAG_EXIT_PAYLOAD: "EXIT_PAYLOAD",
    DFLAG_FRAGMENTS: "FRAGMENTS",
    DFLAG_HANDSHAKE_23: "HANDSHAKE_23",
    DFLAG_UNLINK_ID: "UNLINK_ID",
    DFLAG_MANDATORY_25_DIGEST: "MANDATORY_25_DIGEST",
    DFLAG_SPAWN: "SPAWN",
    DFLAG_NAME_ME: "NAME_ME",
    DFLAG_V4_NC: "V4_NC",
    DFLAG_ALIAS: "ALIAS",
}

_U64: Final = (1 << 64) - 1
_U32: Final = (1 << 32) - 1

#: The largest handshake message accepted, on both framings (2-byte over TCP,
#: 4-byte over TLS). The real ones are under 300 bytes; a peer that announces
#: more is refused at once, before anything is buffered.
MAX_HANDSHAKE_MESSAGE: Final = 64 * 1024


def default_flags(hidden: bool = False) -> int:
    """The capability flags we advertise.

    Args:
        hidden: A hidden node does not set DFLAG_PUBLISHED, so connections to
            it do not show up in ``nodes()`` and are not part of ``global``.

    Returns:
        The flag bits.
    """
    return _ADVERTISED if hidden else DEFAULT_FLAGS


def flag_names(flags: int) -> list[str]:
    """Name the set bits of a flag word (unknown bits as ``bit<N>``).

    Args:
        flags: A capability flag word.

    Returns:
        The names, lowest bit first.
    """
    names = []
    for bit in range(64):
        mask = 1 << bit
        if flags & mask:
            names.append(_FLAG_NAMES.get(mask, f"bit{bit}"))
    return names


def expand_flags(flags: int) -> int:
    """Apply OTP 25's shorthand: MANDATORY_25_DIGEST stands for all 25 flags.

    Args:
        flags: Flags as a peer sent them.

    Returns:
        The flags with MANDATORY_FLAGS_25 added if the digest flag is set.
    """
    if flags & DFLAG_MANDATORY_25_DIGEST:
        return flags | MANDATORY_FLAGS_25
    return flags


# ----------------------------------------------------------------- errors


class HandshakeError(Exception):
    """A distribution handshake failed; the connection must be closed."""


class HandshakeProtocolError(HandshakeError):
    """The peer sent bytes that do not follow the handshake protocol."""


class HandshakeClosed(HandshakeError):
    """The peer closed the connection in the middle of the handshake."""


class HandshakeTimeout(HandshakeError, TimeoutError):
    """The handshake did not finish in time."""


class HandshakeAuthError(HandshakeError):
    """Cookie mismatch: a challenge was answered with the wrong digest."""


class HandshakeFlagsError(HandshakeError):
    """The peer lacks capabilities we require (or asks for ones we refuse).

    Attributes:
        missing: Names of the missing flags.
    """

    def __init__(self, message: str, missing: list[str] | None = None) -> None:
        super().__init__(message)
        self.missing = missing or []


class HandshakeRejected(HandshakeError):
    """The handshake was refused by a status message.

    Attributes:
        status: ``"nok"`` (simultaneous connect, the other attempt wins),
            ``"not_allowed"``, or ``"alive"`` (already connected and the
            initiator chose not to replace the old connection).
        by_peer: True if the peer sent the refusing status, False if we did.
    """

    def __init__(self, message: str, status: str, by_peer: bool) -> None:
        super().__init__(message)
        self.status = status
        self.by_peer = by_peer


# -------------------------------------------------------------- utilities

#: Status strings an acceptor may send.
STATUSES: Final = ("ok", "ok_simultaneous", "nok", "not_allowed", "alive")


def gen_challenge() -> int:
    """Return a cryptographically random 32-bit challenge.

    Returns:
        An integer in ``[0, 2**32)``.
    """
    return secrets.randbits(32)


def _cookie_bytes(cookie: str | bytes) -> bytes:
    if isinstance(cookie, bytes):
        return cookie
    try:
        return cookie.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError("an Erlang cookie must be Latin-1 text") from exc


def gen_digest(challenge: int, cookie: str | bytes) -> bytes:
    """Compute the answer to a challenge: MD5 of the cookie then the challenge.

    The challenge is written as unsigned decimal text, exactly as Erlang's
    ``integer_to_list/1`` does.

    Args:
        challenge: The 32-bit challenge.
        cookie: The shared cookie.

    Returns:
        The 16-byte digest.
    """
    text = str(challenge & _U32).encode("ascii")
    return hashlib.md5(_cookie_bytes(cookie) + text, usedforsecurity=False).digest()


def split_node(node: str) -> tuple[str, str]:
    """Split ``"name@host"`` into its alive name and host.

    Args:
        node: A full node name.

    Returns:
        ``(name, host)``.

    Raises:
        ValueError: Not exactly one ``@``, or an empty part.
    """
    parts = node.split("@")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise ValueError(f"a node name must look like 'name@host', got {node!r}")
    return parts[0], parts[1]


def default_host() -> str:
    """The short host name ``erl -sname`` would use on this machine.

    Returns:
        The host name up to its first dot (``"localhost"`` if unknown).
    """
    return socket.gethostname().split(".")[0] or "localhost"


def simultaneous_status(this_node: str, peer_node: str) -> str:
    """Status to answer when a peer connects while we are connecting to it.

    Erlang's rule: the node whose name is greater wins. If we are greater,
    our own attempt goes on and we answer ``"nok"``; otherwise we give up our
    attempt and answer ``"ok_simultaneous"``.

    Args:
        this_node: Our node name.
        peer_node: The connecting node's name.

    Returns:
        ``"nok"`` or ``"ok_simultaneous"``.
    """
    return "nok" if this_node > peer_node else "ok_simultaneous"


def _encode_node(node: str) -> bytes:
    split_node(node)
    try:
        raw = node.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError(f"node name {node!r} must be Latin-1 text") from exc
    if len(raw) > 255:
        raise ValueError("node name is longer than 255 characters")
    return raw


def _decode_node(raw: bytes, what: str) -> str:
    # Erlang turns the received bytes into an atom with list_to_atom/1, that
    # is, one character per byte.
    node = raw.decode("latin-1")
    if len(raw) > 255:
        raise HandshakeProtocolError(
            f"{what}: node name of {len(raw)} characters (at most 255): {show_name(node)}")
    try:
        split_node(node)
    except ValueError:
        raise HandshakeProtocolError(f"{what}: invalid node name {show_name(node)}") from None
    return node


def frame(payload: bytes, header: int = 2) -> bytes:
    """Prefix a packet with its big-endian length.

    Args:
        payload: The packet.
        header: Length-prefix size: 2 during the handshake, 4 afterwards.

    Returns:
        The framed bytes.
    """
    if header == 2:
        if len(payload) > 0xFFFF:
            raise ValueError("handshake packet longer than 65535 bytes")
        return struct.pack(">H", len(payload)) + payload
    if header == 4:
        if len(payload) > _U32:
            raise ValueError("packet longer than 2**32-1 bytes")
        return struct.pack(">I", len(payload)) + payload
    raise ValueError(f"header must be 2 or 4, not {header}")


class PacketDecoder:
    """Split a byte stream into length-prefixed packets (sans-IO)."""

    def __init__(self, header: int = 4, data: bytes = b"") -> None:
        """Create a decoder.

        Args:
            header: Length-prefix size, 2 or 4.
            data: Bytes already received (e.g. a handshake's trailing data).
        """
        if header not in (2, 4):
            raise ValueError(f"header must be 2 or 4, not {header}")
        self.header = header
        self._buf = bytearray(data)

    def feed(self, data: bytes) -> None:
        """Add received bytes.

        Args:
            data: Bytes read from the connection.
        """
        self._buf += data

    def next_packet(self) -> bytes | None:
        """Remove and return the next complete packet.

        Returns:
            The packet's payload (``b""`` for an empty packet, which is a
            tick after the handshake), or None if no full packet is buffered.
        """
        h = self.header
        if len(self._buf) < h:
            return None
        size = int.from_bytes(self._buf[:h], "big")
        if len(self._buf) < h + size:
            return None
        packet = bytes(self._buf[h : h + size])
        del self._buf[: h + size]
        return packet

    def take_buffer(self) -> bytes:
        """Remove and return every buffered byte (complete packets or not).

        Returns:
            The buffered bytes.
        """
        data = bytes(self._buf)
        self._buf.clear()
        return data

    @property
    def buffered(self) -> int:
        """Number of bytes buffered."""
        return len(self._buf)

    def announced(self) -> int | None:
        """The size the next packet's length prefix announces (None until it is here).

        Returns:
            The payload size in bytes, or None if fewer than ``header`` bytes are buffered.
        """
        h = self.header
        if len(self._buf) < h:
            return None
        return int.from_bytes(self._buf[:h], "big")


# ------------------------------------------------------------------ events


@attrs.frozen
class HandshakeResult:
    """What a completed handshake established.

    Attributes:
        initiator: True if we opened the connection.
        this_node: Our node name.
        peer_node: The peer's node name.
        this_flags: The flags we advertised.
        peer_flags: The flags the peer advertised (MANDATORY_25_DIGEST
            expanded).
        flags: The flags in effect on the connection: both sides' flags
            intersected, as Erlang does.
        peer_creation: The peer's creation (incarnation) number.
        status: The status of the exchange: what we received (initiator) or
            sent (acceptor), e.g. ``"ok"``, ``"ok_simultaneous"`` or
            ``"alive"`` (in which case an old connection to the same node must
            now be dropped).
    """

    initiator: bool
    this_node: str
    peer_node: str
    this_flags: int
    peer_flags: int
    flags: int
    peer_creation: int
    status: str

    @property
    def published(self) -> bool:
        """True for a normal (visible) connection, False for a hidden one."""
        return bool(self.flags & DFLAG_PUBLISHED)

    @property
    def peer_hidden(self) -> bool:
        """True if the peer did not advertise DFLAG_PUBLISHED."""
        return not self.peer_flags & DFLAG_PUBLISHED

    def has(self, flag: int) -> bool:
        """Whether every bit of ``flag`` is in effect on the connection.

        Args:
            flag: One or more DFLAG_* bits.

        Returns:
            True if all are set in `flags`.
        """
        return self.flags & flag == flag


@attrs.frozen
class NameReceived:
    """Acceptor: the peer introduced itself; answer with ``send_status``.

    Attributes:
        peer_node: The peer's node name.
        peer_flags: Its flags (MANDATORY_25_DIGEST expanded).
        peer_creation: Its creation, or None for the old 5-version name
            message (it then arrives later in a complement message).
    """

    peer_node: str
    peer_flags: int
    peer_creation: int | None


@attrs.frozen
class StatusReceived:
    """A status message arrived (``ok``, ``ok_simultaneous``, ``true``...)."""

    status: str


@attrs.frozen
class AliveQuery:
    """Initiator: the peer believes we are already connected.

    Answer with ``answer_alive(True)`` to replace that old connection (it is
    dead), or ``answer_alive(False)`` to give up this attempt.

    Attributes:
        peer_node: The peer's node name.
    """

    peer_node: str


@attrs.frozen
class HandshakeComplete:
    """The handshake succeeded. Attributes: result (a `HandshakeResult`)."""

    result: HandshakeResult


Event = NameReceived | StatusReceived | AliveQuery | HandshakeComplete


class State(enum.Enum):
    """Where a handshake machine is."""

    AWAIT_STATUS = "await_status"  # initiator sent its name
    AWAIT_ALIVE_ANSWER = "await_alive_answer"  # initiator: caller must answer_alive
    AWAIT_CHALLENGE = "await_challenge"  # initiator
    AWAIT_ACK = "await_ack"  # initiator sent challenge_reply
    AWAIT_NAME = "await_name"  # acceptor
    DECIDE_STATUS = "decide_status"  # acceptor: caller must send_status
    AWAIT_ALIVE_REPLY = "await_alive_reply"  # acceptor sent "alive"
    AWAIT_COMPLEMENT = "await_complement"  # acceptor, after an old-format name
    AWAIT_REPLY = "await_reply"  # acceptor sent its challenge
    DONE = "done"
    FAILED = "failed"


# -------------------------------------------------------------- machines


class _Machine:
    """Shared plumbing: framing, outbox, failure handling."""

    initiator: bool

    def __init__(
        self,
        this_node: str,
        cookie: str | bytes,
        *,
        creation: int,
        flags: int | None,
        hidden: bool,
        required_flags: int,
        challenge: int | None,
        header: int = 2,
    ) -> None:
        self.this_node = this_node
        # Handshake packets have a 2-byte length over TCP, 4 bytes over TLS
        # (erl's inet_tls_dist frames the handshake like the data phase).
        self.header = header
        self._name_bytes = _encode_node(this_node)
        self._cookie = _cookie_bytes(cookie)
        if not 0 <= creation <= _U32:
            raise ValueError("creation must be a 32-bit unsigned integer")
        self.creation = creation
        if flags is None:
            flags = default_flags(hidden)
        if flags & DFLAG_NAME_ME:
            raise ValueError("dynamic node names (DFLAG_NAME_ME) are not supported")
        self.this_flags = (flags | DFLAG_HANDSHAKE_23) & _U64
        self.required_flags = required_flags
        self.challenge = gen_challenge() if challenge is None else challenge & _U32
        self.state = State.FAILED  # set by subclasses
        self.result: HandshakeResult | None = None
        self.peer_node: str | None = None
        self.peer_flags = 0
        self.peer_creation: int | None = None
        self.status: str | None = None
        self._decoder = PacketDecoder(header)
        self._outbox = bytearray()
        self._trailing = b""
        self._error: HandshakeError | None = None

    # -- public -------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Take the bytes that must be written to the peer.

        Returns:
            Framed handshake messages (possibly empty).
        """
        data = bytes(self._outbox)
        self._outbox.clear()
        return data

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after the handshake's last message (4-byte framed)."""
        return self._trailing

    @property
    def done(self) -> bool:
        """Whether the handshake completed successfully."""
        return self.state is State.DONE

    def receive_data(self, data: bytes) -> list[Event]:
        """Process bytes from the peer.

        Args:
            data: Received bytes; ``b""`` signals that the peer closed.

        Returns:
            The events these bytes produced, in order.

        Raises:
            HandshakeError: The handshake failed (see the subclasses).
        """
        if self.state is State.FAILED:
            raise self._error or HandshakeProtocolError("the handshake has already failed")
        if self.state is State.DONE:
            self._trailing += data
            return []
        if not data:
            self._fail(self._eof_error())
        self._decoder.feed(data)
        events: list[Event] = []
        while self.state not in (State.DONE, State.FAILED):
            if self.state in (State.DECIDE_STATUS, State.AWAIT_ALIVE_ANSWER):
                if self._decoder.buffered:
                    self._fail(
                        HandshakeProtocolError("peer sent data before the status exchange finished")
                    )
                break
            size = self._decoder.announced()
            if size is not None and size > MAX_HANDSHAKE_MESSAGE:
                self._fail(HandshakeProtocolError(
                    f"handshake message of {size} bytes announced (at most "
                    f"{MAX_HANDSHAKE_MESSAGE}) in state {self.state.value}"))
            packet = self._decoder.next_packet()
            if packet is None:
                break
            if not packet:
                self._fail(HandshakeProtocolError("empty handshake message"))
            events.extend(self._handle(packet))
        if self.done:
            self._trailing = self._decoder.take_buffer()
        return events

    # -- helpers ------------------------------------------------------------

    def _handle(self, packet: bytes) -> list[Event]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _eof_error(self) -> HandshakeError:
        return HandshakeClosed(
            f"the peer closed the connection during the handshake (state {self.state.value})"
        )

    def _fail(self, exc: HandshakeError) -> NoReturn:
        self.state = State.FAILED
        self._error = exc
        raise exc

    def _send(self, payload: bytes) -> None:
        self._outbox += frame(payload, self.header)

    def _send_status(self, status: str) -> None:
        self._send(b"s" + status.encode("ascii"))

    def _check_required(self, flags: int, mask: int = _U64) -> list[str]:
        return flag_names(self.required_flags & mask & ~flags)

    def _complete(self) -> HandshakeComplete:
        assert self.peer_node is not None
        assert self.peer_creation is not None
        assert self.status is not None
        self.state = State.DONE
        self.result = HandshakeResult(
            initiator=self.initiator,
            this_node=self.this_node,
            peer_node=self.peer_node,
            this_flags=self.this_flags,
            peer_flags=self.peer_flags,
            flags=self.this_flags & self.peer_flags,
            peer_creation=self.peer_creation,
            status=self.status,
        )
        return HandshakeComplete(self.result)

    def _status_text(self, payload: bytes, what: str) -> str:
        if payload[:1] != b"s":
            self._fail(HandshakeProtocolError(f"expected a status message ('s') {what}"))
        try:
            return payload[1:].decode("ascii")
        except UnicodeDecodeError:
            self._fail(HandshakeProtocolError(f"status {show_bytes(payload[1:])} is not ASCII"))


class Initiator(_Machine):
    """The connecting side of the handshake (node A)."""

    initiator = True

    def __init__(
        self,
        this_node: str,
        peer_node: str,
        cookie: str | bytes,
        *,
        creation: int,
        flags: int | None = None,
        hidden: bool = False,
        required_flags: int = REQUIRED_FLAGS,
        challenge: int | None = None,
        header: int = 2,
    ) -> None:
        """Create the machine; the name message is queued at once.

        Args:
            this_node: Our node name, ``"name@host"``.
            peer_node: The node we connect to; its challenge must carry this
                exact name.
            cookie: The shared secret.
            creation: Our creation number (from EPMD registration).
            flags: Flags to advertise (default: ``default_flags(hidden)``).
            hidden: Advertise a hidden node (no DFLAG_PUBLISHED).
            required_flags: Flags the peer must have.
            challenge: Our challenge; random unless given (for tests).

        Raises:
            ValueError: Invalid node names, cookie, creation or flags.
        """
        super().__init__(
            this_node,
            cookie,
            creation=creation,
            flags=flags,
            hidden=hidden,
            required_flags=required_flags,
            challenge=challenge,
            header=header,
        )
        split_node(peer_node)
        self.expected_peer = peer_node
        self.state = State.AWAIT_STATUS
        self._send(
            struct.pack(">cQIH", b"N", self.this_flags, self.creation, len(self._name_bytes))
            + self._name_bytes
        )

    def answer_alive(self, proceed: bool) -> None:
        """Answer an `AliveQuery`.

        Args:
            proceed: True to go on (the peer drops its old connection to us),
                False to give up this attempt.

        Raises:
            HandshakeRejected: If ``proceed`` is False (after queuing the
                answer); the connection must then be closed.
            HandshakeProtocolError: Called when no `AliveQuery` is pending.
        """
        if self.state is not State.AWAIT_ALIVE_ANSWER:
            raise HandshakeProtocolError("answer_alive called without a pending alive query")
        self._send_status("true" if proceed else "false")
        if proceed:
            self.state = State.AWAIT_CHALLENGE
            return
        self._fail(
            HandshakeRejected(
                f"{self.expected_peer} reports an existing connection to us and we "
                "chose to keep it",
                "alive",
                by_peer=False,
            )
        )

    def _eof_error(self) -> HandshakeError:
        if self.state is State.AWAIT_ACK:
            return HandshakeAuthError(
                f"{self.expected_peer} closed the connection after our challenge reply: "
                "it rejected our digest, so the cookies probably differ"
            )
        return super()._eof_error()

    def _handle(self, packet: bytes) -> list[Event]:
        if self.state is State.AWAIT_STATUS:
            return self._on_status(packet)
        if self.state is State.AWAIT_CHALLENGE:
            self._on_challenge(packet)
            return []
        if self.state is State.AWAIT_ACK:
            return [self._on_ack(packet)]
        self._fail(HandshakeProtocolError(f"unexpected message in state {self.state.value}"))

    def _on_status(self, packet: bytes) -> list[Event]:
        status = self._status_text(packet, "after our name")
        peer = self.expected_peer
        if status in ("ok", "ok_simultaneous"):
            self.status = status
            self.state = State.AWAIT_CHALLENGE
            return [StatusReceived(status)]
        if status == "alive":
            self.status = status
            self.state = State.AWAIT_ALIVE_ANSWER
            return [StatusReceived(status), AliveQuery(peer)]
        if status == "nok":
            self._fail(
                HandshakeRejected(
                    f"{peer} answered nok: it is connecting to us at the same time and "
                    "its attempt wins (its name is greater)",
                    "nok",
                    by_peer=True,
                )
            )
        if status == "not_allowed":
            self._fail(
                HandshakeRejected(
                    f"{peer} does not allow us to connect (not_allowed; possibly "
                    "missing capability flags or a disallowed node name)",
                    "not_allowed",
                    by_peer=True,
                )
            )
        self._fail(HandshakeProtocolError(f"unknown handshake status {show_name(status)}"))

    def _on_challenge(self, packet: bytes) -> None:
        if packet[:1] != b"N" or len(packet) < 19:
            self._fail(HandshakeProtocolError("expected a version 6 challenge message ('N')"))
        _, flags, challenge, creation, nlen = struct.unpack_from(">cQIIH", packet, 0)
        if len(packet) < 19 + nlen:
            self._fail(HandshakeProtocolError("challenge message: node name is truncated"))
        name = _decode_node(packet[19 : 19 + nlen], "challenge message")
        if name != self.expected_peer:
            self._fail(
                HandshakeProtocolError(
                    f"connected to {self.expected_peer!r} but the peer calls itself {show_name(name)}"
                )
            )
        self.peer_node = name
        self.peer_flags = expand_flags(flags)
        self.peer_creation = creation
        missing = self._check_required(self.peer_flags)
        if missing:
            self._fail(
                HandshakeFlagsError(
                    f"{name} lacks required distribution capabilities: {', '.join(missing)}",
                    missing,
                )
            )
        digest = gen_digest(challenge, self._cookie)
        self._send(struct.pack(">cI", b"r", self.challenge) + digest)
        self.state = State.AWAIT_ACK

    def _on_ack(self, packet: bytes) -> HandshakeComplete:
        if packet[:1] != b"a" or len(packet) != 17:
            self._fail(HandshakeProtocolError("expected a challenge_ack message ('a' + 16 bytes)"))
        if not hmac.compare_digest(packet[1:], gen_digest(self.challenge, self._cookie)):
            self._fail(
                HandshakeAuthError(
                    f"{self.expected_peer} answered our challenge with a wrong digest: "
                    "the cookies differ"
                )
            )
        return self._complete()


class Acceptor(_Machine):
    """The accepting side of the handshake (node B)."""

    initiator = False

    def __init__(
        self,
        this_node: str,
        cookie: str | bytes,
        *,
        creation: int,
        flags: int | None = None,
        hidden: bool = False,
        required_flags: int = REQUIRED_FLAGS,
        challenge: int | None = None,
        header: int = 2,
    ) -> None:
        """Create the machine for a freshly accepted connection.

        Args:
            this_node: Our node name, ``"name@host"``.
            cookie: The shared secret.
            creation: Our creation number (from EPMD registration).
            flags: Flags to advertise (default: ``default_flags(hidden)``).
            hidden: Advertise a hidden node (no DFLAG_PUBLISHED).
            required_flags: Flags the peer must have.
            challenge: Our challenge; random unless given (for tests).

        Raises:
            ValueError: Invalid node name, cookie, creation or flags.
        """
        super().__init__(
            this_node,
            cookie,
            creation=creation,
            flags=flags,
            hidden=hidden,
            required_flags=required_flags,
            challenge=challenge,
            header=header,
        )
        self.state = State.AWAIT_NAME
        self._old_name = False

    def send_status(self, status: str) -> None:
        """Answer a `NameReceived` event.

        Args:
            status: ``"ok"`` or ``"ok_simultaneous"`` to continue; ``"alive"``
                if we already have a connection to this node (the peer then
                says whether it is stale); ``"nok"`` (simultaneous connect and
                our attempt wins) or ``"not_allowed"`` to refuse.

        Raises:
            HandshakeRejected: For ``"nok"`` and ``"not_allowed"``, after
                queuing the status; the connection must then be closed.
            HandshakeProtocolError: Called when no decision is pending.
            ValueError: Unknown status.
        """
        if status not in STATUSES:
            raise ValueError(f"unknown handshake status {status!r}; expected one of {STATUSES}")
        if self.state is not State.DECIDE_STATUS:
            raise HandshakeProtocolError("send_status called without a pending name")
        self._send_status(status)
        self.status = status
        if status in ("ok", "ok_simultaneous"):
            self._send_challenge()
        elif status == "alive":
            self.state = State.AWAIT_ALIVE_REPLY
        else:
            self._fail(
                HandshakeRejected(
                    f"refused the connection from {show_name(self.peer_node or '')} with status {status!r}",
                    status,
                    by_peer=False,
                )
            )

    def _send_challenge(self) -> None:
        self._send(
            struct.pack(
                ">cQIIH",
                b"N",
                self.this_flags,
                self.challenge,
                self.creation,
                len(self._name_bytes),
            )
            + self._name_bytes
        )
        self.state = State.AWAIT_COMPLEMENT if self._old_name else State.AWAIT_REPLY

    def _handle(self, packet: bytes) -> list[Event]:
        if self.state is State.AWAIT_NAME:
            return [self._on_name(packet)]
        if self.state is State.AWAIT_ALIVE_REPLY:
            return [self._on_alive_reply(packet)]
        if self.state is State.AWAIT_COMPLEMENT:
            self._on_complement(packet)
            return []
        if self.state is State.AWAIT_REPLY:
            return [self._on_reply(packet)]
        self._fail(HandshakeProtocolError(f"unexpected message in state {self.state.value}"))

    def _refuse_flags(self, message: str, missing: list[str]) -> None:
        self._send_status("not_allowed")
        self._fail(HandshakeFlagsError(message, missing))

    def _on_name(self, packet: bytes) -> NameReceived:
        tag = packet[:1]
        if tag == b"N":
            if len(packet) < 15:
                self._fail(HandshakeProtocolError("name message ('N') is truncated"))
            _, flags, creation, nlen = struct.unpack_from(">cQIH", packet, 0)
            if len(packet) < 15 + nlen:
                self._fail(HandshakeProtocolError("name message: node name is truncated"))
            raw = packet[15 : 15 + nlen]
            if flags & DFLAG_NAME_ME:
                self.peer_node = raw.decode("latin-1")
                self._refuse_flags(
                    "the peer asked for a dynamic node name (DFLAG_NAME_ME), "
                    "which we do not assign",
                    ["NAME_ME"],
                )
            peer_creation: int | None = creation
            mask = _U64
        elif tag == b"n":
            # Old format, sent by OTP 23/24 nodes that did not ask EPMD for
            # our version: 'n', Version:16, Flags:32, Name. The missing high
            # flags and creation follow in a complement message.
            if len(packet) < 7:
                self._fail(HandshakeProtocolError("name message ('n') is truncated"))
            _, _version, flags = struct.unpack_from(">cHI", packet, 0)
            raw = packet[7:]
            peer_creation = None
            mask = _U32
            self._old_name = True
        else:
            self._fail(HandshakeProtocolError("expected a name message ('N' or 'n')"))
        name = _decode_node(raw, "name message")
        self.peer_node = name
        self.peer_flags = expand_flags(flags)
        self.peer_creation = peer_creation
        if not self.peer_flags & DFLAG_HANDSHAKE_23:
            self._refuse_flags(
                f"{show_name(name)} only speaks distribution version 5 (pre OTP 23)", ["HANDSHAKE_23"]
            )
        missing = self._check_required(self.peer_flags, mask)
        if missing:
            self._refuse_flags(
                f"{show_name(name)} lacks required distribution capabilities: "
                f"{', '.join(missing)}",
                missing,
            )
        self.state = State.DECIDE_STATUS
        return NameReceived(name, self.peer_flags, peer_creation)

    def _on_alive_reply(self, packet: bytes) -> StatusReceived:
        answer = self._status_text(packet, "in reply to 'alive'")
        if answer == "true":
            self._send_challenge()
            return StatusReceived(answer)
        if answer == "false":
            self._fail(
                HandshakeRejected(
                    f"{show_name(self.peer_node or '')} gave up its connection attempt after our 'alive' "
                    "status (it keeps the existing connection)",
                    "alive",
                    by_peer=True,
                )
            )
        self._fail(
            HandshakeProtocolError(f"expected 'true' or 'false' after alive, got {show_name(answer)}")
        )

    def _on_complement(self, packet: bytes) -> None:
        if packet[:1] != b"c" or len(packet) != 9:
            self._fail(HandshakeProtocolError("expected a complement message ('c', 9 bytes)"))
        _, high, creation = struct.unpack(">cII", packet)
        self.peer_flags = expand_flags(self.peer_flags | (high << 32))
        self.peer_creation = creation
        missing = self._check_required(self.peer_flags)
        if missing:
            self._fail(
                HandshakeFlagsError(
                    f"{show_name(self.peer_node or '')} lacks required distribution capabilities: "
                    f"{', '.join(missing)}",
                    missing,
                )
            )
        self.state = State.AWAIT_REPLY

    def _on_reply(self, packet: bytes) -> HandshakeComplete:
        if packet[:1] != b"r" or len(packet) != 21:
            self._fail(HandshakeProtocolError("expected a challenge_reply message ('r', 21 bytes)"))
        (peer_challenge,) = struct.unpack_from(">I", packet, 1)
        if not hmac.compare_digest(packet[5:], gen_digest(self.challenge, self._cookie)):
            self._fail(
                HandshakeAuthError(
                    f"connection attempt from {show_name(self.peer_node or '')} rejected: wrong digest in its "
                    "challenge reply, the cookies differ"
                )
            )
        self._send(b"a" + gen_digest(peer_challenge, self._cookie))
        return self._complete()
