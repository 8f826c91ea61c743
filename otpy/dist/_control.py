"""Distribution control messages, sans-IO: packets <-> typed control tuples.

After the handshake every packet is either a tick (empty) or a pass-through
message: byte 112, then the control tuple as an external term, then — for
the message-carrying controls — the message as a second external term.
(We advertise no atom cache, so peers never send the distribution header.)

Exit reasons cross the wire as Erlang terms; `reason_to_term` and
`term_to_reason` are the documented mapping (a Python crash becomes
``{python_exception, Type, Message, Traceback}`` and comes back as a `Crash`
of `RemoteError`).
"""

from __future__ import annotations

import traceback
from typing import Any, TypeVar, cast

import attrs

from otpy._reasons import (
    CallingSelf,
    Crash,
    ExitReason,
    Kill,
    Killed,
    NoConnection,
    NoProc,
    Normal,
    Shutdown,
    TermReason,
    Timeout,
)
from otpy._terms import Atom, ImproperList, Pid, Ref
from otpy.dist._etf import ETFDecodeError, decode_at, decode_term, term_ext, term_to_binary
from otpy.dist._show import show
from otpy.dist._structs import register_struct

R = TypeVar("R")

__all__ = [
    "ALIAS_SEND",
    "DEMONITOR_P",
    "EXIT",
    "EXIT2",
    "LINK",
    "MONITOR_P",
    "MONITOR_P_EXIT",
    "PASS_THROUGH",
    "REG_SEND",
    "SEND",
    "SEND_SENDER",
    "SPAWN_REPLY",
    "SPAWN_REQUEST",
    "UNLINK_ID",
    "UNLINK_ID_ACK",
    "ControlError",
    "RemoteError",
    "call_message",
    "decode_packet",
    "encode_packet",
    "reason_to_term",
    "register_reason",
    "reply_message",
    "term_to_reason",
]

PASS_THROUGH = 112

LINK = 1
SEND = 2
EXIT = 3
UNLINK = 4
NODE_LINK = 5
REG_SEND = 6
GROUP_LEADER = 7
EXIT2 = 8
SEND_TT = 12
EXIT_TT = 13
REG_SEND_TT = 16
EXIT2_TT = 18
MONITOR_P = 19
DEMONITOR_P = 20
MONITOR_P_EXIT = 21
SEND_SENDER = 22
SEND_SENDER_TT = 23
SPAWN_REQUEST = 29
SPAWN_REQUEST_TT = 30
SPAWN_REPLY = 31
SPAWN_REPLY_TT = 32
UNLINK_ID = 35
UNLINK_ID_ACK = 36
ALIAS_SEND = 33
ALIAS_SEND_TT = 34

#: Controls followed by a message term.
WITH_MESSAGE = frozenset(
    {SEND, REG_SEND, SEND_TT, REG_SEND_TT, SEND_SENDER, SEND_SENDER_TT, ALIAS_SEND, ALIAS_SEND_TT,
     SPAWN_REQUEST, SPAWN_REQUEST_TT}
)
#: Trace-token variants, mapped to the plain ones (the token is dropped).
_UNTRACED = {SEND_TT: SEND, EXIT_TT: EXIT, REG_SEND_TT: REG_SEND, EXIT2_TT: EXIT2,
             SEND_SENDER_TT: SEND_SENDER, ALIAS_SEND_TT: ALIAS_SEND,
             SPAWN_REQUEST_TT: SPAWN_REQUEST, SPAWN_REPLY_TT: SPAWN_REPLY}

_EMPTY = Atom("")
_NORMAL = Atom("normal")
_SHUTDOWN = Atom("shutdown")
_KILL = Atom("kill")
_KILLED = Atom("killed")
_NOPROC = Atom("noproc")
_CALLING_SELF = Atom("calling_self")
_NOCONNECTION = Atom("noconnection")
_TIMEOUT = Atom("timeout")
_PYEXC = Atom("python_exception")


class ControlError(ValueError):
    """A packet that is not a valid control message. The connection is dropped."""


