"""Tests for the External Term Format codec (otpy.dist._etf).

Round trips and fuzzing run with hypothesis; the cross-checks run against a real
`erl` (one escript process for the whole module, driven line by line over pipes).
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import time
import zlib
from collections.abc import Iterator
from enum import IntEnum
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otpy._terms import (
    NONODE,
    Atom,
    BitBinary,
    Export,
    Fun,
    ImproperList,
    MapKey,
    Pid,
    Port,
    Ref,
)
from otpy.dist._etf import (
    DEFAULT_MAX_DEPTH,
    ETFDecodeError,
    ETFEncodeError,
    binary_to_term,
    decode_term,
    decode_versioned_term,
    encode_term,
    term_to_binary,
)

# --------------------------------------------------------------------------- helpers


def norm(t: Any) -> Any:
    """An independent model of Erlang's exact equality: equal results <=> ``=:=``."""
    if t is True or t is False:
        return ("atom", "true" if t else "false")
    if t is None:
        return ("atom", "undefined")
    tp = type(t)
    if tp is Atom:
        return ("atom", t.name)
    if tp is int:
        return ("int", t)
    if tp is float:
        return ("float", t)
    if tp is str:
        return ("bin", t.encode())
    if tp is bytes:
        return ("bin", t)
    if tp is BitBinary:
        return ("bits", t.data, t.bits)
    if tp is tuple:
        return ("tuple", *map(norm, t))
    if tp is list or tp is ImproperList:
        items = list(t) if tp is list else list(t.items)
        tail: Any = [] if tp is list else t.tail
        while type(tail) is ImproperList:
            items += tail.items
            tail = tail.tail
        if type(tail) is list:
            return ("list", *map(norm, items + tail))
        if not items:
            return norm(tail)
        return ("improper", tuple(map(norm, items)), norm(tail))
    if tp is dict:
        return ("map", frozenset((norm(k), norm(v)) for k, v in t.items()))
    if tp is MapKey:
        return norm(t.value)
    if tp is Pid:
        return ("pid", t.node.name, t.id, t.serial, t.creation)
    if tp is Ref:
        return ("ref", t.node.name, tuple(t.ids), t.creation)
    if tp is Port:
        return ("port", t.node.name, t.id, t.creation)
    if tp is Export:
        return ("export", t.module.name, t.function.name, t.arity)
    if tp is Fun:
        return (
            "fun",
            t.module.name,
            t.arity,
            t.uniq,
            t.index,
            t.old_index,
            t.old_uniq,
            norm(t.pid),
            tuple(map(norm, t.free_vars)),
        )
    raise AssertionError(f"not a term: {t!r}")


def assert_decoded_shape(t: Any) -> None:
    """Check the documented decode mapping on a value that came out of the decoder."""
    tp = type(t)
    if tp is bytes:
        with pytest.raises(UnicodeDecodeError):
            t.decode("utf-8")
    elif tp is Atom:
        assert t.name not in ("true", "false", "undefined")
    elif tp is tuple or tp is list:
        for item in t:
            assert_decoded_shape(item)
    elif tp is ImproperList:
        assert t.items, "an empty ImproperList is just its tail"
        assert type(t.tail) not in (list, ImproperList)
        for item in [*t.items, t.tail]:
            assert_decoded_shape(item)
    elif tp is dict:
        wrapped = [k for k in t if type(k) is MapKey]
        if wrapped and len(wrapped) != len(t):  # not the all-wrapped collision case
            for key in wrapped:
                with pytest.raises(TypeError):
                    hash(key.value)
        for key, value in t.items():
            assert_decoded_shape(key.value if type(key) is MapKey else key)
            assert_decoded_shape(value)
    elif tp is Fun:
        for item in t.free_vars:
            assert_decoded_shape(item)
    else:
        assert tp in (int, float, str, bool, type(None), BitBinary, Pid, Ref, Port, Export)


def enc(term: Any) -> bytes:
    """Encoding without the version byte."""
    out = bytearray()
    encode_term(term, out)
    return bytes(out)


# --------------------------------------------------------------------------- strategies

U32 = st.integers(0, 2**32 - 1)
SPECIAL_ATOMS = ["true", "false", "undefined", "nil", "ok", "", "héllo", "日本", "\U0001f600"]
atoms = st.one_of(st.sampled_from(SPECIAL_ATOMS), st.text(max_size=255)).map(Atom)
# Never the local node of the Erlang peer (nonode@nohost), whose pids Erlang validates.
nodes = st.sampled_from(["a@b", "other@host", "py@127.0.0.1", "ñode@høst"]).map(Atom)
pids = st.builds(Pid, nodes, U32, U32, U32)
refs = st.builds(Ref, nodes, st.lists(U32, min_size=1, max_size=5).map(tuple), U32)
ports = st.builds(Port, nodes, st.integers(0, 2**64 - 1), U32)
bit_binaries = st.builds(BitBinary, st.binary(min_size=1, max_size=20), st.integers(1, 7))
exports = st.builds(Export, atoms, atoms, st.integers(0, 255))
ints = st.one_of(
    st.integers(),
    # Bignums up to LARGE_BIG_EXT sizes (built from bytes to keep the strategy's repr small).
    st.builds(
        lambda raw, negative: (
            -int.from_bytes(raw, "little") if negative else int.from_bytes(raw, "little")
        ),
        st.binary(max_size=300),
        st.booleans(),
    ),
    st.sampled_from([0, 255, 256, -1, 2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 2**64]),
)
floats = st.floats(allow_nan=False, allow_infinity=False)
leaves = st.one_of(
    ints,
    floats,
    atoms,
    st.text(max_size=30),
    st.binary(max_size=30),
    bit_binaries,
    st.booleans(),
    st.none(),
    pids,
    refs,
    ports,
    exports,
)
hashable_keys = st.one_of(
    ints,
    floats,
    atoms,
    st.text(max_size=10),
    st.binary(max_size=10),
    st.booleans(),
    st.none(),
    pids,
    st.tuples(ints, atoms),
)


