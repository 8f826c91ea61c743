"""Peer data as text for logs and error messages: bounded, escaped, never raising.

Anything a peer sent (a term, a node name, raw bytes) may be huge, may hold
control characters that forge log lines or move a terminal's cursor, and may
hold integers whose ``repr`` raises (Python refuses to print ints of more
than 4300 digits). `show` and `show_name` turn such data into a short line
that always ends the same way: a prefix, then the full size.
"""

from __future__ import annotations

import reprlib
from typing import Any

from otpy._terms import Atom, BitBinary, Fun, ImproperList, MapKey

__all__ = ["show", "show_bytes", "show_name"]

#: Characters of a term's text shown before it is cut.
TERM_LIMIT = 200
#: Characters of a node name shown before it is cut (names have at most 255).
NAME_LIMIT = 80


class _Repr(reprlib.Repr):
    """`reprlib.Repr` that also bounds ints, bytes and otpy's term types."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.maxlevel = 4
        self.maxtuple = self.maxlist = self.maxdict = self.maxset = self.maxfrozenset = 8
        self.maxstring = self.maxother = min(limit, 80)
        self.maxlong = 40

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:
            return f"<int of {x.bit_length()} bits>"
        return repr(x)

    def repr_bytes(self, x: bytes, level: int) -> str:
        return show_bytes(x, self.maxstring)

    def repr_bytearray(self, x: bytearray, level: int) -> str:
        return show_bytes(bytes(x[: self.maxstring + 1]), self.maxstring, len(x))

    def repr_Atom(self, x: Atom, level: int) -> str:
        return f"Atom({show_name(x.name)})"

    def repr_ImproperList(self, x: ImproperList, level: int) -> str:
        if level <= 0:
            return "ImproperList(...)"
        return (f"ImproperList({self.repr1(x.items, level - 1)}, "
                f"{self.repr1(x.tail, level - 1)})")

    def repr_MapKey(self, x: MapKey, level: int) -> str:
        return f"MapKey({self.repr1(x.value, level - 1)})" if level > 0 else "MapKey(...)"

    def repr_BitBinary(self, x: BitBinary, level: int) -> str:
        return f"BitBinary({show_bytes(x.data, self.maxstring)}, {x.bits})"

    def repr_Fun(self, x: Fun, level: int) -> str:
        return f"Fun({show_name(x.module.name)}, {len(x.free_vars)} free variables)"

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            text = repr(x)
        except Exception as exc:
            return f"<{type(x).__name__} whose repr failed: {type(exc).__name__}>"
        return _cut(_escape(text), self.maxother)


def _escape(text: str) -> str:
    """``text`` with every non-printable character as a Python escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} chars)"


def show(value: Any, limit: int = TERM_LIMIT) -> str:
    """A bounded, escaped, one-line rendering of a (possibly hostile) term.

    Args:
        value: anything; typically a decoded term from a peer.
        limit: the most characters to show before cutting.

    Returns:
        The text (at most about ``limit`` characters plus a size note).
    """
    try:
        text = _Repr(limit).repr(value)
    except Exception as exc:  # a repr must never be the reason a log line fails
        text = f"<{type(value).__name__} that cannot be shown: {type(exc).__name__}>"
    return _cut(_escape(text), limit)


def show_bytes(data: bytes, limit: int = 64, size: int | None = None) -> str:
    """A prefix of ``data`` and its size, e.g. ``b'p\\x83h' (2048 bytes)``.

    Args:
        data: the bytes.
        limit: the most bytes to show.
        size: the full size, when ``data`` is already a prefix.

    Returns:
        The text.
    """
    n = len(data) if size is None else size
    if n <= limit:
        return repr(bytes(data))
    return f"{bytes(data[:limit])!r}... ({n} bytes)"


def show_name(name: str, limit: int = NAME_LIMIT) -> str:
    """A node, module or function name from a peer, safe to put in a log line.

    A name of printable characters is shown as it is; any other is shown as a
    Python string literal (newlines, escape sequences and the like escaped).
    Long names are cut.

    Args:
        name: the name.
        limit: the most characters to show.

    Returns:
        The text.
    """
    try:
        text = name if isinstance(name, str) and name.isprintable() and name.strip() == name \
            and name else repr(name)
    except Exception:
        text = "<unprintable name>"
    return _cut(text, limit)
