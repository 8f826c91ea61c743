"""Erlang term types that have no native Python equivalent: atoms, pids, refs.

These are shared by the local runtime (a `Pid` names a process, a `Ref` a
monitor or a call) and by the ETF codec used by distribution, so a pid that
arrives from a remote node is the same type as a local one.

Atoms are interned: ``Atom("ok") is Atom("ok")``; they are *not* strings, so
``Atom("ok") != "ok"`` (a Python ``str`` maps to an Erlang binary).
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import attrs

__all__ = [
    "NONODE",
    "Atom",
    "BitBinary",
    "Export",
    "Fun",
    "ImproperList",
    "MapKey",
    "Pid",
    "Port",
    "Ref",
]


class Atom:
    """An Erlang atom. Interned: one object per name."""

    __slots__ = ("__weakref__", "name")
    _table: ClassVar[dict[str, Atom]] = {}
    name: str

    def __new__(cls, name: str) -> Atom:
        atom = cls._table.get(name)
        if atom is None:
            if not isinstance(name, str):
                raise TypeError(f"atom name must be str, not {type(name).__name__}")
            atom = object.__new__(cls)
            object.__setattr__(atom, "name", name)
            cls._table[name] = atom
        return atom

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError("Atom is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (Atom, (self.name,))

    @classmethod
    def lookup(cls, name: str) -> Atom | None:
        """The existing atom called ``name``, without creating one.

        Args:
            name: the atom's text.

        Returns:
            The interned `Atom`, or ``None`` if no atom of that name exists yet.
        """
        return cls._table.get(name)

    def __repr__(self) -> str:
        return f"Atom({self.name!r})"

    def __str__(self) -> str:
        return self.name

    def __lt__(self, other: object) -> bool:
        if isinstance(other, Atom):
            return self.name < other.name
        return NotImplemented


NONODE = Atom("nonode@nohost")


class Pid:
    """A process identifier, local or remote.

    Equality and hashing use ``(node, id, serial, creation)`` exactly as Erlang
    compares pids. A local pid also carries a direct reference to its process
    (not part of equality) so that sending is a pointer dereference.
    """

    __slots__ = ("_ext", "_hash", "_proc", "creation", "id", "node", "serial")

    node: Atom
    id: int
    serial: int
    creation: int

    def __init__(self, node: Atom, id: int, serial: int = 0, creation: int = 0) -> None:
        self.node = node
        self.id = id
        self.serial = serial
        self.creation = creation
        self._proc: Any = None
        self._ext: bytes | None = None  # its external term encoding, once computed
        self._hash = hash((id, serial, creation, node))

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Pid):
            return NotImplemented
        return (
            self.id == other.id
            and self.serial == other.serial
            and self.node is other.node
            and self.creation == other.creation
        )

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        if self.node is NONODE:
            return f"<0.{self.id}.{self.serial}>"
        return f"<{self.node.name}.{self.id}.{self.serial}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Pid, (self.node, self.id, self.serial, self.creation))


_ref_counter = itertools.count(1)


class Ref:
    """An Erlang reference (monitor refs, call tags, `make_ref()`).

    ``ids`` are the 32-bit words of the reference (up to 5 in OTP 25+).
    """

    __slots__ = ("_ext", "_hash", "creation", "ids", "node")

    node: Atom
    ids: tuple[int, ...]
    creation: int

    def __init__(self, node: Atom, ids: tuple[int, ...], creation: int = 0) -> None:
        self.node = node
        self.ids = ids
        self.creation = creation
        self._ext: bytes | None = None  # its external term encoding, once computed
        self._hash = hash(ids)

    @classmethod
    def make(cls, node: Atom = NONODE, creation: int = 0) -> Ref:
        """A fresh reference unique within this OS process.

        Args:
            node: the node name the reference belongs to.
            creation: that node's creation number.

        Returns:
            A new `Ref`.
        """
        n = next(_ref_counter)
        return cls(node, (n & 0x3FFFF, (n >> 18) & 0xFFFFFFFF, n >> 50), creation)

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Ref):
            return NotImplemented
        return self.ids == other.ids and self.node is other.node and self.creation == other.creation

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return "#Ref<" + ".".join(str(i) for i in reversed(self.ids)) + ">"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Ref, (self.node, self.ids, self.creation))


class Port:
    """An Erlang port identifier (only ever received from a BEAM node)."""

    __slots__ = ("creation", "id", "node")

    node: Atom
    id: int
    creation: int

    def __init__(self, node: Atom, id: int, creation: int = 0) -> None:
        self.node = node
        self.id = id
        self.creation = creation

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Port):
            return NotImplemented
        return (self.node, self.id, self.creation) == (other.node, other.id, other.creation)

    def __hash__(self) -> int:
        return hash((self.node, self.id, self.creation))

    def __repr__(self) -> str:
        return f"#Port<{self.node.name}.{self.id}>"


class ImproperList:
    """An Erlang list whose tail is not ``[]``: ``[a, b | tail]``."""

    __slots__ = ("items", "tail")

    items: list[Any]
    tail: Any

    def __init__(self, items: list[Any], tail: Any) -> None:
        self.items = items
        self.tail = tail

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImproperList):
            return NotImplemented
        return self.items == other.items and self.tail == other.tail

    def __hash__(self) -> int:
        return hash((tuple(self.items), self.tail))

    def __repr__(self) -> str:
        return f"ImproperList({self.items!r}, {self.tail!r})"


def _check_bits(instance: BitBinary, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= 7:
        raise ValueError(f"BitBinary.bits must be 1..7, not {value!r}")
    if not instance.data:
        raise ValueError("BitBinary.data must not be empty")


@attrs.frozen
class BitBinary:
    """A bitstring whose length is not a whole number of bytes, e.g. ``<<1:3>>``.

    ``data`` holds the bits, most significant first; only the ``bits`` high
    bits of the last byte belong to the value (1..7; a whole number of bytes
    is an ordinary binary, i.e. ``bytes``). The unused low bits of the last
    byte are cleared on construction, so two equal Erlang bitstrings give
    equal `BitBinary` objects.
    """

    data: bytes = attrs.field(converter=bytes)
    bits: int = attrs.field(validator=_check_bits)

    def __attrs_post_init__(self) -> None:
        last = self.data[-1]
        masked = last & (0xFF << (8 - self.bits)) & 0xFF
        if masked != last:
            object.__setattr__(self, "data", self.data[:-1] + bytes((masked,)))

    @property
    def bit_size(self) -> int:
        """The length of the bitstring in bits (Erlang's ``bit_size/1``)."""
        return len(self.data) * 8 - 8 + self.bits


@attrs.frozen
class Export:
    """An external fun, ``fun Module:Function/Arity``."""

    module: Atom
    function: Atom
    arity: int


@attrs.frozen
class Fun:
    """A local fun (closure) received from a BEAM node.

    Python cannot call it; it is kept field by field so that it can be sent
    back to Erlang unchanged (it re-encodes to the same bytes). ``uniq`` is the
    16-byte MD5 of the defining module, ``free_vars`` the captured values.
    Equality is Erlang's (checked on OTP 25): two funs are ``=:=`` (and the
    same map key) when module, ``index``, ``old_uniq`` and the free variables
    are; ``arity``, ``uniq``, ``old_index`` and ``pid`` are not compared.
    """

    module: Atom
    arity: int = attrs.field(eq=False)
    uniq: bytes = attrs.field(eq=False)
    index: int = attrs.field()
    old_index: int = attrs.field(eq=False)
    old_uniq: int = attrs.field()
    pid: Pid = attrs.field(eq=False)
    free_vars: tuple[Any, ...] = attrs.field()


def _exact(value: Any) -> Any:
    """A hashable stand-in for ``value`` under Erlang's exact equality (``=:=``).

    Two terms get equal stand-ins exactly when Erlang considers them the same
    map key: ``1`` and ``1.0`` and ``true`` differ; a ``str`` and the ``bytes``
    of its UTF-8 encoding are the same binary; ``True`` is the atom ``true`` and
    ``None`` the atom ``undefined``. Containers become tagged tuples (the tags
    are ``str``, which never occur otherwise because text becomes ``bytes``).
    """
    tp = type(value)
    if tp is int or tp is Atom or tp is bytes:
        return value
    if tp is str:
        return value.encode("utf-8")
    if tp is bool:
        return Atom("true") if value else Atom("false")
    if value is None:
        return Atom("undefined")
    if tp is float:
        return ("f", value)
    if tp is tuple:
        return ("t", *map(_exact, value))
    if tp is list:
        return ("l", *map(_exact, value))
    if tp is dict:
        return ("m", frozenset((_exact(k), _exact(v)) for k, v in value.items()))
    if tp is MapKey:
        return value._exact
    if tp is ImproperList:
        items = list(value.items)
        tail = value.tail
        while type(tail) is ImproperList:
            items.extend(tail.items)
            tail = tail.tail
        if isinstance(tail, list):
            return _exact(items + tail)
        if not items:
            return _exact(tail)
        return ("i", *map(_exact, items), _exact(tail))
    if tp is Pid or tp is Ref or tp is Port or tp is BitBinary or tp is Export:
        return value
    if tp is Fun:
        return ("fun", value.module, value.index, value.old_uniq,
                _exact(list(value.free_vars)))
    # Subclasses of the builtin types (IntEnum, namedtuple, OrderedDict, ...).
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return ("f", float(value))
    if isinstance(value, str):
        return str.__str__(value).encode("utf-8")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, tuple):
        return _exact(tuple(value))
    if isinstance(value, list):
        return _exact(list(value))
    if isinstance(value, dict):
        return _exact(dict(value))
    raise TypeError(f"{type(value).__qualname__} is not an Erlang term")


@attrs.frozen(eq=False, repr=False)
class MapKey:
    """A map key that cannot be used as a plain Python dict key.

    Erlang map keys may be lists or maps (unhashable in Python), and a map
    may hold keys that Python considers equal but Erlang does not (``1``,
    ``1.0`` and ``true``). The decoder wraps such keys in `MapKey`; wrap the
    same value to look one up or to build such a map: ``m[MapKey([1, 2])]``.
    Equality and hashing follow Erlang's exact equality (``=:=``); a
    `MapKey` encodes as the term it wraps.
    """

    value: Any
    _exact: Any = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_exact", _exact(self.value))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MapKey):
            return NotImplemented
        return bool(self._exact == other._exact)

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, MapKey):
            return NotImplemented
        return bool(self._exact != other._exact)

    def __hash__(self) -> int:
        return hash(self._exact)

    def __repr__(self) -> str:
        return f"MapKey({self.value!r})"
