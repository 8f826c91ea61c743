"""claudecode's types on the wire: messages and blocks cross nodes typed.

Every attrs class of `claudecode._messages` (messages, content blocks, and
what they hold) is registered with `otpy.register_struct` under
``claudecode.<Class>``, as are `Collected`, `SessionInfo`, `Allow` and
`Deny`. A stream consumed on another node gets the same typed messages it
would get locally; a BEAM node sees each as a map with a ``'__struct__'`` key
(docs/term-mapping.md). claudecode's exit reasons (`CLIExited`,
`LineTooLong`, `AdapterFailed`) are registered by `otpy.register_reason`.
"""

from __future__ import annotations

import inspect
from typing import Any

import attrs

import otpy
from claudecode import _messages
from claudecode._history import SessionInfo
from claudecode._hooks import Allow, Deny
from claudecode._stream import Collected

__all__ = ["WIRE_TYPES"]


def _message_classes() -> list[type]:
    return [cls for _, cls in inspect.getmembers(_messages, inspect.isclass)
            if cls.__module__ == _messages.__name__ and attrs.has(cls)]


def _register() -> dict[str, type]:
    names: dict[str, type] = {}
    for cls in [*_message_classes(), Collected, SessionInfo, Allow, Deny]:
        name = f"claudecode.{cls.__name__}"
        otpy.register_struct(cls, name=name)
        names[name] = cls
    return names


#: The registered struct names and their classes.
WIRE_TYPES: dict[str, Any] = _register()
