"""Erlang External Term Format (ETF) codec, sans-IO.

This is the byte format of ``erlang:term_to_binary/1`` and of every message
and control tuple that crosses an Erlang distribution connection. The codec is
pure: it turns Python values into bytes and bytes into Python values, and
never does I/O. Decoding runs in C when the optional extension ``otpy.dist._etf_c``
was built (`C_DECODER`); this module stays the reference, with the same results.

- `term_to_binary` / `binary_to_term` work on complete binaries that start
  with the version byte 131 (and may be zlib-compressed, tag 80).
- `encode_term` / `decode_term` work on one term *without* the version byte,
  at an offset in a larger buffer. The distribution layer uses them for the
  terms after a distribution header, where ``ATOM_CACHE_REF`` entries refer to
  the header's atom table (pass it as ``atom_cache``).
  `decode_versioned_term` reads one ``131``-prefixed term at an offset (the
  pass-through framing, where every term carries its own version byte).

The mapping between Python and Erlang values is documented in
``docs/term-mapping.md``. In short: `Atom` is an atom, with ``True``/``False``
the atoms ``true``/``false`` and ``None`` the atom ``undefined``; ``int``,
``float``, ``tuple``, ``list`` and ``dict`` are integers, floats, tuples,
proper lists and maps; ``str`` and ``bytes`` are binaries (a binary decodes to
``str`` when it is valid UTF-8); `Pid`, `Ref`, `Port`, `ImproperList`,
`BitBinary`, `Fun`, `Export` and `MapKey` cover the rest.

Decoding untrusted bytes only ever raises `ETFDecodeError`: lengths are
checked against the bytes actually present before anything is allocated,
nesting is bounded (``max_depth``), decompression is bounded
(``max_decompressed_size``) and, with ``safe=True``, no new atoms are created.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Final

from otpy._terms import Atom, BitBinary, Export, Fun, ImproperList, MapKey, Pid, Port, Ref

__all__ = [
    "C_DECODER",
    "DEFAULT_MAX_ATOMS",
    "DEFAULT_MAX_DECOMPRESSED_SIZE",
    "DEFAULT_MAX_DEPTH",
    "VERSION",
    "AtomLimitError",
    "ETFDecodeError",
    "ETFEncodeError",
    "binary_to_term",
    "decode_at",
    "decode_term",
    "decode_versioned_term",
    "encode_struct_map",
    "encode_term",
    "pid_ext",
    "max_atoms",
    "ref_ext",
    "register_encoder",
    "set_max_atoms",
    "set_struct_hook",
    "term_ext",
    "term_to_binary",
]

VERSION: Final = 131
"""The version byte that starts every complete external term."""

DEFAULT_MAX_DEPTH: Final = 512
"""Default bound on container nesting when decoding (keeps clear of Python's stack limit)."""

DEFAULT_MAX_DECOMPRESSED_SIZE: Final = 64 * 1024 * 1024
"""Default bound, in bytes, on the declared size of a compressed term."""

DEFAULT_MAX_ATOMS: Final = 1 << 20
"""Default cap on the atom table (Erlang's default, 1,048,576); see `set_max_atoms`."""

# Tags (erts/doc: erl_ext_dist).
_COMPRESSED: Final = 80
_NEW_FLOAT: Final = 70
_BIT_BINARY: Final = 77
_ATOM_CACHE_REF: Final = 82
_NEW_PID: Final = 88
_NEW_PORT: Final = 89
_NEWER_REFERENCE: Final = 90
_SMALL_INTEGER: Final = 97
_INTEGER: Final = 98
_FLOAT: Final = 99
_ATOM: Final = 100
_REFERENCE: Final = 101
_PORT: Final = 102
_PID: Final = 103
_SMALL_TUPLE: Final = 104
_LARGE_TUPLE: Final = 105
_NIL: Final = 106
_STRING: Final = 107
_LIST: Final = 108
_BINARY: Final = 109
_SMALL_BIG: Final = 110
_LARGE_BIG: Final = 111
_NEW_FUN: Final = 112
_EXPORT: Final = 113
_NEW_REFERENCE: Final = 114
_SMALL_ATOM: Final = 115
_MAP: Final = 116
_ATOM_UTF8: Final = 118
_SMALL_ATOM_UTF8: Final = 119
_V4_PORT: Final = 120

_UNSUPPORTED_TAGS: Final = {
    68: "DIST_HEADER (belongs to the distribution layer, not to a term)",
    69: "DIST_FRAG_HEADER (belongs to the distribution layer, not to a term)",
    _COMPRESSED: "COMPRESSED (only allowed as the outermost tag)",
    117: "FUN_EXT (removed in OTP 23)",
    121: "LOCAL_EXT (node-local encoding, never sent between nodes)",
}

_U16 = struct.Struct(">H").unpack_from
_U32 = struct.Struct(">I").unpack_from
_I32 = struct.Struct(">i").unpack_from
_F64 = struct.Struct(">d").unpack_from
_PID_NEW = struct.Struct(">III").unpack_from
_PID_OLD = struct.Struct(">IIB").unpack_from
_PORT_NEW = struct.Struct(">II").unpack_from
_PORT_OLD = struct.Struct(">IB").unpack_from
_PORT_V4 = struct.Struct(">QI").unpack_from
_REF_OLD = struct.Struct(">IB").unpack_from
_FUN_HEAD = struct.Struct(">IB16sII").unpack_from
_MAX_REF_WORDS: Final = 5
_REF_IDS = [struct.Struct(f">{n}I").unpack_from for n in range(_MAX_REF_WORDS + 1)]

_PACK_TAG_U8 = struct.Struct(">BB").pack
_PACK_TAG_U16 = struct.Struct(">BH").pack
_PACK_TAG_U32 = struct.Struct(">BI").pack
_PACK_TAG_I32 = struct.Struct(">Bi").pack
_PACK_TAG_F64 = struct.Struct(">Bd").pack
_PACK_U32 = struct.Struct(">I").pack
_PACK_U32_INTO = struct.Struct(">I").pack_into
_PACK_PID = struct.Struct(">III").pack
_PACK_PORT = struct.Struct(">II").pack
_PACK_PORT_V4 = struct.Struct(">QI").pack
_PACK_REF_HEAD = struct.Struct(">BH").pack
_PACK_LARGE_BIG = struct.Struct(">BIB").pack
_PACK_SMALL_BIG = struct.Struct(">BBB").pack
_PACK_BIT_BINARY = struct.Struct(">BIB").pack
_PACK_FUN_HEAD = struct.Struct(">B16sII").pack
_PACK_REF_IDS = [struct.Struct(f">{n}I").pack for n in range(_MAX_REF_WORDS + 1)]

_CACHE_LIMIT: Final = 1 << 16
_OLD_FLOAT_SYNTAX: Final = re.compile(rb"[+-]?[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?")
_MISSING: Final = object()

_TRUE = Atom("true")
_FALSE = Atom("false")
_UNDEFINED = Atom("undefined")


class ETFDecodeError(ValueError):
    """The bytes are not an acceptable external term (truncated, malformed, over a limit)."""


class AtomLimitError(ETFDecodeError):
    """A term would create an atom past the atom table's limit (`set_max_atoms`)."""


#: The most atoms decoding may bring into existence (one-element list: settable).
_atom_limit: list[int] = [DEFAULT_MAX_ATOMS]


def set_max_atoms(limit: int) -> None:
    """Cap the atom table: decoding a new atom past ``limit`` atoms fails.

    Atoms are never freed (as in Erlang), so a peer that sends ever new atoms
    would grow the process without bound; past the cap such a term fails to
    decode with `AtomLimitError` and the distribution drops the connection
    that brought it. The table is shared by every node in this OS process.

    Args:
        limit: the most atoms (Erlang's default, 1,048,576, unless changed).

    Raises:
        ValueError: ``limit`` is not a positive int.
    """
    if type(limit) is not int or limit < 1:
        raise ValueError(f"max_atoms must be a positive int, not {limit!r}")
    _atom_limit[0] = limit


def max_atoms() -> int:
    """The current atom table cap (see `set_max_atoms`)."""
    return _atom_limit[0]


class ETFEncodeError(TypeError):
    """A Python value has no external-term encoding (unsupported type or out of range).

    Attributes:
        path: where in the term the bad part is (``term[2].content[0]``), when known.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


# --------------------------------------------------------------------------- decoding


class _Ctx:
    """Per-call decoding options that only the rare paths look at."""

    __slots__ = ("atom_cache", "safe")

    def __init__(self, atom_cache: Sequence[Atom] | None, safe: bool) -> None:
        self.atom_cache = atom_cache
        self.safe = safe


_DEFAULT_CTX: Final = _Ctx(None, False)

# UTF-8 bytes of an atom's name -> the decoded Python value (``true`` -> True ...).
_ATOM_VALUES: dict[bytes, Any] = {b"true": True, b"false": False, b"undefined": None}
# UTF-8 bytes of an atom's name -> the Atom (for node, module and function names).
_RAW_ATOMS: dict[bytes, Atom] = {}
# NEW_PID_EXT bytes (with a SMALL_ATOM_UTF8 node) -> the decoded pid
_PIDS: dict[bytes, Pid] = {}
# Atom -> the Python value it decodes to.
_ATOM_TO_VALUE: dict[Atom, Any] = {_TRUE: True, _FALSE: False, _UNDEFINED: None}


def _truncated() -> ETFDecodeError:
    return ETFDecodeError("truncated external term")


def _make_atom(raw: bytes, latin1: bool, ctx: _Ctx) -> Atom:
    """Create (or find) the atom whose name is ``raw``; validate it first."""
    try:
        name = raw.decode("latin-1" if latin1 else "utf-8")
    except UnicodeDecodeError as e:
        raise ETFDecodeError(f"atom name is not valid UTF-8: {raw[:40]!r}") from e
    if len(name) > 255:
        raise ETFDecodeError(f"atom name longer than 255 characters ({len(name)})")
    atom = Atom.lookup(name)
    if atom is None:
        if ctx.safe:
            raise ETFDecodeError(f"unknown atom {name[:40]!r} (safe decoding)")
        if len(Atom._table) >= _atom_limit[0]:
            raise AtomLimitError(
                f"the atom table is full ({len(Atom._table)} atoms, max_atoms="
                f"{_atom_limit[0]}): refusing the new atom {name[:40]!r}")
        atom = Atom(name)
    if (not latin1 or raw.isascii()) and len(_RAW_ATOMS) < _CACHE_LIMIT:
        _RAW_ATOMS[raw] = atom
        _ATOM_VALUES[raw] = _ATOM_TO_VALUE.get(atom, atom)
    return atom


def _atom_from_cache(data: bytes, pos: int, ctx: _Ctx) -> Atom:
    index = data[pos]
    cache = ctx.atom_cache
    if cache is None:
        raise ETFDecodeError("ATOM_CACHE_REF without an atom cache")
    if index >= len(cache):
        raise ETFDecodeError(f"ATOM_CACHE_REF {index} outside the atom cache ({len(cache)})")
    atom = cache[index]
    if type(atom) is not Atom:
        raise ETFDecodeError(f"atom cache entry {index} is not an atom: {atom!r}")
    return atom


def _dec_atom(data: bytes, pos: int, ctx: _Ctx) -> tuple[Atom, int]:
    """Decode an atom as an `Atom` (no ``true``/``None`` mapping): node and module names."""
    tag = data[pos]
    if tag in (_SMALL_ATOM_UTF8, _SMALL_ATOM):
        start = pos + 2
        end = start + data[pos + 1]
    elif tag in (_ATOM_UTF8, _ATOM):
        start = pos + 3
        end = start + _U16(data, pos + 1)[0]
    elif tag == _ATOM_CACHE_REF:
        return _atom_from_cache(data, pos + 1, ctx), pos + 2
    else:
        raise ETFDecodeError(f"expected an atom at offset {pos}, found tag {tag}")
    if end > len(data):
        raise _truncated()
    raw = data[start:end]
    latin1 = tag in (_ATOM, _SMALL_ATOM)
    # The caches are keyed by UTF-8 names; a latin-1 name only matches when ASCII.
    atom = _RAW_ATOMS.get(raw) if not latin1 or raw.isascii() else None
    if atom is None:
        atom = _make_atom(raw, latin1, ctx)
    return atom, end


def _atom_value(data: bytes, start: int, end: int, latin1: bool, ctx: _Ctx) -> Any:
    if end > len(data):
        raise _truncated()
    raw = data[start:end]
    value = _ATOM_VALUES.get(raw, _MISSING) if not latin1 or raw.isascii() else _MISSING
    if value is _MISSING:
        atom = _make_atom(raw, latin1, ctx)
        value = _ATOM_TO_VALUE.get(atom, atom)
    return value


def _too_deep(pos: int) -> ETFDecodeError:
    return ETFDecodeError(f"term nested deeper than max_depth (at offset {pos})")


# Each handler gets the offset just after the tag byte and returns
# ``(term, offset after the term)``. Reads past the end raise IndexError or
# struct.error (turned into `ETFDecodeError` by `_decode_at`); a slice past the
# end is caught by the final ``end <= len(data)`` check there, because any
# further read starts by indexing ``data[end]``.
_Handler = Callable[[bytes, int, int, _Ctx], tuple[Any, int]]


def _dec(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    """Decode the term whose tag is at ``pos``."""
    return _DECODERS[data[pos]](data, pos + 1, depth, ctx)


def _d_small_atom_utf8(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    end = pos + 1 + data[pos]
    value = _ATOM_VALUES.get(data[pos + 1 : end], _MISSING)
    if value is _MISSING:
        value = _atom_value(data, pos + 1, end, False, ctx)
    return value, end


def _d_atom_utf8(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    end = pos + 2 + _U16(data, pos)[0]
    return _atom_value(data, pos + 2, end, False, ctx), end


def _d_small_atom(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    end = pos + 1 + data[pos]
    return _atom_value(data, pos + 1, end, True, ctx), end


def _d_atom(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    end = pos + 2 + _U16(data, pos)[0]
    return _atom_value(data, pos + 2, end, True, ctx), end


def _d_atom_cache_ref(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    atom = _atom_from_cache(data, pos, ctx)
    return _ATOM_TO_VALUE.get(atom, atom), pos + 1


def _d_small_integer(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    return data[pos], pos + 1


def _d_integer(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    return _I32(data, pos)[0], pos + 4


def _d_big(n: int, data: bytes, pos: int) -> tuple[int, int]:
    sign = data[pos]
    start = pos + 1
    end = start + n
    if end > len(data):
        raise _truncated()
    value = int.from_bytes(data[start:end], "little")
    return (-value if sign else value), end


def _d_small_big(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    return _d_big(data[pos], data, pos + 1)


def _d_large_big(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    return _d_big(_U32(data, pos)[0], data, pos + 4)


def _d_new_float(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    value = _F64(data, pos)[0]
    if value - value != 0.0:
        raise ETFDecodeError("float is not finite")
    return value, pos + 8


def _d_float(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    raw = data[pos : pos + 31]
    if len(raw) != 31:
        raise _truncated()
    text = raw.split(b"\0", 1)[0]
    if _OLD_FLOAT_SYNTAX.fullmatch(text) is None:
        raise ETFDecodeError(f"malformed FLOAT_EXT {text!r}")
    value = float(text)
    if value - value != 0.0:
        raise ETFDecodeError("float is not finite")
    return value, pos + 31


def _d_binary(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    start = pos + 4
    end = start + _U32(data, pos)[0]
    raw = data[start:end]
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError:
        return raw, end


def _d_bit_binary(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    n = _U32(data, pos)[0]
    bits = data[pos + 4]
    start = pos + 5
    end = start + n
    if end > len(data):
        raise _truncated()
    if n == 0:
        if bits != 0:
            raise ETFDecodeError("empty BIT_BINARY_EXT with a non-zero bit count")
        return "", end
    if not 1 <= bits <= 8:
        raise ETFDecodeError(f"BIT_BINARY_EXT bit count {bits} not in 1..8")
    raw = data[start:end]
    if bits == 8:  # a whole number of bytes: an ordinary binary
        try:
            return raw.decode("utf-8"), end
        except UnicodeDecodeError:
            return raw, end
    return BitBinary(raw, bits), end


def _d_small_tuple(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    n = data[pos]
    pos += 1
    if n == 0:
        return (), pos
    if n > len(data) - pos:  # every element takes at least one byte
        raise _truncated()
    if depth <= 0:
        raise _too_deep(pos)
    depth -= 1
    decoders = _DECODERS
    items: list[Any] = []
    append = items.append
    for _ in range(n):
        # The elements of control messages and of most messages, read inline:
        # small integers, known atoms and already seen pids.
        tag = data[pos]
        if tag == _SMALL_INTEGER:
            append(data[pos + 1])
            pos += 2
            continue
        if tag == _SMALL_ATOM_UTF8:
            end = pos + 2 + data[pos + 1]
            value = _ATOM_VALUES.get(data[pos + 2 : end], _MISSING)
            if value is not _MISSING:
                append(value)
                pos = end
                continue
        elif tag == _NEW_PID and data[pos + 1] == _SMALL_ATOM_UTF8:
            end = pos + 15 + data[pos + 2]
            pid = _PIDS.get(data[pos:end])
            if pid is not None:
                append(pid)
                pos = end
                continue
        item, pos = decoders[tag](data, pos + 1, depth, ctx)
        append(item)
    return tuple(items), pos


def _d_large_tuple(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    n = _U32(data, pos)[0]
    pos += 4
    if n > len(data) - pos:  # every element takes at least one byte
        raise _truncated()
    if n == 0:
        return (), pos
    if depth <= 0:
        raise _too_deep(pos)
    depth -= 1
    decoders = _DECODERS
    items: list[Any] = []
    append = items.append
    for _ in range(n):
        item, pos = decoders[data[pos]](data, pos + 1, depth, ctx)
        append(item)
    return tuple(items), pos


def _d_nil(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    return [], pos


def _d_string(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    start = pos + 2
    end = start + _U16(data, pos)[0]
    return list(data[start:end]), end


def _d_list(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    n = _U32(data, pos)[0]
    pos += 4
    if n >= len(data) - pos:  # n elements and a tail, at least one byte each
        raise _truncated()
    if depth <= 0:
        raise _too_deep(pos)
    depth -= 1
    decoders = _DECODERS
    items: list[Any] = []
    append = items.append
    while True:
        for _ in range(n):
            item, pos = decoders[data[pos]](data, pos + 1, depth, ctx)
            append(item)
        tag = data[pos]
        if tag == _NIL:
            return items, pos + 1
        if tag != _LIST:
            break
        # ``[a | [b | T]]`` is ``[a, b | T]``: a tail that is a list continues this
        # one, in the same loop (no nesting, no copying: linear in the input).
        n = _U32(data, pos + 1)[0]
        pos += 5
        if n >= len(data) - pos:
            raise _truncated()
    tail, pos = decoders[tag](data, pos + 1, depth, ctx)
    if type(tail) is list:  # a STRING_EXT tail: ``[a | "bc"]`` is ``[a, $b, $c]``
        items.extend(tail)
        return items, pos
    if not items:
        return tail, pos
    return ImproperList(items, tail), pos


def _d_map(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    n = _U32(data, pos)[0]
    pos += 4
    if n > (len(data) - pos) // 2:  # every pair takes at least two bytes
        raise _truncated()
    result: dict[Any, Any] = {}
    if n == 0:
        return result, pos
    if depth <= 0:
        raise _too_deep(pos)
    depth -= 1
    decoders = _DECODERS
    size = 0
    for i in range(n):
        key, pos = decoders[data[pos]](data, pos + 1, depth, ctx)
        value, pos = decoders[data[pos]](data, pos + 1, depth, ctx)
        try:
            result.setdefault(key, value)
        except TypeError:  # unhashable in Python: a list, a map, ...
            result.setdefault(MapKey(key), value)
        size += 1
        if len(result) != size:
            # Keys equal for Python but not for Erlang (1, 1.0, true): wrap them all.
            result = _exact_keys(result)
            _put_exact(result, key, value)
            for _ in range(n - i - 1):
                key, pos = decoders[data[pos]](data, pos + 1, depth, ctx)
                value, pos = decoders[data[pos]](data, pos + 1, depth, ctx)
                _put_exact(result, key, value)
            return result, pos
    if _STRUCT_KEY in result and _struct_hook is not None:
        return _struct_hook(result), pos
    return result, pos


def _exact_keys(result: dict[Any, Any]) -> dict[Any, Any]:
    """``result`` with every key wrapped in `MapKey` (Erlang's exact key equality)."""
    return {k if type(k) is MapKey else MapKey(k): v for k, v in result.items()}


def _put_exact(result: dict[Any, Any], key: Any, value: Any) -> None:
    """Add a pair to a map whose keys are all `MapKey`; a second equal key is an error."""
    size = len(result)
    result.setdefault(key if type(key) is MapKey else MapKey(key), value)
    if len(result) == size:
        raise ETFDecodeError("map has duplicate keys")


def _d_new_pid(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    if data[pos] == _SMALL_ATOM_UTF8:  # the common case: a cached pid, or a cached node
        end = pos + 14 + data[pos + 1]
        raw = data[pos - 1 : end]
        pid = _PIDS.get(raw)
        if pid is not None:
            return pid, end
        node = _RAW_ATOMS.get(data[pos + 2 : end - 12])
        if node is not None:
            pid_id, serial, creation = _PID_NEW(data, end - 12)
            pid = Pid(node, pid_id, serial, creation)
            pid._ext = raw
            if len(_PIDS) >= _CACHE_LIMIT:
                _PIDS.clear()
            _PIDS[raw] = pid
            return pid, end
    node, end = _dec_atom(data, pos, ctx)
    pid_id, serial, creation = _PID_NEW(data, end)
    return Pid(node, pid_id, serial, creation), end + 12


def _d_pid(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    node, pos = _dec_atom(data, pos, ctx)
    pid_id, serial, creation = _PID_OLD(data, pos)
    return Pid(node, pid_id, serial, creation), pos + 9


def _d_newer_reference(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    words = (data[pos] << 8) | data[pos + 1]
    if not 1 <= words <= _MAX_REF_WORDS:
        raise ETFDecodeError(f"reference with {words} words (1..{_MAX_REF_WORDS})")
    small = data[pos + 2] == _SMALL_ATOM_UTF8
    node = None
    if small:  # the common case: a node already known by its bytes
        at = pos + 4 + data[pos + 3]
        node = _RAW_ATOMS.get(data[pos + 4 : at])
    if node is None:
        node, at = _dec_atom(data, pos + 2, ctx)
    end = at + 4 + 4 * words
    ref = Ref(node, _REF_IDS[words](data, at + 4), _U32(data, at)[0])
    if small:  # often sent back (a call's alias): its encoding is these bytes
        ref._ext = data[pos - 1 : end]
    return ref, end


def _d_new_reference(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    n = _U16(data, pos)[0]
    if not 1 <= n <= _MAX_REF_WORDS:
        raise ETFDecodeError(f"reference with {n} words (1..{_MAX_REF_WORDS})")
    node, pos = _dec_atom(data, pos + 2, ctx)
    creation = data[pos]
    return Ref(node, _REF_IDS[n](data, pos + 1), creation), pos + 1 + 4 * n


def _d_reference(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    node, pos = _dec_atom(data, pos, ctx)
    ref_id, creation = _REF_OLD(data, pos)
    return Ref(node, (ref_id,), creation), pos + 5


def _d_new_port(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    node, pos = _dec_atom(data, pos, ctx)
    port_id, creation = _PORT_NEW(data, pos)
    return Port(node, port_id, creation), pos + 8


def _d_v4_port(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    node, pos = _dec_atom(data, pos, ctx)
    port_id, creation = _PORT_V4(data, pos)
    return Port(node, port_id, creation), pos + 12


def _d_port(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    node, pos = _dec_atom(data, pos, ctx)
    port_id, creation = _PORT_OLD(data, pos)
    return Port(node, port_id, creation), pos + 5


def _d_new_fun(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    _size, arity, uniq, index, num_free = _FUN_HEAD(data, pos)
    if num_free > len(data) - pos:
        raise _truncated()
    if depth <= 0:
        raise _too_deep(pos)
    depth -= 1
    module, pos = _dec_atom(data, pos + 29, ctx)
    old_index, pos = _dec(data, pos, depth, ctx)
    old_uniq, pos = _dec(data, pos, depth, ctx)
    pid, pos = _dec(data, pos, depth, ctx)
    if type(old_index) is not int or type(old_uniq) is not int or type(pid) is not Pid:
        raise ETFDecodeError("malformed NEW_FUN_EXT (OldIndex, OldUniq or Pid)")
    free_vars: list[Any] = []
    for _ in range(num_free):
        item, pos = _dec(data, pos, depth, ctx)
        free_vars.append(item)
    # Like Erlang, ignore the Size field; encoding always writes the true size.
    fun = Fun(module, arity, uniq, index, old_index, old_uniq, pid, tuple(free_vars))
    return fun, pos


def _d_export(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    module, pos = _dec_atom(data, pos, ctx)
    function, pos = _dec_atom(data, pos, ctx)
    if data[pos] != _SMALL_INTEGER:
        raise ETFDecodeError("EXPORT_EXT arity is not a SMALL_INTEGER_EXT")
    return Export(module, function, data[pos + 1]), pos + 2


def _d_unsupported(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    tag = data[pos - 1]
    reason = _UNSUPPORTED_TAGS.get(tag, "unknown tag")
    raise ETFDecodeError(f"cannot decode tag {tag} at offset {pos - 1}: {reason}")


_DECODERS: list[_Handler] = [_d_unsupported] * 256
for _tag, _handler in {
    _SMALL_ATOM_UTF8: _d_small_atom_utf8,
    _ATOM_UTF8: _d_atom_utf8,
    _SMALL_ATOM: _d_small_atom,
    _ATOM: _d_atom,
    _ATOM_CACHE_REF: _d_atom_cache_ref,
    _SMALL_INTEGER: _d_small_integer,
    _INTEGER: _d_integer,
    _SMALL_BIG: _d_small_big,
    _LARGE_BIG: _d_large_big,
    _NEW_FLOAT: _d_new_float,
    _FLOAT: _d_float,
    _BINARY: _d_binary,
    _BIT_BINARY: _d_bit_binary,
    _SMALL_TUPLE: _d_small_tuple,
    _LARGE_TUPLE: _d_large_tuple,
    _NIL: _d_nil,
    _STRING: _d_string,
    _LIST: _d_list,
    _MAP: _d_map,
    _NEW_PID: _d_new_pid,
    _PID: _d_pid,
    _NEWER_REFERENCE: _d_newer_reference,
    _NEW_REFERENCE: _d_new_reference,
    _REFERENCE: _d_reference,
    _NEW_PORT: _d_new_port,
    _V4_PORT: _d_v4_port,
    _PORT: _d_port,
    _NEW_FUN: _d_new_fun,
    _EXPORT: _d_export,
}.items():
    _DECODERS[_tag] = _handler
del _tag, _handler


def _decompress(data: bytes, pos: int, max_size: int) -> tuple[bytes, int]:
    """Inflate a COMPRESSED payload at ``pos`` (just after tag 80); return it and the end offset."""
    size = _U32(data, pos)[0]
    pos += 4
    if size == 0:
        raise ETFDecodeError("compressed term with uncompressed size 0")
    if size > max_size:
        raise ETFDecodeError(
            f"compressed term would inflate to {size} bytes (max_decompressed_size={max_size})"
        )
    inflater = zlib.decompressobj()
    try:
        payload = inflater.decompress(memoryview(data)[pos:], size)
        # At most the end-of-stream marker may remain; any more output is too much.
        if (
            not inflater.eof
            and len(payload) == size
            and inflater.decompress(inflater.unconsumed_tail, 1)
        ):
            raise ETFDecodeError("compressed term inflates beyond its declared size")
    except zlib.error as e:
        raise ETFDecodeError(f"bad zlib data in compressed term: {e}") from None
    if not inflater.eof:
        raise ETFDecodeError("truncated zlib data in compressed term")
    if len(payload) != size:
        raise ETFDecodeError(f"compressed term inflates to {len(payload)} bytes, not {size}")
    return payload, len(data) - len(inflater.unused_data)


def _decode_at(
    data: bytes,
    offset: int,
    ctx: _Ctx,
    max_depth: int,
    max_decompressed_size: int,
) -> tuple[Any, int]:
    decode = _c_decode_at if ctx is _DEFAULT_CTX and _c_decode_at is not None else None
    try:
        if data[offset] == _COMPRESSED:
            payload, end = _decompress(data, offset + 1, max_decompressed_size)
            if decode is not None:
                term, used = decode(payload, 0, max_depth)
            else:
                term, used = _dec_checked(payload, 0, max_depth, ctx)
            if used != len(payload):
                raise ETFDecodeError("compressed payload is not exactly one term")
            return term, end
    except (IndexError, struct.error):
        raise _truncated() from None
    if decode is not None:
        return decode(data, offset, max_depth)
    return _dec_checked(data, offset, max_depth, ctx)


def _dec_checked(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    """`_dec`, with reads past the end and deep nesting reported as `ETFDecodeError`."""
    try:
        term, end = _DECODERS[data[pos]](data, pos + 1, depth, ctx)
    except (IndexError, struct.error):
        raise _truncated() from None
    except RecursionError:
        raise ETFDecodeError("term nested too deeply for the Python stack") from None
    if end > len(data):
        raise _truncated()
    return term, end


def _prepare(data: bytes | bytearray | memoryview, offset: int) -> bytes:
    if type(data) is not bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"expected bytes, not {type(data).__qualname__}")
        data = bytes(data)
    if not 0 <= offset <= len(data):
        raise ValueError(f"offset {offset} outside the data (length {len(data)})")
    return data


def _ctx(atom_cache: Sequence[Atom] | None, safe: bool) -> _Ctx:
    return _DEFAULT_CTX if atom_cache is None and not safe else _Ctx(atom_cache, safe)


def _py_decode_at(data: bytes, pos: int) -> tuple[Any, int]:
    """`decode_term` with the default limits, for a ``bytes`` buffer: the
    distribution layer's entry point (no argument checks, no compressed terms
    in first position — the caller checks the tag). `decode_at` is this, or
    the same in C (`otpy.dist._etf_c`) when that extension was built.

    Args:
        data: the buffer.
        pos: the offset of the term's tag byte.

    Returns:
        ``(term, end)``.

    Raises:
        ETFDecodeError: bad or truncated data.
    """
    return _dec_checked(data, pos, DEFAULT_MAX_DEPTH, _DEFAULT_CTX)


#: A map with this key is a struct (see otpy.dist._structs); the hook rebuilds it.
_STRUCT_KEY: Final = Atom("__struct__")
_struct_hook: Callable[[dict[Any, Any]], Any] | None = None


def set_struct_hook(key: Atom, hook: Callable[[dict[Any, Any]], Any]) -> None:
    """Have both decoders hand every decoded map that has ``key`` to ``hook``.

    Args:
        key: the struct key atom (``'__struct__'``).
        hook: ``map -> value``: what stands for the map in the decoded term.
    """
    global _struct_hook
    if key is not _STRUCT_KEY:
        raise ValueError(f"the struct key is {_STRUCT_KEY!r}")
    _struct_hook = hook
    if _c_decode_at is not None:
        from otpy.dist import _etf_c

        _etf_c.set_struct_hook(key, hook)


def register_encoder(cls: type, encoder: Callable[[Any, bytearray], None],
                     fields: Callable[[Any], dict[str, Any]] | None = None) -> None:
    """Encode instances of exactly ``cls`` with ``encoder(value, out)``.

    Args:
        cls: the class.
        encoder: appends the value's encoding (no version byte) to ``out``.
        fields: ``value -> {name: part}``, to name the part that failed in an
            `ETFEncodeError`'s path.
    """
    _ENCODERS[cls] = encoder
    if fields is not None:
        _FIELDS[cls] = fields


_FIELDS: dict[type, Callable[[Any], dict[str, Any]]] = {}
_LOCATE_DEPTH: Final = 200


def _locate(term: Any, path: str, depth: int) -> tuple[str, str] | None:
    """Where in ``term`` encoding fails: ``(path, error)`` (only on the error path)."""
    if depth > _LOCATE_DEPTH:
        return None
    if isinstance(term, tuple | list) and not isinstance(term, str):
        for i, item in enumerate(term):
            found = _locate(item, f"{path}[{i}]", depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(term, dict):
        for key, value in term.items():
            found = (_locate(key, f"{path} (a key: {key!r:.40})", depth + 1)
                     or _locate(value, f"{path}[{key!r:.40}]", depth + 1))
            if found is not None:
                return found
        return None
    fields = _FIELDS.get(type(term))
    if fields is not None:
        try:
            parts = fields(term)
        except Exception:
            parts = {}
        for name, value in parts.items():
            found = _locate(value, f"{path}.{name}", depth + 1)
            if found is not None:
                return found
    try:
        _enc(term, bytearray())
    except ETFEncodeError as exc:
        return path, str(exc)
    except (RecursionError, struct.error, OverflowError, UnicodeEncodeError) as exc:
        return path, f"{type(exc).__name__}: {exc}"
    return None


def encode_struct_map(term: dict[Any, Any], out: bytearray) -> None:
    """Append a map's encoding (for struct encoders; errors surface as for any term)."""
    _enc(term, out)


def _load_c_decoder() -> Callable[..., tuple[Any, int]] | None:
    """The C decoder (`otpy.dist._etf_c`), set up with this module's caches and
    handlers; None when it was not built or ``OTPY_PURE_PYTHON`` is set."""
    if os.environ.get("OTPY_PURE_PYTHON"):
        return None
    try:
        from otpy.dist import _etf_c
    except ImportError:
        return None
    if not hasattr(_etf_c, "set_struct_hook"):  # built from older sources: not used
        return None
    _etf_c.setup(_ATOM_VALUES, _RAW_ATOMS, _PIDS, Ref, ImproperList, MapKey, ETFDecodeError,
                 struct.error, _DECODERS, _DEFAULT_CTX, _exact_keys, _put_exact,
                 DEFAULT_MAX_DEPTH)
    return _etf_c.decode_at


_c_decode_at = _load_c_decoder()
#: Whether terms are decoded in C (`otpy.dist._etf_c`); the results are the same either way.
C_DECODER: Final = _c_decode_at is not None
decode_at: Callable[[bytes, int], tuple[Any, int]] = _c_decode_at or _py_decode_at


def decode_term(
    data: bytes | bytearray | memoryview,
    offset: int = 0,
    atom_cache: Sequence[Atom] | None = None,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
    safe: bool = False,
) -> tuple[Any, int]:
    """Decode one term that starts at ``offset`` and has no version byte.

    A COMPRESSED tag (80) is accepted in first position as well.

    Args:
        data: the buffer holding the term.
        offset: where the term's tag byte is.
        atom_cache: the atoms that ``ATOM_CACHE_REF`` indexes refer to (the
            distribution header's table); without it such a reference is an error.
        max_depth: how deeply containers (tuples, lists, maps, funs) may nest.
        max_decompressed_size: largest accepted declared size of a compressed term.
        safe: refuse atoms that do not exist yet (like ``binary_to_term(B, [safe])``).

    Returns:
        ``(term, end)`` where ``end`` is the offset just past the term.

    Raises:
        ETFDecodeError: the bytes are truncated, malformed or over a limit.
    """
    data = _prepare(data, offset)
    return _decode_at(data, offset, _ctx(atom_cache, safe), max_depth, max_decompressed_size)


def decode_versioned_term(
    data: bytes | bytearray | memoryview,
    offset: int = 0,
    atom_cache: Sequence[Atom] | None = None,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
    safe: bool = False,
) -> tuple[Any, int]:
    """Decode one ``131``-prefixed (possibly compressed) term at ``offset``.

    This is the framing of the distribution's pass-through messages, where
    several complete terms follow each other.

    Args:
        data: the buffer holding the term.
        offset: where the version byte is.
        atom_cache: see `decode_term`.
        max_depth: see `decode_term`.
        max_decompressed_size: see `decode_term`.
        safe: see `decode_term`.

    Returns:
        ``(term, end)`` where ``end`` is the offset just past the term.

    Raises:
        ETFDecodeError: no version byte, or the term is not acceptable.
    """
    data = _prepare(data, offset)
    if offset >= len(data):
        raise _truncated()
    if data[offset] != VERSION:
        raise ETFDecodeError(f"expected version byte 131, found {data[offset]}")
    return _decode_at(data, offset + 1, _ctx(atom_cache, safe), max_depth, max_decompressed_size)


def binary_to_term(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
    safe: bool = False,
) -> Any:
    """Decode a complete external term, as ``erlang:binary_to_term/1`` does.

    Unlike Erlang, bytes after the term are an error (use `decode_term` to
    read terms out of a longer buffer).

    Args:
        data: ``131`` followed by one term (or by a compressed term, tag 80).
        max_depth: see `decode_term`.
        max_decompressed_size: see `decode_term`.
        safe: see `decode_term`.

    Returns:
        The decoded Python value.

    Raises:
        ETFDecodeError: the bytes are not exactly one acceptable term.
    """
    if type(data) is not bytes:
        data = _prepare(data, 0)
    if not data or data[0] != VERSION:
        found = data[0] if data else "nothing"
        raise ETFDecodeError(f"expected version byte 131, found {found}")
    ctx = _DEFAULT_CTX if not safe else _Ctx(None, True)
    term, end = _decode_at(data, 1, ctx, max_depth, max_decompressed_size)
    if end != len(data):
        raise ETFDecodeError(f"{len(data) - end} bytes after the term")
    return term


# --------------------------------------------------------------------------- encoding

_SMALL_INTS: Final = [bytes((_SMALL_INTEGER, i)) for i in range(256)]
_NEW_PID_BYTE: Final = bytes((_NEW_PID,))
_ATOM_BYTES: dict[Atom, bytes] = {}


def _atom_bytes(atom: Atom) -> bytes:
    """The encoding of ``atom`` (SMALL_ATOM_UTF8_EXT, or ATOM_UTF8_EXT if long); cached."""
    if type(atom) is not Atom:
        raise ETFEncodeError(f"expected an Atom, got {type(atom).__qualname__}")
    name = atom.name
    if len(name) > 255:
        raise ETFEncodeError(f"atom name longer than 255 characters ({len(name)})")
    raw = name.encode("utf-8")
    if len(raw) < 256:
        encoded = _PACK_TAG_U8(_SMALL_ATOM_UTF8, len(raw)) + raw
    else:
        encoded = _PACK_TAG_U16(_ATOM_UTF8, len(raw)) + raw
    if len(_ATOM_BYTES) < _CACHE_LIMIT:
        _ATOM_BYTES[atom] = encoded
    return encoded


_TRUE_BYTES: Final = _atom_bytes(_TRUE)
_FALSE_BYTES: Final = _atom_bytes(_FALSE)
_UNDEFINED_BYTES: Final = _atom_bytes(_UNDEFINED)


def _enc(term: Any, out: bytearray) -> None:
    """Append the encoding of ``term`` (no version byte) to ``out``."""
    tp = type(term)
    if tp is Atom:
        encoded = _ATOM_BYTES.get(term)
        out += encoded if encoded is not None else _atom_bytes(term)
    elif tp is int:
        if 0 <= term <= 255:
            out += _SMALL_INTS[term]
        elif -0x80000000 <= term <= 0x7FFFFFFF:
            out += _PACK_TAG_I32(_INTEGER, term)
        else:
            _enc_big(term, out)
    elif tp is tuple:
        n = len(term)
        out += _PACK_TAG_U8(_SMALL_TUPLE, n) if n < 256 else _PACK_TAG_U32(_LARGE_TUPLE, n)
        for item in term:
            _enc(item, out)
    elif tp is str:
        raw = term.encode("utf-8")
        out += _PACK_TAG_U32(_BINARY, len(raw))
        out += raw
    elif tp is list:
        n = len(term)
        if n == 0:
            out.append(_NIL)
            return
        if n < 0x10000 and type(term[0]) is int:
            try:
                raw = bytes(term)
            except (TypeError, ValueError):
                pass
            else:
                if len(set(map(type, term))) == 1:  # all exactly int, no bools
                    out += _PACK_TAG_U16(_STRING, n)
                    out += raw
                    return
        out += _PACK_TAG_U32(_LIST, n)
        for item in term:
            _enc(item, out)
        out.append(_NIL)
    elif tp is dict:
        out += _PACK_TAG_U32(_MAP, len(term))
        for key, value in term.items():
            _enc(key, out)
            _enc(value, out)
    elif tp is bytes:
        out += _PACK_TAG_U32(_BINARY, len(term))
        out += term
    elif tp is bool:
        out += _TRUE_BYTES if term else _FALSE_BYTES
    elif term is None:
        out += _UNDEFINED_BYTES
    else:
        encoder = _ENCODERS.get(tp)
        if encoder is None:
            encoder = _subclass_encoder(term)
        encoder(term, out)


def _enc_big(term: int, out: bytearray) -> None:
    magnitude = -term if term < 0 else term
    n = (magnitude.bit_length() + 7) // 8
    if n < 256:
        out += _PACK_SMALL_BIG(_SMALL_BIG, n, term < 0)
    else:
        out += _PACK_LARGE_BIG(_LARGE_BIG, n, term < 0)
    out += magnitude.to_bytes(n, "little")


def _enc_float(term: float, out: bytearray) -> None:
    if term - term != 0.0:
        raise ETFEncodeError(f"Erlang has no float {term!r}")
    out += _PACK_TAG_F64(_NEW_FLOAT, term)


def _node_bytes(node: Any) -> bytes:
    encoded = _ATOM_BYTES.get(node)
    return encoded if encoded is not None else _atom_bytes(node)


def pid_ext(pid: Pid) -> bytes:
    """The encoding of a pid (NEW_PID_EXT, no version byte), cached on the pid.

    Args:
        pid: the pid.

    Returns:
        Its encoded bytes.
    """
    ext = pid._ext
    if ext is None:
        ext = pid._ext = (_NEW_PID_BYTE + _node_bytes(pid.node)
                          + _PACK_PID(pid.id, pid.serial, pid.creation))
    return ext


def ref_ext(ref: Ref) -> bytes:
    """The encoding of a reference (NEWER_REFERENCE_EXT), cached on the reference.

    Args:
        ref: the reference.

    Returns:
        Its encoded bytes.

    Raises:
        ETFEncodeError: the reference does not have 1 to 5 words.
    """
    ext = ref._ext
    if ext is None:
        ids = ref.ids
        n = len(ids)
        if not 1 <= n <= _MAX_REF_WORDS:
            raise ETFEncodeError(f"reference with {n} words (1..{_MAX_REF_WORDS})")
        ext = ref._ext = (_PACK_REF_HEAD(_NEWER_REFERENCE, n) + _node_bytes(ref.node)
                          + _PACK_U32(ref.creation) + _PACK_REF_IDS[n](*ids))
    return ext


def term_ext(term: Any) -> bytes:
    """The encoding of ``term`` without the version byte; pids, references,
    atoms and small integers come from caches (the parts of control messages).

    Args:
        term: the Python value.

    Returns:
        Its encoded bytes.

    Raises:
        ETFEncodeError: see `encode_term`.
    """
    tp = type(term)
    if tp is Pid or tp is Ref:
        ext = term._ext
        if ext is not None:
            return ext  # type: ignore[no-any-return]
        return pid_ext(term) if tp is Pid else ref_ext(term)
    if tp is Atom:
        ext = _ATOM_BYTES.get(term)
        return ext if ext is not None else _atom_bytes(term)
    if tp is int and 0 <= term <= 255:
        return _SMALL_INTS[term]  # type: ignore[no-any-return]
    out = bytearray()
    encode_term(term, out)
    return bytes(out)


def _enc_pid(term: Pid, out: bytearray) -> None:
    ext = term._ext
    out += ext if ext is not None else pid_ext(term)


def _enc_ref(term: Ref, out: bytearray) -> None:
    ext = term._ext
    out += ext if ext is not None else ref_ext(term)


def _enc_port(term: Port, out: bytearray) -> None:
    # Like OTP 25: NEW_PORT_EXT while the id fits the classic 28 bits, V4_PORT_EXT beyond.
    if term.id > 0xFFFFFFF:
        out.append(_V4_PORT)
        out += _node_bytes(term.node)
        out += _PACK_PORT_V4(term.id, term.creation)
    else:
        out.append(_NEW_PORT)
        out += _node_bytes(term.node)
        out += _PACK_PORT(term.id, term.creation)


def _enc_improper(term: ImproperList, out: bytearray) -> None:
    items = term.items
    tail = term.tail
    while type(tail) is ImproperList:
        items = [*items, *tail.items]
        tail = tail.tail
    if isinstance(tail, list):
        _enc([*items, *tail], out)
        return
    if not items:
        _enc(tail, out)
        return
    out += _PACK_TAG_U32(_LIST, len(items))
    for item in items:
        _enc(item, out)
    _enc(tail, out)


def _enc_bit_binary(term: BitBinary, out: bytearray) -> None:
    out += _PACK_BIT_BINARY(_BIT_BINARY, len(term.data), term.bits)
    out += term.data


def _enc_export(term: Export, out: bytearray) -> None:
    out.append(_EXPORT)
    out += _node_bytes(term.module)
    out += _node_bytes(term.function)
    if type(term.arity) is not int or not 0 <= term.arity <= 255:
        raise ETFEncodeError(f"Export arity must be an int in 0..255, not {term.arity!r}")
    out += _SMALL_INTS[term.arity]


def _enc_fun(term: Fun, out: bytearray) -> None:
    out.append(_NEW_FUN)
    size_at = len(out)
    out += b"\0\0\0\0"
    if len(term.uniq) != 16:
        raise ETFEncodeError("Fun.uniq must be 16 bytes")
    out += _PACK_FUN_HEAD(term.arity, term.uniq, term.index, len(term.free_vars))
    out += _node_bytes(term.module)
    _enc(term.old_index, out)
    _enc(term.old_uniq, out)
    if type(term.pid) is not Pid:
        raise ETFEncodeError(f"Fun.pid must be a Pid, not {type(term.pid).__qualname__}")
    _enc_pid(term.pid, out)
    for item in term.free_vars:
        _enc(item, out)
    _PACK_U32_INTO(out, size_at, len(out) - size_at)


def _enc_map_key(term: MapKey, out: bytearray) -> None:
    _enc(term.value, out)


def _enc_bytes_like(term: bytearray | memoryview, out: bytearray) -> None:
    _enc(bytes(term), out)


_ENCODERS: dict[type, Callable[[Any, bytearray], None]] = {
    float: _enc_float,
    Pid: _enc_pid,
    Ref: _enc_ref,
    Port: _enc_port,
    ImproperList: _enc_improper,
    BitBinary: _enc_bit_binary,
    MapKey: _enc_map_key,
    Export: _enc_export,
    Fun: _enc_fun,
    bytearray: _enc_bytes_like,
    memoryview: _enc_bytes_like,
}

# Subclasses of builtin types encode as their base value (IntEnum, namedtuple, ...).
_SUBCLASS_CONVERSIONS: Final[tuple[tuple[type, Callable[[Any], Any]], ...]] = (
    (int, int),
    (float, float),
    (str, str.__str__),
    (bytes, bytes),
    (tuple, tuple),
    (list, list),
    (dict, dict),
)


def _subclass_encoder(term: Any) -> Callable[[Any, bytearray], None]:
    for base, convert in _SUBCLASS_CONVERSIONS:
        if isinstance(term, base):
            return lambda t, out: _enc(convert(t), out)
    raise ETFEncodeError(f"cannot encode a {type(term).__qualname__} as an Erlang term")


def encode_term(term: Any, out: bytearray) -> None:
    """Append the encoding of ``term`` to ``out``, without the version byte.

    On error ``out`` is left as it was.

    Args:
        term: the Python value (see docs/term-mapping.md for the mapping).
        out: the buffer to append to.

    Raises:
        ETFEncodeError: a value has an unsupported type or is out of range, or
            the term is nested too deeply (or contains itself).
    """
    start = len(out)
    try:
        _enc(term, out)
    except ETFEncodeError as exc:
        del out[start:]
        if exc.path is None:
            found = _locate(term, "term", 0)
            if found is not None:
                raise ETFEncodeError(f"{found[1]} (at {found[0]})", path=found[0]) from None
        raise
    except RecursionError:
        del out[start:]
        raise ETFEncodeError("term is nested too deeply (or contains itself)") from None
    except (struct.error, OverflowError, UnicodeEncodeError) as e:
        del out[start:]
        raise ETFEncodeError(f"value out of range for the external term format: {e}") from e


def term_to_binary(term: Any, *, compressed: int | bool = False) -> bytes:
    """Encode ``term`` as a complete external term, as ``erlang:term_to_binary/2`` does.

    Args:
        term: the Python value (see docs/term-mapping.md for the mapping).
        compressed: ``True`` for zlib level 6 (Erlang's ``compressed``), or a
            level 0..9 (``{compressed, Level}``; 0 = off). As in Erlang, the
            compressed form is only used when it is smaller.

    Returns:
        ``131`` followed by the term's encoding (or by tag 80 and the zlib data).

    Raises:
        ETFEncodeError: see `encode_term`.
        ValueError: ``compressed`` is not a bool or a level 0..9.
    """
    out = bytearray(b"\x83")
    encode_term(term, out)
    if compressed is False:
        return bytes(out)
    level = 6 if compressed is True else compressed
    if type(level) is not int or not 0 <= level <= 9:
        raise ValueError(f"compressed must be a bool or a zlib level 0..9, not {compressed!r}")
    if level:
        size = len(out) - 1
        packed = zlib.compress(memoryview(out)[1:], level)
        if len(packed) + 5 < size:
            return b"\x83P" + _PACK_U32(size) + packed
    return bytes(out)
