"""Typed values across nodes: registered classes as maps in Elixir's struct convention.

An instance of a registered class crosses as the map
``#{'__struct__' => 'module.Class', field => value, ...}`` — what an Elixir
struct is on the wire, so a BEAM peer reads it as a plain map and an Elixir
one pattern-matches it like any struct. On a Python node that registered the
same name, decoding builds the class again (`from_struct`, called by both
term decoders for a map whose keys include ``'__struct__'``).

Only registered classes are ever built: the peer names a registered *name*,
never a module to import or a constructor to call. otpy registers its exit
reasons and signal records here; claudecode its messages and content blocks;
a program registers its own with `register_struct`. An unknown name, or
fields the class refuses, leave the map as it came.

A `Crash` carries its exception as ``type`` / ``message`` / ``traceback``
text and comes back as a `Crash` of a `RemoteError` (exceptions are not
rebuilt). See docs/term-mapping.md, "Typed values".
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any, TypeVar, cast

import attrs

from otpy._reasons import (
    CallingSelf,
    Crash,
    Down,
    Exit,
    Kill,
    Killed,
    NoConnection,
    NodeDown,
    NoProc,
    Normal,
    Shutdown,
    TermReason,
    Timeout,
    Unencodable,
)
from otpy._genserver import CallFailed
from otpy._registry import Global, Via
from otpy._supervisor import RESTARTING, ChildInfo, Restarting
from otpy._supervisor import _Err as _SupervisorErr
from otpy._terms import Atom
from otpy.dist import _etf

__all__ = ["STRUCT", "StructType", "from_struct", "register_struct", "registered_structs"]

logger = logging.getLogger("otpy.dist")

T = TypeVar("T")

#: The key naming a map's struct.
STRUCT = Atom("__struct__")


@attrs.frozen
class StructType:
    """How one registered class crosses nodes."""

    cls: type
    name: str
    atom: Atom
    keys: tuple[tuple[str, Atom], ...]
    to_fields: Callable[[Any], dict[str, Any]] | None
    from_fields: Callable[[dict[str, Any]], Any]


_BY_NAME: dict[str, StructType] = {}
_BY_CLASS: dict[type, StructType] = {}


def _default_name(cls: type) -> str:
    """``module.Class`` with the module's private parts dropped
    (``claudecode._messages.TextBlock`` → ``claudecode.TextBlock``)."""
    parts = [p for p in cls.__module__.split(".") if not p.startswith("_")]
    return ".".join([*parts, cls.__qualname__])


def _attrs_from_fields(cls: type) -> Callable[[dict[str, Any]], Any]:
    params = [(f.name, f.alias) for f in attrs.fields(cls) if f.init]

    def build(fields: dict[str, Any]) -> Any:
        return cls(**{alias: fields[name] for name, alias in params if name in fields})

    return build


def register_struct(
    cls: type[T] | None = None,
    *,
    name: str | None = None,
    to_fields: Callable[[Any], dict[str, Any]] | None = None,
    from_fields: Callable[[dict[str, Any]], Any] | None = None,
) -> Any:
    """Let instances of ``cls`` cross nodes typed (usable as a class decorator).

    Args:
        cls: an attrs class, or any class with ``to_fields`` / ``from_fields``.
        name: the struct's name on the wire (default: ``module.Class``, the
            module path without its private parts). Nodes agree on names.
        to_fields: ``obj -> {field: value}`` (default: the attrs fields).
        from_fields: ``{field: value} -> obj`` (default: the attrs
            constructor, with the fields present).

    Returns:
        The class, unchanged (or a decorator when ``cls`` is omitted).

    Raises:
        TypeError: not an attrs class and no ``to_fields`` / ``from_fields``;
            or the name is taken by another class.
    """
    if cls is None:
        return lambda c: register_struct(c, name=name, to_fields=to_fields,
                                         from_fields=from_fields)
    if not isinstance(cls, type):
        raise TypeError(f"register_struct needs a class, not {cls!r}")
    if (to_fields is None or from_fields is None) and not attrs.has(cls):
        raise TypeError(f"{cls.__qualname__} is not an attrs class: give to_fields and "
                        "from_fields")
    struct_name = name or _default_name(cls)
    taken = _BY_NAME.get(struct_name)
    if taken is not None and taken.cls is not cls:
        raise TypeError(f"struct name {struct_name!r} is taken by {taken.cls.__qualname__}")
    keys = () if to_fields is not None else tuple(
        (f.name, Atom(f.name)) for f in attrs.fields(cast(Any, cls)))
    spec = StructType(cls, struct_name, Atom(struct_name), keys, to_fields,
                      from_fields or _attrs_from_fields(cls))
    _BY_NAME[struct_name] = spec
    _BY_CLASS[cls] = spec
    _etf.register_encoder(cls, _encoder(spec), _field_values(spec))
    return cls


def registered_structs() -> dict[str, type]:
    """The registered names and their classes."""
    return {name: spec.cls for name, spec in _BY_NAME.items()}


def _encoder(spec: StructType) -> Callable[[Any, bytearray], None]:
    atom = spec.atom
    keys = spec.keys
    to_fields = spec.to_fields

    def encode(obj: Any, out: bytearray) -> None:
        term: dict[Any, Any] = {STRUCT: atom}
        if to_fields is None:
            for name, key in keys:
                term[key] = getattr(obj, name)
        else:
            for name, value in to_fields(obj).items():
                term[Atom(name)] = value
        _etf.encode_struct_map(term, out)

    return encode


def _field_values(spec: StructType) -> Callable[[Any], dict[str, Any]]:
    if spec.to_fields is not None:
        return spec.to_fields
    names = [name for name, _ in spec.keys]
    return lambda obj: {name: getattr(obj, name) for name in names}


def from_struct(term: dict[Any, Any]) -> Any:
    """The instance a decoded struct map stands for, or the map itself.

    Args:
        term: a decoded map with a ``'__struct__'`` key.

    Returns:
        An instance of the registered class, or ``term`` unchanged when the
        name is not registered or the class refuses the fields.
    """
    name = term.get(STRUCT)
    if type(name) is not Atom:
        return term
    spec = _BY_NAME.get(name.name)
    if spec is None:
        return term
    fields = {k.name: v for k, v in term.items() if type(k) is Atom and k is not STRUCT}
    try:
        return spec.from_fields(fields)
    except Exception as exc:  # the peer's fields: keep what came
        logger.debug("struct %s not rebuilt: %s: %s", spec.name, type(exc).__name__, exc)
        return term


# ----------------------------------------------------------- otpy's own types


def _crash_fields(crash: Crash) -> dict[str, Any]:
    from otpy.dist._control import RemoteError

    exc = crash.exception
    if isinstance(exc, RemoteError):
        return {"type": exc.type_name, "message": exc.message,
                "traceback": exc.remote_traceback}
    try:
        text = str(exc)
    except Exception:  # a __str__ that raises: say so, never fail the send
        text = f"<unprintable {type(exc).__name__}>"
    return {"type": type(exc).__name__, "message": text,
            "traceback": "".join(traceback.format_exception(exc))}


def _crash_from(fields: dict[str, Any]) -> Crash:
    from otpy.dist._control import RemoteError

    return Crash(RemoteError(str(fields["type"]), str(fields.get("message", "")),
                             str(fields.get("traceback", ""))))


for _cls in (Normal, Shutdown, Kill, Killed, NoProc, NoConnection, CallingSelf, TermReason,
             Unencodable, Down, Exit, NodeDown):
    register_struct(_cls, name=f"otpy.{_cls.__name__}")
register_struct(Timeout, name="otpy.Timeout", to_fields=lambda _: {},
                from_fields=lambda _: Timeout())
register_struct(ChildInfo, name="otpy.ChildInfo")
register_struct(Global, name="otpy.Global")
register_struct(Via, name="otpy.Via")
register_struct(CallFailed, name="otpy.CallFailed", to_fields=lambda f: {"reason": f.reason},
                from_fields=lambda f: CallFailed(f["reason"]))
register_struct(_SupervisorErr, name="otpy.SupervisorReply",
                to_fields=lambda e: {"reason": e.reason},
                from_fields=lambda f: _SupervisorErr(f["reason"]))
register_struct(Restarting, name="otpy.Restarting", to_fields=lambda _: {},
                from_fields=lambda _: RESTARTING)
register_struct(Crash, name="otpy.Crash", to_fields=cast(Any, _crash_fields),
                from_fields=_crash_from)
_etf.set_struct_hook(STRUCT, from_struct)