def _erlang_map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """A dict without keys that Erlang would consider duplicates ("a" and b"a", ...)."""
    seen: set[Any] = set()
    result: dict[Any, Any] = {}
    for key, value in pairs:
        if norm(key) not in seen and key not in result:
            seen.add(norm(key))
            result[key] = value
    return result


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=6).map(tuple),
        st.lists(children, max_size=6),
        st.lists(st.integers(0, 255), max_size=10),
        st.builds(ImproperList, st.lists(children, min_size=1, max_size=4), leaves),
        st.lists(
            st.tuples(st.one_of(hashable_keys, children.map(MapKey)), children), max_size=5
        ).map(_erlang_map),
        st.builds(
            Fun,
            atoms,
            st.integers(0, 255),
            st.binary(min_size=16, max_size=16),
            U32,
            st.integers(0, 2**31 - 1),
            st.integers(-(2**31), 2**31 - 1),  # Erlang reads OldUniq as a signed 32-bit int
            pids,
            st.lists(children, max_size=3).map(tuple),
        ),
    )


# Deferred, so that hypothesis never builds the (very long) repr of the recursive strategy.
_recursive_terms = st.recursive(leaves, _containers, max_leaves=25)
terms = st.deferred(lambda: _recursive_terms)


def has_multi_key_map(t: Any) -> bool:
    """Whether Erlang may reorder map keys when it re-encodes ``t``."""
    tp = type(t)
    if tp is dict:
        return len(t) > 1 or any(has_multi_key_map(k) or has_multi_key_map(v) for k, v in t.items())
    if tp is tuple or tp is list:
        return any(map(has_multi_key_map, t))
    if tp is ImproperList:
        return any(map(has_multi_key_map, [*t.items, t.tail]))
    if tp is MapKey:
        return has_multi_key_map(t.value)
    if tp is Fun:
        return any(map(has_multi_key_map, t.free_vars))
    return False


# --------------------------------------------------------------------------- round trips


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms)
def test_roundtrip(term: Any) -> None:
    data = term_to_binary(term)
    assert data[0] == 131
    decoded = binary_to_term(data)
    assert norm(decoded) == norm(term)
    assert_decoded_shape(decoded)
    # The decoded value re-encodes to exactly the same bytes (the encoding is canonical).
    assert term_to_binary(decoded) == data
    # The low-level API agrees and reports the end offset.
    assert enc(term) == data[1:]
    value, end = decode_term(b"xx" + data[1:] + b"yy", 2)
    assert end == len(data) + 1
    assert norm(value) == norm(term)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms, st.one_of(st.just(True), st.integers(1, 9)))
def test_compressed_roundtrip(term: Any, level: int | bool) -> None:
    data = term_to_binary(term, compressed=level)
    assert len(data) <= len(term_to_binary(term))
    assert norm(binary_to_term(data)) == norm(term)


def test_compression_is_used_when_it_helps() -> None:
    term = [Atom("hello")] * 1000
    plain = term_to_binary(term)
    packed = term_to_binary(term, compressed=True)
    assert packed[:2] == b"\x83P"
    assert int.from_bytes(packed[2:6], "big") == len(plain) - 1
    assert len(packed) < len(plain) // 10
    assert binary_to_term(packed) == term
    # Not smaller: stays uncompressed, like Erlang; level 0 means off.
    assert term_to_binary(Atom("a"), compressed=True) == b"\x83\x77\x01a"
    assert term_to_binary(term, compressed=0) == plain
    with pytest.raises(ValueError):
        term_to_binary(term, compressed=10)


# --------------------------------------------------------------------------- fuzzing


def _check_decode_is_safe(data: bytes) -> None:
    """Decoding gives a term or ETFDecodeError; a term always re-encodes faithfully."""
    try:
        value = binary_to_term(data)
    except ETFDecodeError:
        return
    again = term_to_binary(value)
    assert norm(binary_to_term(again)) == norm(value)
    assert term_to_binary(binary_to_term(again)) == again


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check_decode_is_safe(b"\x83" + data)
    _check_decode_is_safe(data)
    with contextlib.suppress(ETFDecodeError):
        decode_term(data, 0, [Atom("a"), Atom("true")])


def mutate(encoded: bytes, data: st.DataObject,
           values: tuple[int, ...] = (0, 1, 0x7F, 0x80, 0xFF, 106, 108, 116)) -> bytes:
    """1-4 random edits of an encoding (bit flips, set bytes from ``values``,
    cuts, inserts, deletes); the first byte always stays."""
    buf = bytearray(encoded)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        i = data.draw(st.integers(0, len(buf) - 1))
        if kind == "flip":
            buf[i] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set":
            buf[i] = data.draw(st.sampled_from(values))
        elif kind == "cut":
            del buf[max(i, 1):]
        elif kind == "insert":
            buf[i:i] = data.draw(st.binary(min_size=1, max_size=4))
        elif len(buf) > 1:
            del buf[i]
    return bytes(buf)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms, st.data())
def test_fuzz_mutated_encodings(term: Any, data: st.DataObject) -> None:
    _check_decode_is_safe(mutate(term_to_binary(term, compressed=data.draw(st.booleans())),
                                 data))


# --------------------------------------------------------------------------- vectors

NONODE_BYTES = b"\x0dnonode@nohost"


