"""The limits and checks of the distribution layer, one by one (sans-IO where possible).

The end-to-end attacks are in test_dist_attacks.py; these pin the rules down:
the rpc allow-list syntax, the bounded rendering of peer data, the handshake
message cap, the atom cap and the options that configure them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from _dist_erl import Epmd, free_port, unique

import otpy
from otpy import Atom, ImproperList
from otpy._terms import MapKey
from otpy.dist import _etf
from otpy.dist._epmd_io import EpmdUnavailable
from otpy.dist._etf import AtomLimitError, binary_to_term, term_to_binary
from otpy.dist._handshake import (
    MAX_HANDSHAKE_MESSAGE,
    Acceptor,
    HandshakeProtocolError,
    Initiator,
)
from otpy.dist._show import show, show_bytes, show_name
from otpy.dist.rpc import check_allow_list, resolve


@pytest.fixture(scope="module")
def epmd() -> Iterator[Epmd]:
    server = Epmd()
    yield server
    server.stop()


# ------------------------------------------------------------- rpc allow-list


@pytest.mark.parametrize("entry", ["m:_private", "m:__init__", "m:__setattr__", "m:a.b",
                                   "m", ":f", "m:", "m:f:g", "a b:f", "m:*x"])
def test_allow_list_entries_never_name_private_names_or_dunders(entry: str) -> None:
    with pytest.raises(ValueError, match="rpc_allow"):
        check_allow_list([entry])


def test_allow_list_is_a_list() -> None:
    with pytest.raises(ValueError, match="not one string"):
        check_allow_list("json:dumps")
    assert check_allow_list(["json:dumps", "operator:*"]) == ("json:dumps", "operator:*")


def test_a_star_reaches_the_modules_exports_only() -> None:
    import _rpc_targets

    allow = check_allow_list(["_rpc_targets:*"])
    assert resolve(allow, "_rpc_targets", "public") is _rpc_targets.public
    assert resolve(allow, "_rpc_targets", "Klass") is _rpc_targets.Klass  # in __all__
    for name in ("_private", "NOT_CALLABLE", "__getattr__", "__dict__", "anything_hooked",
                 "nested.name"):
        assert resolve(allow, "_rpc_targets", name) is None, name
    # getcwd is in __all__ (the author's word), so '*' reaches it; without __all__ it
    # would not be (imported), see the next test.
    assert resolve(allow, "_rpc_targets", "getcwd") is not None


def test_a_star_without_all_reaches_the_modules_own_functions_only() -> None:
    allow = check_allow_list(["_py_node:*"])
    assert resolve(allow, "_py_node", "add") is not None
    for name in ("Any", "sys", "trio", "otpy", "Echo", "_events", "__name__"):
        assert resolve(allow, "_py_node", name) is None, name


def test_an_exact_entry_reaches_that_public_callable_only() -> None:
    allow = check_allow_list(["_rpc_targets:Klass", "json:dumps"])
    assert resolve(allow, "_rpc_targets", "Klass") is not None
    assert resolve(allow, "_rpc_targets", "public") is None
    assert resolve(allow, "json", "loads") is None
    assert resolve(allow, "os", "system") is None  # not listed: not even imported


# -------------------------------------------------------------------- show


def test_show_bounds_escapes_and_never_raises() -> None:
    class Bad:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    huge = 7 ** 100_000
    for value in (huge, (huge, [huge]), ImproperList([huge], huge), MapKey([huge]), Bad(),
                  b"x" * 10_000_000, "y" * 10_000_000, [list(range(1000))] * 1000,
                  {Atom("a\nb"): "\x1b[31m"}):
        text = show(value)
        assert len(text) < 300 and "\n" not in text and "\x1b" not in text
    assert show(huge) == f"<int of {huge.bit_length()} bits>"
    assert show_bytes(b"p" * 5000) == f"{b'p' * 64!r}... (5000 bytes)"
    assert show_name("node@host") == "node@host"
    assert show_name("evil\n@host\x1b[2K") == repr("evil\n@host\x1b[2K")
    assert len(show_name("n" * 300 + "@h")) < 120


# ---------------------------------------------------------------- handshake


@pytest.mark.parametrize("header", [2, 4])
def test_a_handshake_message_over_the_cap_is_refused_from_its_length(header: int) -> None:
    size = min(MAX_HANDSHAKE_MESSAGE + 1, (1 << (8 * header)) - 1)
    acceptor = Acceptor("b@host", "cookie", creation=1, header=header)
    prefix = size.to_bytes(header, "big")
    if size <= MAX_HANDSHAKE_MESSAGE:  # a 2-byte length cannot exceed 65535: within the cap
        assert acceptor.receive_data(prefix + b"n") == []
        return
    with pytest.raises(HandshakeProtocolError, match=f"handshake message of {size} bytes"):
        acceptor.receive_data(prefix)  # refused before any of the message arrives
    initiator = Initiator("a@host", "b@host", "cookie", creation=1, header=header)
    with pytest.raises(HandshakeProtocolError, match="announced"):
        initiator.receive_data(struct.pack(">I", 1 << 30))


def test_a_node_name_over_255_characters_is_refused() -> None:
    name = ("n" * 300 + "@host").encode()
    acceptor = Acceptor("b@host", "cookie", creation=1)
    packet = struct.pack(">cQIH", b"N", 0xFFFFFFFF, 1, len(name)) + name
    with pytest.raises(HandshakeProtocolError, match="node name of 305 characters"):
        acceptor.receive_data(struct.pack(">H", len(packet)) + packet)


# -------------------------------------------------------------------- atoms


@pytest.fixture
def atom_cap() -> Iterator[None]:
    before = _etf.max_atoms()
    yield
    _etf.set_max_atoms(before)


def test_the_atom_cap_refuses_new_atoms_only(atom_cap: None) -> None:
    assert _etf.max_atoms() == _etf.DEFAULT_MAX_ATOMS == 1_048_576
    known = term_to_binary(Atom("ok"))
    name = f"fresh_{unique('x')}".encode()
    fresh = b"\x83w" + bytes((len(name),)) + name  # an atom that does not exist yet
    _etf.set_max_atoms(len(Atom._table))
    assert binary_to_term(known) == Atom("ok")
    with pytest.raises(AtomLimitError, match="the atom table is full"):
        binary_to_term(fresh)
    assert Atom.lookup(name.decode()) is None
    _etf.set_max_atoms(len(Atom._table) + 1)
    assert binary_to_term(fresh) == Atom(name.decode())
    with pytest.raises(ValueError, match="max_atoms"):
        _etf.set_max_atoms(0)


async def test_node_options_are_checked(epmd: Epmd, atom_cap: None) -> None:
    name = f"{unique('opt')}@localhost"
    for option, value, message in (("busy_limit", 0, "busy_limit"),
                                   ("max_queue", -1, "max_queue"),
                                   ("epmd", "maybe", "epmd must be one of"),
                                   ("rpc_allow", ["m:_x"], "rpc_allow")):
        with pytest.raises(ValueError, match=message):
            async with otpy.open_node(node=name, cookie="c", epmd_port=epmd.port,
                                      **{option: value}):
                pass  # pragma: no cover
    async with otpy.open_node(node=name, cookie="c", epmd_port=epmd.port, max_atoms=2_000_000):
        assert _etf.max_atoms() == 2_000_000


async def test_epmd_none_starts_no_epmd() -> None:
    port = free_port()
    with pytest.raises(EpmdUnavailable, match="epmd='none'"):
        async with otpy.open_node(node=f"{unique('e')}@localhost", cookie="c", epmd_port=port,
                                  epmd="none"):
            pass  # pragma: no cover


async def test_epmd_embedded_stops_with_its_node() -> None:
    import trio

    port = free_port()
    async with otpy.open_node(node=f"{unique('e')}@localhost", cookie="c", epmd_port=port,
                              epmd="embedded"):
        (await trio.open_tcp_stream("127.0.0.1", port)).socket.close()
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", port)
