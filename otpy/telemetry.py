"""Events from the runtime: attach handlers to named events (Erlang's ``telemetry``).

An event is a tuple of strings, e.g. ``("otpy", "supervisor", "restart")``,
emitted with two dicts: *measurements* (numbers) and *metadata* (who, what).
`attach` registers a plain function for a list of event names; a name that
is a prefix of an event (``("otpy", "supervisor")``) matches every event
under it. Handlers run synchronously, in the process and at the moment the
event happens, in the order they were attached; a handler that raises is
detached and logged, and never breaks the code that emitted the event.

Emitting costs one attribute read when nothing is attached: code that emits
writes ``if telemetry.active: telemetry.execute(...)``. The events otpy
emits are listed in ``docs/otpy/telemetry.md``.

GenServer call latency is opt-in and sampled: `sample_calls` turns on
``("otpy", "genserver", "call")`` for one call in every ``n``; until then a
call pays one attribute read (`timing_calls`) for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "Event",
    "Handler",
    "active",
    "attach",
    "call_sampling",
    "detach",
    "execute",
    "handlers",
    "sample_calls",
    "timing_calls",
]

logger = logging.getLogger("otpy.telemetry")

Event = tuple[str, ...]
Handler = Callable[[Event, Mapping[str, Any], Mapping[str, Any]], None]

#: True while at least one handler is attached (read it before building an event).
active = False

#: One `otpy.call` in this many is timed (``("otpy", "genserver", "call")``); 0: none.
call_sampling = 0
#: True while calls are sampled and a handler is attached (what `otpy.call` reads).
timing_calls = False
_calls_seen = 0

# handler id -> (event names, handler), in attach order
_attached: dict[Any, tuple[tuple[Event, ...], Handler]] = {}
# event -> the (id, handler) pairs that match it; rebuilt lazily after a change
_matching: dict[Event, tuple[tuple[Any, Handler], ...]] = {}


def attach(handler_id: Any, events: Iterable[Event], handler: Handler) -> None:
    """Call ``handler(event, measurements, metadata)`` for every event matching ``events``.

    Args:
        handler_id: a unique id for `detach` (any hashable value).
        events: event names; each is a tuple of strings, and matches every
            event it is a prefix of (``("otpy",)`` matches all of otpy's).
        handler: a plain (not async) function, called synchronously where
            the event happens. It must be quick and must not block.

    Raises:
        ValueError: ``handler_id`` is attached already, or an event name is
            not a non-empty tuple of strings.
    """
    global active
    names = tuple(tuple(e) for e in events)
    for name in names:
        if not name or not all(isinstance(part, str) for part in name):
            raise ValueError(f"an event name is a non-empty tuple of str, not {name!r}")
    if handler_id in _attached:
        raise ValueError(f"a telemetry handler with id {handler_id!r} is attached already")
    _attached[handler_id] = (names, handler)
    _matching.clear()
    active = True
    _update_timing()


def detach(handler_id: Any) -> bool:
    """Remove a handler.

    Args:
        handler_id: the id given to `attach`.

    Returns:
        True if it was attached.
    """
    global active
    found = _attached.pop(handler_id, None) is not None
    _matching.clear()
    active = bool(_attached)
    _update_timing()
    return found


def sample_calls(every: int) -> None:
    """Time one `otpy.call` in ``every`` and emit ``("otpy", "genserver", "call")`` for it.

    Off by default (``every=0``): a call then pays one attribute read. With
    ``every=1`` every call is timed (about 10 % of a local call's instructions with a
    trivial handler attached, see ``bench/README.md``); a larger ``every``
    divides that. Events are emitted only while a handler is attached.

    Args:
        every: the sampling period (``1``: every call; ``0``: off).

    Raises:
        ValueError: ``every`` is negative or not an int.
    """
    global call_sampling, _calls_seen
    if not isinstance(every, int) or isinstance(every, bool) or every < 0:
        raise ValueError(f"every is an int >= 0, not {every!r}")
    call_sampling = every
    _calls_seen = 0
    _update_timing()


def _update_timing() -> None:
    global timing_calls
    timing_calls = call_sampling > 0 and active


def sampled() -> bool:
    """Whether this call is one of the sampled ones (counts it); for `otpy.call`."""
    global _calls_seen
    _calls_seen += 1
    if _calls_seen >= call_sampling:
        _calls_seen = 0
        return True
    return False


def handlers(prefix: Event = ()) -> list[tuple[Any, tuple[Event, ...]]]:
    """The attached handlers (id and event names) listening to events under ``prefix``.

    Args:
        prefix: an event name prefix; ``()`` lists every handler.

    Returns:
        ``[(handler_id, event_names), ...]`` in attach order.
    """
    n = len(prefix)
    return [
        (hid, names)
        for hid, (names, _) in _attached.items()
        if any(name[:n] == prefix or prefix[: len(name)] == name for name in names)
    ]


def _lookup(event: Event) -> tuple[tuple[Any, Handler], ...]:
    found = tuple(
        (hid, fn)
        for hid, (names, fn) in _attached.items()
        if any(event[: len(name)] == name for name in names)
    )
    _matching[event] = found
    return found


def execute(event: Event, measurements: Mapping[str, Any], metadata: Mapping[str, Any]) -> None:
    """Emit an event: call every handler attached to it (or to a prefix of it).

    Args:
        event: the event name.
        measurements: numbers measured (e.g. ``{"duration": 0.2}``).
        metadata: what the event is about (pids, ids, reasons).
    """
    found = _matching.get(event)
    if found is None:
        found = _lookup(event)
    for hid, fn in found:
        try:
            fn(event, measurements, metadata)
        except Exception:
            if _attached.get(hid, (None, None))[1] is fn:
                detach(hid)
            logger.exception("telemetry handler %r failed on %r and was detached", hid, event)