@pytest.mark.parametrize(
    ("erlang_bytes", "expected"),
    [
        # Bytes as printed by OTP 25's term_to_binary (latin-1 ATOM_EXT atoms by default).
        (b"\x83\x64\x00\x03abc", Atom("abc")),
        (b"\x83\x64\x00\x04true", True),
        (b"\x83\x77\x05false", False),
        (b"\x83\x77\x09undefined", None),
        (b"\x83\x77\x03nil", Atom("nil")),
        (b"\x83\x73\x02\xe9a", Atom("éa")),  # SMALL_ATOM_EXT, latin-1
        (b"\x83\x76\x00\x04\xf0\x9f\x98\x80", Atom("\U0001f600")),
        (b"\x83\x61\xff", 255),
        (b"\x83\x62\xff\xff\xff\xff", -1),
        (b"\x83\x6e\x09\x00" + bytes(8) + b"\x40", 2**70),
        (b"\x83\x6e\x01\x01\x05", -5),
        (b"\x83\x6f\x00\x00\x00\x01\x00\x07", 7),
        (b"\x83\x6e\x00\x00", 0),
        (b"\x83\x46\x3f\xf8" + bytes(6), 1.5),
        (b"\x83\x63" + b"1.50000000000000000000e+00".ljust(31, b"\0"), 1.5),
        (b"\x83\x6d\x00\x00\x00\x02hi", "hi"),
        (b"\x83\x6d\x00\x00\x00\x02\xff\xfe", b"\xff\xfe"),
        (b"\x83\x6d\x00\x00\x00\x00", ""),
        (b"\x83\x4d\x00\x00\x00\x01\x03\x20", BitBinary(b"\x20", 3)),
        (b"\x83\x4d\x00\x00\x00\x01\x01\xff", BitBinary(b"\x80", 1)),  # unused bits ignored
        (b"\x83\x4d\x00\x00\x00\x01\x08\x41", "A"),  # 8 bits: an ordinary binary
        (b"\x83\x4d\x00\x00\x00\x00\x00", ""),
        (b"\x83\x6b\x00\x03\x01\x02\x03", [1, 2, 3]),
        (b"\x83\x6a", []),
        (b"\x83\x6c\x00\x00\x00\x01\x61\x01\x61\x02", ImproperList([1], 2)),
        # [1 | [2]] written non-canonically is the proper list [1, 2].
        (b"\x83\x6c\x00\x00\x00\x01\x61\x01\x6c\x00\x00\x00\x01\x61\x02\x6a", [1, 2]),
        (b"\x83\x6c\x00\x00\x00\x01\x61\x01\x6b\x00\x01\x02", [1, 2]),
        (b"\x83\x6c\x00\x00\x00\x00\x61\x01", 1),  # no elements, tail 1: just 1
        (b"\x83\x68\x00", ()),
        (b"\x83\x69\x00\x00\x00\x01\x61\x07", (7,)),
        (b"\x83\x74\x00\x00\x00\x01\x64\x00\x01a\x61\x01", {Atom("a"): 1}),
        (
            b"\x83\x58\x64\x00" + NONODE_BYTES + b"\x00\x00\x00\x09" + bytes(8),
            Pid(NONODE, 9, 0, 0),
        ),
        (b"\x83\x67\x77\x03a@b\x00\x00\x00\x01\x00\x00\x00\x02\x03", Pid(Atom("a@b"), 1, 2, 3)),
        (
            b"\x83\x5a\x00\x02\x77\x03a@b\x00\x00\x00\x05\x00\x00\x00\x01\x00\x00\x00\x02",
            Ref(Atom("a@b"), (1, 2), 5),
        ),
        (b"\x83\x72\x00\x01\x77\x03a@b\x02\x00\x00\x00\x07", Ref(Atom("a@b"), (7,), 2)),
        (b"\x83\x65\x77\x03a@b\x00\x00\x00\x07\x01", Ref(Atom("a@b"), (7,), 1)),
        (b"\x83\x59\x77\x03a@b\x00\x00\x00\x02\x00\x00\x00\x05", Port(Atom("a@b"), 2, 5)),
        (b"\x83\x66\x77\x03a@b\x00\x00\x00\x02\x01", Port(Atom("a@b"), 2, 1)),
        (
            b"\x83\x78\x77\x03a@b\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x05",
            Port(Atom("a@b"), 2**32 + 2, 5),
        ),
        (
            b"\x83\x71\x64\x00\x05lists\x64\x00\x03map\x61\x02",
            Export(Atom("lists"), Atom("map"), 2),
        ),
    ],
)
def test_decode_vectors(erlang_bytes: bytes, expected: Any) -> None:
    value = binary_to_term(erlang_bytes)
    assert norm(value) == norm(expected)
    assert type(value) is type(expected)
    assert term_to_binary(binary_to_term(term_to_binary(value))) == term_to_binary(value)


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        (Atom("ok"), b"\x83\x77\x02ok"),
        (Atom("a" * 255), b"\x83\x77\xff" + b"a" * 255),
        (Atom("\U0001f600" * 64), b"\x83\x76\x01\x00" + "\U0001f600".encode() * 64),
        (True, b"\x83\x77\x04true"),
        (False, b"\x83\x77\x05false"),
        (None, b"\x83\x77\x09undefined"),
        (0, b"\x83\x61\x00"),
        (255, b"\x83\x61\xff"),
        (256, b"\x83\x62\x00\x00\x01\x00"),
        (-1, b"\x83\x62\xff\xff\xff\xff"),
        (2**31 - 1, b"\x83\x62\x7f\xff\xff\xff"),
        (2**31, b"\x83\x6e\x04\x00\x00\x00\x00\x80"),
        (-(2**31) - 1, b"\x83\x6e\x04\x01\x01\x00\x00\x80"),
        (2**2048, b"\x83\x6f\x00\x00\x01\x01\x00" + bytes(256) + b"\x01"),
        (1.5, b"\x83\x46\x3f\xf8" + bytes(6)),
        (-0.0, b"\x83\x46\x80" + bytes(7)),
        ("hé", b"\x83\x6d\x00\x00\x00\x03h\xc3\xa9"),
        (b"\x00\xff", b"\x83\x6d\x00\x00\x00\x02\x00\xff"),
        (bytearray(b"ab"), b"\x83\x6d\x00\x00\x00\x02ab"),
        (BitBinary(b"\xff", 3), b"\x83\x4d\x00\x00\x00\x01\x03\xe0"),
        ((), b"\x83\x68\x00"),
        ((1, 2), b"\x83\x68\x02\x61\x01\x61\x02"),
        (tuple(range(256)), b"\x83\x69\x00\x00\x01\x00" + b"".join(map(enc, range(256)))),
        ([], b"\x83\x6a"),
        ([1, 2, 3], b"\x83\x6b\x00\x03\x01\x02\x03"),
        ([1, 256], b"\x83\x6c\x00\x00\x00\x02\x61\x01\x62\x00\x00\x01\x00\x6a"),
        ([True], b"\x83\x6c\x00\x00\x00\x01\x77\x04true\x6a"),  # bools are atoms, not 1
        ([0] * 65536, b"\x83\x6c\x00\x01\x00\x00" + b"\x61\x00" * 65536 + b"\x6a"),
        (ImproperList([1], 2), b"\x83\x6c\x00\x00\x00\x01\x61\x01\x61\x02"),
        (ImproperList([1], [2]), b"\x83\x6b\x00\x02\x01\x02"),
        (
            ImproperList([1], ImproperList([2], 3)),
            b"\x83\x6c\x00\x00\x00\x02\x61\x01\x61\x02\x61\x03",
        ),
        (ImproperList([], Atom("x")), b"\x83\x77\x01x"),
        ({}, b"\x83\x74\x00\x00\x00\x00"),
        ({MapKey([1]): 2}, b"\x83\x74\x00\x00\x00\x01\x6b\x00\x01\x01\x61\x02"),
        (
            Pid(Atom("a@b"), 1, 2, 3),
            b"\x83\x58\x77\x03a@b" + bytes.fromhex("000000010000000200000003"),
        ),
        (
            Ref(Atom("a@b"), (1, 2, 3), 4),
            b"\x83\x5a\x00\x03\x77\x03a@b" + bytes.fromhex("00000004000000010000000200000003"),
        ),
        (Port(Atom("a@b"), 2, 5), b"\x83\x59\x77\x03a@b\x00\x00\x00\x02\x00\x00\x00\x05"),
        (
            Port(Atom("a@b"), 2**28 - 1, 5),
            b"\x83\x59\x77\x03a@b\x0f\xff\xff\xff\x00\x00\x00\x05",
        ),
        (
            Port(Atom("a@b"), 2**28, 5),
            b"\x83\x78\x77\x03a@b\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x05",
        ),
        (
            Port(Atom("a@b"), 2**32 + 2, 5),
            b"\x83\x78\x77\x03a@b\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x05",
        ),
        (Export(Atom("lists"), Atom("map"), 2), b"\x83\x71\x77\x05lists\x77\x03map\x61\x02"),
    ],
)
def test_encode_vectors(term: Any, expected: bytes) -> None:
    assert term_to_binary(term) == expected


