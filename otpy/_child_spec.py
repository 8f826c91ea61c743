"""Child specs: how a supervisor starts, restarts and stops one child.

Kept apart from the supervisors so that every behaviour can build a spec of
itself (``GenServer.child_spec``, ``Registry.child_spec``) without importing
the supervisor modules, which import the behaviours.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import attrs

__all__ = ["ChildSpec", "RestartType", "StartFn"]

RestartType = Literal["permanent", "transient", "temporary"]
StartFn = Callable[..., Awaitable[Any]]


def _norm_start(value: Any) -> tuple[StartFn, tuple[Any, ...], dict[str, Any]]:
    if callable(value):
        return (value, (), {})
    if isinstance(value, tuple) and len(value) in (2, 3) and callable(value[0]):
        fn = value[0]
        args = tuple(value[1])
        kwargs = dict(value[2]) if len(value) == 3 else {}
        return (fn, args, kwargs)
    raise TypeError(f"ChildSpec.start must be (async_fn, args, kwargs), not {value!r}")


def _check_shutdown(_: Any, attribute: Any, value: Any) -> None:
    if value in ("brutal_kill", "infinity"):
        return
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return
    raise ValueError(f"ChildSpec.shutdown must be seconds >= 0, 'brutal_kill' or 'infinity', "
                     f"not {value!r}")


def _check_modules(_: Any, attribute: Any, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, list) and all(isinstance(m, str) for m in value):
        return
    raise ValueError(f"ChildSpec.modules must be a list of str or None, not {value!r}")


@attrs.define(slots=True)
class ChildSpec:
    """How a supervisor starts, restarts and stops one child.

    Every field is checked when the spec is built and when it is changed:
    a bad value raises `ValueError` (`TypeError` for a malformed ``start``).

    Attributes:
        id: unique among the supervisor's children.
        start: ``(async_fn, args, kwargs)``; awaited inside the supervisor, it
            returns the child's pid, linked to the caller (or None / raises
            `Ignored` for "ignore").
        restart: "permanent" (always restarted), "transient" (unless it exits
            normal or shutdown), "temporary" (never).
        shutdown: seconds to wait after the `Shutdown` signal before killing,
            "brutal_kill", or "infinity" (the default for supervisors).
        type: "worker" or "supervisor".
        modules: informational, returned by `which_children`.
    """

    id: Any
    start: tuple[StartFn, tuple[Any, ...], dict[str, Any]] = attrs.field(converter=_norm_start)
    restart: RestartType = attrs.field(
        default="permanent",
        validator=attrs.validators.in_(("permanent", "transient", "temporary")),
    )
    shutdown: float | str | None = attrs.field(default=None, validator=attrs.validators.optional(
        _check_shutdown))
    type: Literal["worker", "supervisor"] = attrs.field(
        default="worker", validator=attrs.validators.in_(("worker", "supervisor"))
    )
    modules: list[str] | None = attrs.field(default=None, validator=_check_modules)

    def __attrs_post_init__(self) -> None:
        if self.shutdown is None:
            self.shutdown = "infinity" if self.type == "supervisor" else 5.0
