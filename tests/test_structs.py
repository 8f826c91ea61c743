"""Typed values across nodes: registered classes as Elixir-style struct maps.

Round trips through both decoders (C and Python), what an unknown or refused
struct becomes, the path named by an encoding error, and — with a real `erl`
— the map a BEAM node sees (docs/term-mapping.md, "Typed values").
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from _dist_erl import Epmd, ErlNode, unique
from hypothesis import given, settings
from hypothesis import strategies as st

import otpy
from otpy import Atom
from otpy.dist import _etf
from otpy.dist._control import reason_to_term, term_to_reason
from otpy.dist._etf import binary_to_term, term_to_binary
from otpy.dist._structs import STRUCT, registered_structs


@otpy.register_struct(name="tests.Point")
@attrs.define
class Point:
    x: int
    label: str = ""
    tags: list[Any] = attrs.field(factory=list)
    inner: Any = None


@otpy.register_struct(name="tests.renamed")
@attrs.frozen
class Renamed:
    value: Any


def both(term: Any) -> list[Any]:
    """``term`` encoded and decoded by the Python decoder and by the one `decode_at` uses."""
    data = term_to_binary(term)
    python = binary_to_term(data)
    dist, end = _etf.decode_at(data, 1)
    assert end == len(data)
    return [python, dist]


def test_the_c_decoder_is_the_one_checked() -> None:
    assert _etf.C_DECODER  # built by the bootstrap; the suite checks both paths


def crash_of(exc: BaseException) -> otpy.Crash:
    try:
        raise exc
    except BaseException as raised:
        return otpy.Crash(raised)


REF = otpy.Ref.make(Atom("a@host"), 1)
PID = otpy.Pid(Atom("a@host"), 7, 0, 1)

OTPY_VALUES = [
    otpy.Normal(), otpy.Shutdown(), otpy.Shutdown(("why", 1)), otpy.Kill(), otpy.Killed(),
    otpy.NoProc(), otpy.NoConnection("b@host"), otpy.CallingSelf(), otpy.Timeout(),
    otpy.TermReason((Atom("bad"), [1, 2])), otpy.Unencodable("a set at term[1]"),
    otpy.Down(REF, PID, otpy.Killed()), otpy.Exit(PID, otpy.Shutdown("x")),
    otpy.NodeDown("b@host"), otpy.ChildInfo("w1", otpy.RESTARTING, "worker", ["W"]),
    otpy.ChildInfo("w2", PID, "supervisor", []),
]


@pytest.mark.parametrize("value", OTPY_VALUES, ids=lambda v: type(v).__name__)
def test_otpys_types_round_trip(value: Any) -> None:
    for decoded in both(("msg", value)):
        assert decoded == ("msg", value)
        assert type(decoded[1]) is type(value)


def test_a_crash_crosses_as_type_message_and_traceback() -> None:
    def failing() -> None:
        raise ValueError("boom at the source")

    try:
        failing()
    except ValueError as exc:
        crash = otpy.Crash(exc)
    for decoded in both(otpy.Down(REF, PID, crash)):
        reason = decoded.reason
        assert isinstance(reason, otpy.Crash)
        remote = reason.exception
        assert isinstance(remote, otpy.RemoteError)
        assert remote.type_name == "ValueError"
        assert remote.message == "boom at the source"
        assert "in failing" in remote.remote_traceback
        # and once more across: a RemoteError keeps what it carries
        again = both(decoded)[1].reason.exception
        assert (again.type_name, again.message, again.remote_traceback) == \
            (remote.type_name, remote.message, remote.remote_traceback)


def test_a_crash_whose_str_raises_still_crosses() -> None:
    class Nasty(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    for decoded in both(crash_of(Nasty())):
        assert decoded.exception.type_name == "Nasty"
        assert "unprintable" in decoded.exception.message


# -------------------------------------------------------------- user classes

SCALARS = (st.integers() | st.text(max_size=20) | st.none() | st.booleans()
           | st.floats(allow_nan=False, allow_infinity=False))
TERMS = st.recursive(
    SCALARS,
    lambda inner: (st.lists(inner, max_size=4) | st.tuples(inner, inner)
                   | st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
POINTS = st.recursive(
    st.builds(Point, st.integers(), st.text(max_size=10), st.lists(TERMS, max_size=3)),
    lambda inner: st.builds(Point, st.integers(), st.text(max_size=10),
                            st.lists(TERMS | inner, max_size=3), inner | st.none()),
    max_leaves=4,
)


@settings(max_examples=200, deadline=None)
@given(POINTS, TERMS)
def test_registered_user_classes_round_trip(point: Point, other: Any) -> None:
    value = {"point": point, "renamed": Renamed(other), "list": [point, other]}
    for decoded in both(value):
        assert decoded == value
        assert type(decoded["point"]) is Point
        assert type(decoded["renamed"]) is Renamed


def test_the_wire_shape_is_elixirs_struct_convention() -> None:
    raw = binary_to_term(term_to_binary(Point(1, "p")))
    assert type(raw) is Point  # rebuilt ...
    # ... from exactly this map (what any other node sees):
    data = term_to_binary({STRUCT: Atom("tests.Point"), Atom("x"): 1,
                           Atom("label"): "p", Atom("tags"): [], Atom("inner"): None})
    assert binary_to_term(data) == Point(1, "p")
    assert term_to_binary(Point(1, "p")) == data


def test_unknown_or_refused_structs_stay_maps() -> None:
    unknown = {STRUCT: Atom("os.system"), Atom("command"): "id"}
    missing = {STRUCT: Atom("tests.Point"), Atom("label"): "no x"}
    not_an_atom = {STRUCT: "tests.Point", Atom("x"): 1}
    for term in (unknown, missing, not_an_atom):
        for decoded in both(term):
            assert decoded == term
            assert type(decoded) is dict


def test_only_registered_classes_are_built() -> None:
    names = registered_structs()
    assert names["otpy.Down"] is otpy.Down
    assert "os.system" not in names
    with pytest.raises(TypeError, match="not an attrs class"):
        otpy.register_struct(object)
    with pytest.raises(TypeError, match="taken"):
        otpy.register_struct(Point, name="otpy.Down")


def test_an_encoding_error_names_the_bad_part() -> None:
    with pytest.raises(otpy.ETFEncodeError) as info:
        term_to_binary(("msg", [1, {"k": Point(1, inner={1, 2})}]))
    assert info.value.path == "term[1][1]['k'].inner"
    assert "set" in str(info.value) and "term[1][1]['k'].inner" in str(info.value)


def test_registered_reasons_cross_exit_signals_as_structs() -> None:
    @otpy.register_reason
    @attrs.frozen
    class Evicted(otpy.ExitReason):
        tenant: str

    wire = reason_to_term(Evicted("acme"))
    assert wire == Evicted("acme")  # encoded as its struct map
    decoded = binary_to_term(term_to_binary(wire))
    assert term_to_reason(decoded) == Evicted("acme")
    # the older tuple form is still understood
    old = (Atom("otpy_reason"), f"{Evicted.__module__}.{Evicted.__qualname__}",
           {"tenant": "acme"})
    assert term_to_reason(old) == Evicted("acme")


# -------------------------------------------------------------------- erl


@pytest.fixture(scope="module")
def erl() -> Iterator[ErlNode]:
    epmd = Epmd()
    node = ErlNode(unique("structs"), "structs-cookie", epmd.port)
    yield node
    node.stop()
    epmd.stop()


def in_erl(term: Any) -> str:
    return "<<" + ",".join(str(b) for b in term_to_binary(term)) + ">>"


def test_erl_sees_the_documented_maps(erl: ErlNode) -> None:
    crash = crash_of(KeyError("k"))
    down = otpy.Down(REF, PID, crash)
    expr = (
        f"case binary_to_term({in_erl(down)}) of "
        "#{'__struct__' := 'otpy.Down', ref := R, pid := P, "
        "reason := #{'__struct__' := 'otpy.Crash', type := <<\"KeyError\">>, "
        "message := <<\"'k'\">>, traceback := TB}} "
        "when is_reference(R), is_pid(P), is_binary(TB) -> match; Other -> Other end."
    )
    assert erl.eval(expr) == "match"
    expr = (f"case binary_to_term({in_erl(Point(3, 'p', [Atom('a')]))}) of "
            "#{'__struct__' := 'tests.Point', x := 3, label := <<\"p\">>, "
            "tags := [a], inner := undefined} -> match; Other -> Other end.")
    assert erl.eval(expr) == "match"
    expr = f"maps:size(binary_to_term({in_erl(otpy.Normal())}))."
    assert erl.eval(expr) == "1"  # #{'__struct__' => 'otpy.Normal'}


def test_erls_struct_maps_decode_into_our_classes(erl: ErlNode) -> None:
    text = erl.eval(
        "binary_to_list(term_to_binary({#{'__struct__' => 'otpy.Down', ref => make_ref(), "
        "pid => self(), reason => #{'__struct__' => 'otpy.Shutdown', detail => bye}}, "
        "#{'__struct__' => 'Elixir.URI', host => <<\"x\">>}}))."
    )
    data = bytes(int(b) for b in text.strip("[]").split(","))
    for down, uri in both(binary_to_term(data)):
        assert isinstance(down, otpy.Down) and down.reason == otpy.Shutdown(Atom("bye"))
        assert uri == {STRUCT: Atom("Elixir.URI"), Atom("host"): "x"}  # not ours: a map


def test_tracebacks_in_structs_are_text_not_frames() -> None:
    crash = crash_of(RuntimeError("x"))
    fields = both(crash)[0]
    assert isinstance(fields.exception.remote_traceback, str)
    assert "RuntimeError: x" in fields.exception.remote_traceback
    assert traceback.format_exception(crash.exception)[-1].strip() == "RuntimeError: x"