class Color(IntEnum):
    RED = 1


class Point(NamedTuple):
    x: int
    y: int


def test_subclasses_encode_as_their_base_type() -> None:
    assert term_to_binary(Color.RED) == term_to_binary(1)
    assert term_to_binary(Point(1, 2)) == term_to_binary((1, 2))


def test_fun_from_erlang_reencodes_byte_exact() -> None:
    # term_to_binary(fun(Y) -> X + Y end, [{minor_version, 2}]) with X = 42, OTP 25.
    pid = b"\x58\x77\x0dnonode@nohost\x00\x00\x00\x09" + bytes(8)
    body = (
        b"\x01"
        + bytes.fromhex("49916e32c2505ec96fdbcf390a40a899")
        + b"\x00\x00\x00\x01"
        + b"\x00\x00\x00\x01"
        + b"\x77\x05probe\x61\x01\x62\x02\x4c\x8b\x71"
        + pid
        + b"\x61\x2a"
    )
    data = b"\x83\x70" + (len(body) + 4).to_bytes(4, "big") + body
    fun = binary_to_term(data)
    assert isinstance(fun, Fun)
    assert (fun.module, fun.arity, fun.index, fun.free_vars) == (Atom("probe"), 1, 1, (42,))
    assert fun.pid == Pid(NONODE, 9, 0, 0)
    assert term_to_binary(fun) == data
    # Like Erlang, a wrong Size field is ignored; re-encoding writes the true size.
    bad = data[:2] + (len(body) + 5).to_bytes(4, "big") + body
    assert term_to_binary(binary_to_term(bad)) == data


def test_map_keys_that_python_cannot_hold_directly() -> None:
    # #{1 => int, 1.0 => float, true => atom}: distinct keys for Erlang, equal for Python.
    data = term_to_binary({MapKey(1): Atom("int"), MapKey(1.0): Atom("float"), MapKey(True): 0})
    value = binary_to_term(data)
    assert value == {MapKey(1): Atom("int"), MapKey(1.0): Atom("float"), MapKey(True): 0}
    assert term_to_binary(value) == data
    # A list key and a map key are wrapped; other keys of the same map stay plain.
    value = binary_to_term(term_to_binary({MapKey([1, 2]): 1, MapKey({"k": []}): 2, "x": 3}))
    assert value[MapKey([1, 2])] == 1
    assert value[MapKey({"k": []})] == 2
    assert value["x"] == 3
    # MapKey equality is Erlang's exact equality.
    assert MapKey("a") == MapKey(b"a")
    assert MapKey(True) == MapKey(Atom("true"))
    assert MapKey(None) == MapKey(Atom("undefined"))
    assert MapKey(1) != MapKey(1.0)
    assert MapKey((1,)) != MapKey([1])
    assert MapKey(ImproperList([1], [2])) == MapKey([1, 2])
    assert hash(MapKey({"a": [1]})) == hash(MapKey({b"a": [1]}))
    # Duplicate keys (Erlang refuses them too).
    dup = b"\x83\x74\x00\x00\x00\x02\x61\x01\x61\x01\x61\x01\x61\x02"
    with pytest.raises(ETFDecodeError, match="duplicate"):
        binary_to_term(dup)