class RemoteError(Exception):
    """An exception that crashed a process on another Python node.

    Attributes:
        type_name: the remote exception's class name.
        message: its message.
        remote_traceback: the formatted remote traceback.
    """

    def __init__(self, type_name: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback


_REASON_TYPES: dict[str, type[ExitReason]] = {}
_REGISTERED_REASONS: set[type] = set()
_OTPY_REASON = Atom("otpy_reason")


def register_reason(cls: type[R]) -> type[R]:
    """Class decorator: let an `ExitReason` subclass (an attrs class) cross nodes typed.

    The class is registered as a struct (`otpy.register_struct`): in an exit
    signal and inside any message it travels as ``#{'__struct__' =>
    'module.Class', field => value}`` and is rebuilt on a Python node that
    registered the same class (field values must be terms); elsewhere it
    arrives as that map (a `TermReason` of it, as an exit reason). Only
    registered classes are ever rebuilt: remote input never names arbitrary
    code to run. The older ``{otpy_reason, <<"module.Class">>, #{...}}`` form
    is still understood.

    Returns:
        The class, unchanged.
    """
    kind = cast(Any, cls)
    if not (isinstance(kind, type) and issubclass(kind, ExitReason) and attrs.has(kind)):
        raise TypeError("register_reason needs an attrs ExitReason subclass")
    _REASON_TYPES[f"{kind.__module__}.{kind.__qualname__}"] = cast(Any, cls)
    _REGISTERED_REASONS.add(kind)
    register_struct(kind)
    return cls


def reason_to_term(reason: ExitReason) -> Any:
    """The Erlang term for an exit reason (see the module docs)."""
    t = type(reason)
    if t in _REGISTERED_REASONS:
        return reason  # encoded as its struct map
    if t is Normal:
        return _NORMAL
    if t is Shutdown:
        detail = reason.detail  # type: ignore[attr-defined]
        return _SHUTDOWN if detail is None else (_SHUTDOWN, detail)
    if t is Kill:
        return _KILL
    if t is Killed:
        return _KILLED
    if t is NoProc:
        return _NOPROC
    if t is NoConnection:
        return _NOCONNECTION
    if t is CallingSelf:
        return _CALLING_SELF
    if t is Timeout:
        return _TIMEOUT
    if t is Crash:
        exc = reason.exception  # type: ignore[attr-defined]
        if isinstance(exc, RemoteError):
            return (_PYEXC, exc.type_name, exc.message, exc.remote_traceback)
        tb = "".join(traceback.format_exception(exc))
        return (_PYEXC, type(exc).__name__, str(exc), tb)
    if t is TermReason:
        return reason.term  # type: ignore[attr-defined]
    return Atom(type(reason).__name__.lower())


def term_to_reason(term: Any, node: str | None = None) -> ExitReason:
    """The typed reason for an Erlang exit-reason term.

    Args:
        term: the decoded term.
        node: the peer, recorded in a `NoConnection`.

    Returns:
        The `ExitReason`.
    """
    if isinstance(term, ExitReason):  # a registered reason, rebuilt from its struct
        return term
    if type(term) is Atom:
        if term is _NORMAL:
            return Normal()
        if term is _SHUTDOWN:
            return Shutdown()
        if term is _KILL:
            return Kill()
        if term is _KILLED:
            return Killed()
        if term is _NOPROC:
            return NoProc()
        if term is _NOCONNECTION:
            return NoConnection(node)
        if term is _TIMEOUT:
            return Timeout()
        if term is _CALLING_SELF:
            return CallingSelf()
    elif type(term) is tuple:
        if len(term) == 2 and term[0] is _SHUTDOWN:
            return Shutdown(term[1])
        if len(term) == 4 and term[0] is _PYEXC:
            return Crash(RemoteError(*(_text(x) for x in term[1:])))
        if len(term) == 3 and term[0] is _OTPY_REASON and isinstance(term[2], dict):
            cls = _REASON_TYPES.get(_text(term[1]))
            if cls is not None:
                try:
                    return cls(**{_text(k): v for k, v in term[2].items()})
                except TypeError:
                    pass
    return TermReason(term)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def encode_packet(control: tuple[Any, ...], message: Any = None, *,
                  has_message: bool = False) -> bytes:
    """A pass-through packet for a control tuple (and its message).

    Args:
        control: the control tuple, e.g. ``(SEND, Atom(""), to_pid)``.
        message: the message, for the message-carrying controls.
        has_message: whether ``message`` is part of the packet.

    Returns:
        The packet payload (without the 4-byte length).
    """
    head = packet_head(control, len(control))
    if has_message:
        return head + term_to_binary(message)
    return head


def packet_head(fields: tuple[Any, ...], arity: int) -> bytes:
    """The start of a packet whose control tuple has ``arity`` elements, of which
    ``fields`` are the first: append the encoded rest (and the message).

    Args:
        fields: the control tuple's first elements, e.g. ``(MONITOR_P, me, to)``.
        arity: the control tuple's size.

    Returns:
        The packet's first bytes (without the 4-byte length).
    """
    return _CONTROL_HEADS[arity] + b"".join(map(term_ext, fields))


# b"p", the version byte and a SMALL_TUPLE_EXT head of arity n
_CONTROL_HEADS = [b"p\x83h" + bytes((n,)) for n in range(16)]


def call_message(sender: Pid, ref: Ref, request: Any) -> bytes:
    """The encoded ``{'$gen_call', {Sender, [alias | Ref]}, Request}`` of a call.

    Args:
        sender: the calling process.
        ref: the call's monitor reference (also its alias).
        request: the request term.

    Returns:
        The message as a complete external term.
    """
    return (_GEN_CALL_HEAD + term_ext(sender) + _ALIAS_TAG_HEAD + term_ext(ref)
            + term_ext(request))


def reply_message(alias: Ref, value: Any) -> bytes:
    """The encoded ``{[alias | Ref], Value}``: a reply to a call tagged with an alias.

    Args:
        alias: the reference of the call's tag.
        value: the reply.

    Returns:
        The message as a complete external term.
    """
    return REPLY_HEAD + term_ext(alias) + term_ext(value)


_NO_MESSAGE = object()


def decode_packet(packet: bytes) -> tuple[tuple[Any, ...], Any]:
    """Split a packet into its control tuple and message.

    Args:
        packet: a non-empty packet payload.

    Returns:
        ``(control, message)``; ``message`` is None for controls without one.
        Trace-token variants come back as the plain control (the token is
        dropped from the tuple).

    Raises:
        ControlError: not a pass-through packet, a bad term, or a control
            tuple of the wrong shape.
    """
    if not packet or packet[0] != PASS_THROUGH:
        raise ControlError(f"unsupported distribution packet type {packet[:1]!r} "
                           f"({len(packet)} bytes)")
    try:
        if len(packet) < 2 or packet[1] != 131:
            raise ControlError("control term lacks the version byte 131")
        control, pos = decode_at(packet, 2)
        message = None
        if type(control) is not tuple or not control or type(control[0]) is not int:
            raise ControlError(f"bad control message {show(control)}")
        op = control[0]
        if op in _UNTRACED:
            op = _UNTRACED[op]
            control = (op, *control[1:-1])
        if op in WITH_MESSAGE:
            if pos >= len(packet) or packet[pos] != 131:
                raise ControlError("message term lacks the version byte 131")
            message, pos = decode_term(packet, pos + 1)
        if pos != len(packet):
            raise ControlError(f"{len(packet) - pos} trailing bytes after the control message")
    except ETFDecodeError as exc:
        raise ControlError(f"undecodable control message: {exc}") from exc
    return _check_shape(control), message


_SHAPES: dict[int, tuple[type | tuple[type, ...], ...]] = {
    LINK: (Pid, Pid),
    SEND: (object, Pid),
    EXIT: (Pid, Pid, object),
    UNLINK: (Pid, Pid),
    REG_SEND: (Pid, object, Atom),
    GROUP_LEADER: (Pid, Pid),
    EXIT2: (Pid, Pid, object),
    MONITOR_P: (Pid, (Pid, Atom), Ref),
    DEMONITOR_P: (Pid, (Pid, Atom), Ref),
    MONITOR_P_EXIT: ((Pid, Atom), Pid, Ref, object),
    SEND_SENDER: (Pid, Pid),
    UNLINK_ID: (int, Pid, Pid),
    UNLINK_ID_ACK: (int, Pid, Pid),
    ALIAS_SEND: (Pid, Ref),
    SPAWN_REQUEST: (Ref, Pid, Pid, tuple, (list, tuple)),
    SPAWN_REPLY: (Ref, Pid, int, (Pid, Atom)),
}


def _check_shape(control: tuple[Any, ...]) -> tuple[Any, ...]:
    """Check a control tuple's fields; return it with its name fields as `Atom`s.

    The generic decoder maps the atoms ``true``, ``false`` and ``undefined`` to
    True, False and None; in a control message's name fields (a REG_SEND's
    ``ToName``, a MONITOR_P's target, ...) they are names like any other.
    """
    shape = _SHAPES.get(control[0])
    if shape is None:
        return control  # unknown or ignorable control: the runtime logs and skips it
    if len(control) != len(shape) + 1:
        raise ControlError(f"malformed control message {show(control)}")
    i = 1
    for kind in shape:
        value = control[i]
        if not isinstance(value, kind):
            if (value is True or value is False or value is None) and (
                    kind is Atom or (type(kind) is tuple and Atom in kind)):
                name = "undefined" if value is None else "true" if value else "false"
                control = (*control[:i], Atom(name), *control[i + 1:])
            else:
                raise ControlError(f"malformed control message {show(control)}")
        i += 1
    return control


_ALIAS = Atom("alias")
# {'$gen_call', {  ...  and  [alias | ...  ;  {[alias | ...
_GEN_CALL_HEAD = b"\x83h\x03" + term_ext(Atom("$gen_call")) + b"h\x02"
_ALIAS_TAG_HEAD = b"l\x00\x00\x00\x01" + term_ext(_ALIAS)
#: How an encoded call reply (`reply_message`) starts, before its alias.
REPLY_HEAD = b"\x83h\x02" + _ALIAS_TAG_HEAD


def tag_alias(tag: Any) -> Ref | None:
    """The alias in a call tag ``[alias | Ref]``, or None for a plain tag."""
    if type(tag) is ImproperList and len(tag.items) == 1 and tag.items[0] is _ALIAS:
        tail = tag.tail
        return tail if type(tail) is Ref else None
    return None


__all__ += ["REPLY_HEAD", "WITH_MESSAGE", "packet_head", "tag_alias"]
