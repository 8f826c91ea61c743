"""Never-raising structuring of attrs classes from decoded JSON (the rarer wire shapes).

:func:`lenient` builds, once per class, a function that reads each attrs
field from a dict under the field's name (or ``metadata["wire"]``, for
camelCase keys) and keeps it only when it has the annotated type; anything
missing or ill-typed becomes the field's default. The dict itself goes into
the class's ``raw`` field, so nothing the CLI sent is lost. Used for the less
common message types and for control-request answers, where a newer CLI's
shape must degrade, never crash.

Field annotations are read as strings (``from __future__ import annotations``);
nested classes built with :func:`lenient` can be used as ``C``, ``C | None``
and ``list[C]``; other types are registered with :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable
from math import isfinite
from typing import Any, Final

import attrs

__all__ = ["lenient", "register"]

Reader = Callable[[Any], Any]


def _str(v: Any) -> str:
    return v if v.__class__ is str else ""


def _opt_str(v: Any) -> str | None:
    return v if v.__class__ is str else None


def _opt_int(v: Any) -> int | None:
    if v.__class__ is int:
        return v
    if v.__class__ is float and isfinite(v):
        return int(v)
    return None


def _opt_float(v: Any) -> float | None:
    return float(v) if v.__class__ in (int, float) else None


def _str_list(v: Any) -> list[str]:
    return [e for e in v if e.__class__ is str] if v.__class__ is list else []


def _dict_list(v: Any) -> list[dict[str, Any]]:
    return [e for e in v if e.__class__ is dict] if v.__class__ is list else []


_READERS: dict[str, Reader] = {
    "str": _str,
    "str | None": _opt_str,
    "int": lambda v: _opt_int(v) or 0,
    "int | None": _opt_int,
    "float | None": _opt_float,
    "bool": lambda v: v is True,
    "bool | None": lambda v: v if v.__class__ is bool else None,
    "dict[str, Any]": lambda v: v if v.__class__ is dict else {},
    "dict[str, Any] | None": lambda v: v if v.__class__ is dict else None,
    "list[str]": _str_list,
    "list[str] | None": lambda v: _str_list(v) if v.__class__ is list else None,
    "list[dict[str, Any]]": _dict_list,
    "list[dict[str, Any]] | None": lambda v: _dict_list(v) if v.__class__ is list else None,
    "list[Any]": lambda v: v if v.__class__ is list else [],
    "list[Any] | None": lambda v: v if v.__class__ is list else None,
    "Any": lambda v: v,
}

_MISSING: Final = object()


def register(annotation: str, reader: Reader) -> None:
    """Teach :func:`lenient` to read fields annotated ``annotation``.

    Args:
        annotation: the annotation as written (``"Usage | None"``).
        reader: turns a decoded value into the field's value, never raising.
    """
    _READERS[annotation] = reader


def lenient(cls: type[Any]) -> Callable[[dict[str, Any]], Any]:
    """A never-raising structure function for the attrs class ``cls``.

    Also registers ``cls`` so other classes can have fields of type ``cls``,
    ``cls | None`` and ``list[cls]``.

    Args:
        cls: an attrs class whose fields all have defaults and which has a
            ``raw`` field (or not, then the dict is not kept).

    Returns:
        ``dict -> cls`` instance.

    Raises:
        TypeError: a field's annotation has no reader (a programming error).
    """
    plan: list[tuple[str, str, Reader, Any, Any]] = []
    keeps_raw = False
    for field in attrs.fields(cls):
        if field.name == "raw":
            keeps_raw = True
            continue
        reader = _READERS.get(str(field.type))
        if reader is None:
            raise TypeError(f"{cls.__name__}.{field.name}: no reader for {field.type}")
        default = field.default
        empty: Any = None
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            empty = default.factory
            default = _MISSING
        plan.append((field.name, field.metadata.get("wire", field.name), reader, default, empty))

    def structure(d: dict[str, Any]) -> Any:
        get = d.get
        kwargs: dict[str, Any] = {}
        for name, wire, reader, default, empty in plan:
            value = get(wire)
            if value is None:
                if default is _MISSING:
                    kwargs[name] = empty()
                elif default is not None:
                    kwargs[name] = default
                continue
            kwargs[name] = reader(value)
        if keeps_raw:
            kwargs["raw"] = d
        return cls(**kwargs)

    name = cls.__name__
    _READERS[name] = lambda v: structure(v if v.__class__ is dict else {})
    _READERS[f"{name} | None"] = lambda v: structure(v) if v.__class__ is dict else None
    _READERS[f"list[{name}]"] = lambda v: (
        [structure(e) for e in v if e.__class__ is dict] if v.__class__ is list else [])
    return structure