def test_bit_binary_validation() -> None:
    assert BitBinary(b"\xff\xff", 1).data == b"\xff\x80"
    assert BitBinary(b"\xff", 7).bit_size == 7
    with pytest.raises(ValueError):
        BitBinary(b"\x00", 8)
    with pytest.raises(ValueError):
        BitBinary(b"", 3)
    for bad in (b"\x83\x4d\x00\x00\x00\x01\x00\x05", b"\x83\x4d\x00\x00\x00\x01\x09\x05"):
        with pytest.raises(ETFDecodeError):
            binary_to_term(bad)


def test_latin1_atoms_are_not_confused_with_utf8_ones() -> None:
    utf8 = b"\x83\x77\x02\xc3\xa9"  # 'é' as SMALL_ATOM_UTF8_EXT
    latin1 = b"\x83\x73\x02\xc3\xa9"  # the same bytes as SMALL_ATOM_EXT: 'Ã©'
    assert binary_to_term(utf8) is Atom("é")
    assert binary_to_term(latin1) is Atom("Ã©")
    pid = b"\x83\x58\x64\x00\x02\xc3\xa9" + bytes(12)
    assert binary_to_term(pid).node is Atom("Ã©")


def test_atom_cache_refs() -> None:
    cache = [Atom("a@b"), Atom("hello"), Atom("true")]
    # {hello, true, <pid on a@b>} with every atom replaced by a cache reference.
    data = b"\x68\x03\x52\x01\x52\x02\x58\x52\x00" + bytes.fromhex("000000010000000200000003")
    value, end = decode_term(data, 0, cache)
    assert value == (Atom("hello"), True, Pid(Atom("a@b"), 1, 2, 3))
    assert end == len(data)
    with pytest.raises(ETFDecodeError, match="atom cache"):
        decode_term(data, 0)
    with pytest.raises(ETFDecodeError, match="outside"):
        decode_term(b"\x52\x05", 0, cache)


def test_consecutive_versioned_terms() -> None:
    # Pass-through framing: several 131-prefixed terms back to back.
    stream = term_to_binary((2, Atom(""), Pid(Atom("a@b"), 1, 0, 1))) + term_to_binary("hi")
    first, end = decode_versioned_term(stream)
    second, end2 = decode_versioned_term(memoryview(stream), end)
    assert first == (2, Atom(""), Pid(Atom("a@b"), 1, 0, 1))
    assert (second, end2) == ("hi", len(stream))
    with pytest.raises(ETFDecodeError, match="version"):
        decode_versioned_term(b"\x77\x01a")


def test_input_buffers_and_trailing_bytes() -> None:
    assert binary_to_term(bytearray(b"\x83\x61\x01")) == 1
    assert binary_to_term(memoryview(b"\x83\x61\x01")) == 1
    with pytest.raises(ETFDecodeError, match="after the term"):
        binary_to_term(b"\x83\x61\x01\x00")
    with pytest.raises(ETFDecodeError):
        binary_to_term(b"")
    with pytest.raises(ETFDecodeError, match="version"):
        binary_to_term(b"\x82\x61\x01")


# --------------------------------------------------------------------------- limits


def _nested_lists(n: int) -> bytes:
    return b"\x83" + b"\x6c\x00\x00\x00\x01" * n + b"\x6a" * (n + 1)


def test_max_depth_is_exact() -> None:
    assert binary_to_term(_nested_lists(10), max_depth=10) is not None
    with pytest.raises(ETFDecodeError, match="max_depth"):
        binary_to_term(_nested_lists(11), max_depth=10)
    nested_tuples = b"\x83" + b"\x68\x01" * 5 + b"\x6a"
    expected: Any = []
    for _ in range(5):
        expected = (expected,)
    assert binary_to_term(nested_tuples, max_depth=5) == expected
    with pytest.raises(ETFDecodeError, match="max_depth"):
        binary_to_term(nested_tuples, max_depth=4)
    nested_maps = b"\x83" + b"\x74\x00\x00\x00\x01\x61\x01" * 4 + b"\x6a"
    with pytest.raises(ETFDecodeError, match="max_depth"):
        binary_to_term(nested_maps, max_depth=3)


@pytest.mark.parametrize(
    "container", [b"\x6c\x00\x00\x00\x01", b"\x68\x01", b"\x69\x00\x00\x00\x01"]
)
def test_deep_nesting_never_raises_recursion_error(container: bytes) -> None:
    deep = b"\x83" + container * 200_000 + b"\x6a" * 200_001
    with pytest.raises(ETFDecodeError):
        binary_to_term(deep)
    # Even when the caller lifts max_depth beyond what the Python stack allows.
    with pytest.raises(ETFDecodeError):
        binary_to_term(deep, max_depth=10**9)
    assert binary_to_term(_nested_lists(DEFAULT_MAX_DEPTH)) is not None


@pytest.mark.parametrize(
    "data",
    [
        b"\x83\x6c\xff\xff\xff\xff\x6a",  # list of 4 billion elements
        b"\x83\x69\xff\xff\xff\xff\x6a",  # large tuple
        b"\x83\x74\xff\xff\xff\xff\x6a\x6a",  # map
        b"\x83\x6d\xff\xff\xff\xffabc",  # binary
        b"\x83\x4d\xff\xff\xff\xff\x03abc",  # bit binary
        b"\x83\x6f\xff\xff\xff\xff\x00abc",  # large big
        b"\x83\x6b\xff\xffab",  # string
        b"\x83\x76\xff\xffab",  # atom
        b"\x83\x5a\x00\x05\x77\x01a\x00\x00\x00\x00",  # reference with missing words
        b"\x83\x70\xff\xff\xff\xff\x01" + bytes(16) + b"\x00\x00\x00\x00\xff\xff\xff\xff",  # fun
    ],
)
def test_oversized_lengths_fail_fast(data: bytes) -> None:
    start = time.perf_counter()
    with pytest.raises(ETFDecodeError, match="truncated"):
        binary_to_term(data)
    assert time.perf_counter() - start < 0.05


