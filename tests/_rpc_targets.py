"""A module an rpc allow-list names in tests (``_rpc_targets:*``): what it reaches."""

from __future__ import annotations

from os import getcwd  # imported: never reached by ``_rpc_targets:*``
from typing import Any

NOT_CALLABLE = 42


def public(x: int) -> int:
    return x + 1


def _private() -> str:
    return "private"


class Klass:
    """A class: not a function, so not reached by ``*``."""


def __getattr__(name: str) -> Any:  # a module-level hook: never consulted by rpc
    return lambda *a: f"hooked {name}"


__all__ = ["Klass", "getcwd", "public"]
