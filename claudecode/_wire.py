"""claudecode's types on the wire: messages, blocks and answers cross nodes typed.

Every public attrs class of the modules whose values travel between a
session and its callers — messages and content blocks (`claudecode._messages`),
history records (`claudecode._history`), typed control answers
(`claudecode._controls`), a CLI budget's `BudgetInfo` — is registered with
`otpy.register_struct` under ``claudecode.<Class>``, as are `Collected`,
`Allow` and `Deny`; so are the dict-based `Usage` records (as their items). A
stream consumed on another node gets the same typed messages it would get
locally; a BEAM node sees each as a map with a ``'__struct__'`` key
(docs/term-mapping.md). claudecode's exit reasons (`CLIExited`,
`LineTooLong`, `AdapterFailed`, `CLISlotTimeout`) are registered by
`otpy.register_reason`.
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

import attrs

import otpy
from claudecode import _budget, _controls, _history, _messages, _usage
from claudecode._hooks import Allow, Deny
from claudecode._stream import Collected

__all__ = ["WIRE_TYPES"]

_MODULES: tuple[ModuleType, ...] = (_messages, _history, _controls, _usage, _budget)


def _public_classes(module: ModuleType) -> list[type]:
    return [cls for name, cls in inspect.getmembers(module, inspect.isclass)
            if cls.__module__ == module.__name__ and not name.startswith("_")]


def _register() -> dict[str, type]:
    names: dict[str, type] = {}
    classes = [cls for m in _MODULES for cls in _public_classes(m)]
    for cls in [*classes, Collected, Allow, Deny]:
        name = f"claudecode.{cls.__name__}"
        if attrs.has(cls):
            otpy.register_struct(cls, name=name)
        elif issubclass(cls, dict):  # Usage, ModelUsage: typed views of a dict
            otpy.register_struct(cls, name=name, to_fields=dict, from_fields=cls)
        else:
            continue
        names[name] = cls
    return names


#: The registered struct names and their classes.
WIRE_TYPES: dict[str, Any] = _register()