def test_compressed_size_limits() -> None:
    payload = b"\x6b\xff\xff" + b"\x00" * 0xFFFF  # a 65538-byte term
    packed = zlib.compress(payload)
    good = b"\x83\x50" + len(payload).to_bytes(4, "big") + packed
    assert binary_to_term(good) == [0] * 0xFFFF
    with pytest.raises(ETFDecodeError, match="max_decompressed_size"):
        binary_to_term(good, max_decompressed_size=1000)
    # A "bomb" that claims to be small: only the declared size is ever inflated.
    bomb = b"\x83\x50\x00\x00\x00\x03" + zlib.compress(b"\x6a" * 50_000_000)
    with pytest.raises(ETFDecodeError, match="beyond"):
        binary_to_term(bomb)
    with pytest.raises(ETFDecodeError, match="inflates to"):
        binary_to_term(b"\x83\x50" + (len(payload) + 1).to_bytes(4, "big") + packed)
    with pytest.raises(ETFDecodeError, match="zlib"):
        binary_to_term(b"\x83\x50\x00\x00\x00\x02garbage")
    with pytest.raises(ETFDecodeError, match="truncated"):
        binary_to_term(good[:-3])
    with pytest.raises(ETFDecodeError, match="size 0"):
        binary_to_term(b"\x83\x50\x00\x00\x00\x00" + zlib.compress(b""))
    with pytest.raises(ETFDecodeError, match="exactly one term"):
        binary_to_term(b"\x83\x50\x00\x00\x00\x02" + zlib.compress(b"\x6a\x6a"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x83\x77\x02\xff\xfe", "UTF-8"),
        (b"\x83\x76\x01\x00" + b"a" * 256, "255"),
        (b"\x83\x46\x7f\xf8" + bytes(6), "finite"),
        (b"\x83\x63" + b"nan".ljust(31, b"\0"), "FLOAT_EXT"),
        (b"\x83\x63" + b"1.0e999".ljust(31, b"\0"), "finite"),
        (b"\x83\x63" + b"1.5x".ljust(31, b"\0"), "FLOAT_EXT"),
        (b"\x83\x63" + b" 1.5".ljust(31, b"\0"), "FLOAT_EXT"),
        (b"\x83\x63" + b"15".ljust(31, b"\0"), "FLOAT_EXT"),
        (b"\x83\x63" + b"1_0.5".ljust(31, b"\0"), "FLOAT_EXT"),
        (b"\x83\x75\x00", "FUN_EXT"),
        (b"\x83\x79\x00", "LOCAL_EXT"),
        (b"\x83\x44\x00", "DIST_HEADER"),
        (b"\x83\x68\x01\x50\x00", "COMPRESSED"),
        (b"\x83\xc8", "unknown"),
        (b"\x83\x58\x61\x01" + bytes(12), "expected an atom"),
        (b"\x83\x5a\x00\x06\x77\x01a" + bytes(28), "words"),
        (b"\x83\x71\x77\x01m\x77\x01f\x62\x00\x00\x00\x01", "arity"),
    ],
)
def test_malformed_input(data: bytes, message: str) -> None:
    with pytest.raises(ETFDecodeError, match=message):
        binary_to_term(data)


def test_safe_mode_refuses_new_atoms() -> None:
    fresh = "never_seen_before_atom_for_safe_mode"
    data = b"\x83\x77" + bytes((len(fresh),)) + fresh.encode()
    with pytest.raises(ETFDecodeError, match="unknown atom"):
        binary_to_term(data, safe=True)
    assert Atom.lookup(fresh) is None
    assert binary_to_term(data) is Atom(fresh)
    assert binary_to_term(data, safe=True) is Atom(fresh)


# --------------------------------------------------------------------------- encode errors


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ({1, 2}, "set"),
        (object(), "object"),
        ([1, {"a": 1.5j}], "complex"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (Atom("a" * 256), "255"),
        (Pid(Atom("a@b"), 2**32, 0, 0), "range"),
        (Ref(Atom("a@b"), (1, 2, 3, 4, 5, 6), 0), "words"),
        (Ref(Atom("a@b"), (), 0), "words"),
        ("\ud800", "range"),
        (Export(Atom("m"), Atom("f"), 256), "arity"),
    ],
)
def test_encode_errors(term: Any, message: str) -> None:
    out = bytearray(b"keep")
    with pytest.raises(ETFEncodeError, match=message):
        encode_term(term, out)
    assert out == b"keep"
    assert issubclass(ETFEncodeError, TypeError)
    assert issubclass(ETFDecodeError, ValueError)


def test_encode_cyclic_and_deep_terms() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(ETFEncodeError, match="deeply"):
        term_to_binary(cyclic)
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ETFEncodeError, match="deeply"):
        term_to_binary(deep)


# --------------------------------------------------------------------------- real Erlang

PEER_SCRIPT = r"""#!/usr/bin/env escript
%%! -noshell
-mode(compile).

%% Line protocol, one request per line, hex-encoded binaries:
%%   D Hex      -> "ok Reencoded Printed" (Erlang's own encoding, minor_version 2,
%%                 and the ~tw text) or "badarg"
%%   Q Hex Hex  -> "true" | "false": binary_to_term(A) =:= binary_to_term(B)
%%   G          -> Name,Default,Minor2,Compressed,Compressed9Minor2,Minor0 entries
%%                 (minor_version 0 writes floats as FLOAT_EXT text)
main(_) ->
    ok = io:setopts(standard_io, [binary]),
    loop().

loop() ->
    case io:get_line(standard_io, "") of
        eof -> ok;
        {error, _} -> ok;
        Line ->
            Reply = try handle(string:trim(Line))
                    catch C:R -> [<<"crash ">>, io_lib:format("~0p", [{C, R}])]
                    end,
            io:put_chars(standard_io, [Reply, $\n]),
            loop()
    end.

hex(B) -> binary:encode_hex(B).
unhex(H) -> binary:decode_hex(H).

handle(<<"D ", Hex/binary>>) ->
    try binary_to_term(unhex(Hex)) of
        T ->
            Text = unicode:characters_to_binary(io_lib:format("~tw", [T])),
            [<<"ok ">>, hex(term_to_binary(T, [{minor_version, 2}])), <<" ">>, hex(Text)]
    catch error:badarg -> <<"badarg">>
    end;
handle(<<"Q ", Rest/binary>>) ->
    [A, B] = binary:split(Rest, <<" ">>),
    atom_to_binary(binary_to_term(unhex(A)) =:= binary_to_term(unhex(B)));
handle(<<"G">>) ->
    lists:join(<<" ">>,
      [lists:join(<<",">>, [atom_to_binary(Name),
                            hex(term_to_binary(T)),
                            hex(term_to_binary(T, [{minor_version, 2}])),
                            hex(term_to_binary(T, [compressed])),
                            hex(term_to_binary(T, [{compressed, 9}, {minor_version, 2}])),
                            hex(term_to_binary(T, [{minor_version, 0}]))])
       || {Name, T} <- terms()]).

terms() ->
    Self = self(),
    Remote = binary_to_term(<<131,88,119,10,"other@host",0,0,1,2,0,0,0,3,16#12,16#34,16#56,16#78>>),
    RemoteRef = binary_to_term(<<131,90,0,3,119,10,"other@host",0,0,0,9,
                                 1,2,3,4,5,6,7,8,9,10,11,12>>),
    V4Port = binary_to_term(<<131,120,119,10,"other@host",0,0,0,1,0,0,0,2,0,0,0,5>>),
    X = 42,
    Y = <<"captured">>,
    [{pid, Self}, {remote_pid, Remote}, {ref, make_ref()}, {alias, alias()},
     {remote_ref, RemoteRef}, {port, hd(erlang:ports())}, {v4_port, V4Port},
     {fun0, fun() -> ok end}, {fun_free, fun(A) -> A + X end},
     {fun_free2, fun(A) -> {A, X, Y, Self} end}, {export, fun lists:map/2},
     {small_map, #{a => 1, <<"b">> => [2], {c} => #{}}},
     {large_map, maps:from_list([{I, integer_to_binary(I)} || I <- lists:seq(1, 100)])},
     {list_key_map, #{[1, 2] => a, #{x => y} => b, [] => c}},
     {mixed_keys, #{1 => int, 1.0 => float, true => atom}},
     {ints, [0, 255, 256, -1, 2147483647, -2147483648, 2147483648, -2147483649,
             1 bsl 64, -(1 bsl 64), 1 bsl 2100, -(1 bsl 2100)]},
     {floats, [0.0, 1.5, 0.1, 1.0e308, 5.0e-324, -2.5e-10]},
     {atoms, ['', ok, true, false, undefined, nil, 'hello world', 'héllo', '日本語',
              list_to_atom([16#1F600]), list_to_atom(lists:duplicate(255, $a)),
              list_to_atom(lists:duplicate(255, 16#1F600))]},
     {bitstrings, [<<1:3>>, <<255, 1:1>>, <<>>, <<1, 2, 3:7>>]},
     {binaries, [<<"hello">>, <<255, 254>>, <<"héllo"/utf8>>, binary:copy(<<"x">>, 70000)]},
     {improper, [[1 | 2], [a, b | <<"c">>], [[] | []], [[1] | x]]},
     {strings, ["hello", "", lists:seq(1, 300), lists:duplicate(70000, 1), [1, 256, 2]]},
     {tuples, [{}, {a}, list_to_tuple(lists:seq(1, 300))]},
     {nested, lists:foldl(fun(_, Acc) -> [Acc] end, [], lists:seq(1, 100))},
     {unicode_string, "日本"},
     {compressible, lists:duplicate(1000, {hello, <<"world">>})},
     {mixed, {ok, [1, 2.5, <<"x">>, 'A', "abc"], #{k => [self()]}}}].
"""


class ErlPeer:
    """A long-lived escript answering one request line with one reply line."""

    def __init__(self, script: Path, stderr_path: Path) -> None:
        escript = shutil.which("escript")
        assert escript is not None, "escript (Erlang/OTP) must be installed"
        self._stderr = stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [escript, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._stderr_path = stderr_path
        self._buf = bytearray()

    def ask(self, line: str, timeout: float = 30.0) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while (nl := self._buf.find(b"\n")) < 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"erl did not answer {line[:40]!r}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise EOFError(f"erl exited: {self._stderr_path.read_text()}")
                self._buf += chunk
        reply = self._buf[:nl].decode()
        del self._buf[: nl + 1]
        assert not reply.startswith("crash"), reply
        return reply

    def decode(self, data: bytes) -> tuple[bytes, str] | None:
        """Erlang's re-encoding (minor_version 2) and ~tw text of ``data``, or None on badarg."""
        reply = self.ask("D " + data.hex())
        if reply == "badarg":
            return None
        _, reencoded, text = reply.split(" ")
        return bytes.fromhex(reencoded), bytes.fromhex(text).decode()

    def exactly_equal(self, a: bytes, b: bytes) -> bool:
        return self.ask(f"Q {a.hex()} {b.hex()}") == "true"

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


@pytest.fixture(scope="module")
def erl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ErlPeer]:
    directory = tmp_path_factory.mktemp("etf_erl")
    script = directory / "etf_peer.escript"
    script.write_text(PEER_SCRIPT)
    peer = ErlPeer(script, directory / "stderr.txt")
    try:
        yield peer
    finally:
        peer.close()


def test_erlang_generated_terms(erl: ErlPeer) -> None:
    entries = [entry.split(",") for entry in erl.ask("G").split(" ")]
    names = {name for name, *_ in entries}
    assert {"pid", "fun_free2", "mixed_keys", "v4_port", "compressible"} <= names
    for name, *hexes in entries:
        variants = [bytes.fromhex(h) for h in hexes]
        decoded = [binary_to_term(v) for v in variants]
        for value in decoded:
            assert norm(value) == norm(decoded[1]), name
            assert_decoded_shape(value)
        ours = term_to_binary(decoded[0])
        # Byte-identical to Erlang's own canonical (UTF-8 atom) encoding.
        assert ours == variants[1], name
        assert erl.exactly_equal(variants[0], ours), name
        ours_packed = term_to_binary(decoded[2], compressed=9)
        assert erl.exactly_equal(variants[0], ours_packed), name
    assert bytes.fromhex(dict((e[0], e[3]) for e in entries)["compressible"])[1] == 80
    assert bytes.fromhex(dict((e[0], e[5]) for e in entries)["floats"])[6] == 99  # FLOAT_EXT
    mixed = binary_to_term(bytes.fromhex(dict((e[0], e[2]) for e in entries)["mixed_keys"]))
    assert mixed == {MapKey(1): Atom("int"), MapKey(1.0): Atom("float"), MapKey(True): Atom("atom")}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms)
def test_our_encoding_decodes_in_erlang(erl: ErlPeer, term: Any) -> None:
    ours = term_to_binary(term)
    result = erl.decode(ours)
    assert result is not None, f"Erlang refused {term!r}"
    theirs, _ = result
    assert norm(binary_to_term(theirs)) == norm(term)
    if not has_multi_key_map(term):  # Erlang may order map keys differently
        assert theirs == ours


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms, st.data())
def test_mutated_bytes_agree_with_erlang(erl: ErlPeer, term: Any, data: st.DataObject) -> None:
    buf = bytearray(term_to_binary(term))
    for _ in range(data.draw(st.integers(1, 2))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    try:
        value = binary_to_term(bytes(buf))
    except ETFDecodeError:
        return
    # Whenever we accept corrupted bytes, Erlang accepts them too, as the same term.
    assert erl.decode(bytes(buf)) is not None
    assert erl.exactly_equal(bytes(buf), term_to_binary(value))


@pytest.mark.parametrize(
    ("term", "printed"),
    [
        (
            (Atom("ok"), "hi", b"\xff", [1, 2], ImproperList([1], Atom("a")), {Atom("k"): 1.5}),
            "{ok,<<104,105>>,<<255>>,[1,2],[1|a],#{k => 1.5}}",
        ),
        ([True, False, None, Atom("nil")], "[true,false,undefined,nil]"),
        (BitBinary(b"\xe0", 3), "<<7:3>>"),
        (Atom("héllo wörld"), "'héllo wörld'"),
        ("日本", "<<230,151,165,230,156,172>>"),
        (2**100, "1267650600228229401496703205376"),
        (-(2**31), "-2147483648"),
        ([104, 105], "[104,105]"),  # a charlist is a list
        ({MapKey([1]): 2}, "#{[1] => 2}"),
        (Export(Atom("lists"), Atom("map"), 2), "fun lists:map/2"),
        (-0.0, "-0.0"),
        (tuple(range(300))[:3], "{0,1,2}"),
    ],
)
def test_printed_in_erlang(erl: ErlPeer, term: Any, printed: str) -> None:
    result = erl.decode(term_to_binary(term))
    assert result is not None
    assert result[1] == printed


def test_erlang_rejects_what_we_reject(erl: ErlPeer) -> None:
    # Sanity check of the oracle: Erlang refuses a duplicate-key map and a NaN as we do.
    for bad in (
        b"\x83\x74\x00\x00\x00\x02\x61\x01\x61\x01\x61\x01\x61\x02",
        b"\x83\x46\x7f\xf8" + bytes(6),
    ):
        assert erl.decode(bad) is None
        with pytest.raises(ETFDecodeError):
            binary_to_term(bad)


def test_fun_equality_matches_erlang(erl: ErlPeer) -> None:
    # A map with two keys Erlang finds =:= is refused by binary_to_term: that
    # tells, field by field, which Fun fields OTP compares.
    base = Fun(Atom("m"), 0, bytes(16), 0, 0, 0, Pid(Atom("a@b"), 0, 0, 0), (1,))
    variants = {
        "arity": attrs.evolve(base, arity=1),
        "uniq": attrs.evolve(base, uniq=b"\x01" * 16),
        "index": attrs.evolve(base, index=1),
        "old_index": attrs.evolve(base, old_index=1),
        "old_uniq": attrs.evolve(base, old_uniq=1),
        "pid": attrs.evolve(base, pid=Pid(Atom("a@b"), 0, 0, 1)),
        "free_vars": attrs.evolve(base, free_vars=(2,)),
    }
    same_in_erlang = {}
    for field, other in variants.items():
        data = (b"\x83t\x00\x00\x00\x02" + term_to_binary(base)[1:] + b"a\x01"
                + term_to_binary(other)[1:] + b"a\x02")
        same_in_erlang[field] = erl.decode(data) is None
        assert (other == base) == same_in_erlang[field], field
        assert (MapKey(other) == MapKey(base)) == same_in_erlang[field], field
    assert not all(same_in_erlang.values()) and any(same_in_erlang.values())
