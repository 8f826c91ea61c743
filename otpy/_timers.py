"""Receive timeouts without a cancel scope per wait: one timer task per node.

Timed waits (``receive(timeout=...)``, calls) register in millisecond buckets;
one trio task sleeps until the earliest bucket and expires the waits still
registered there. Adding and cancelling are O(1) dict operations, and the trio
deadline is only touched when a new bucket is earlier than every existing one.
Because the timer task sleeps on a trio deadline, `trio.testing.MockClock`
drives it like any other timeout.

This module knows nothing of processes: what it holds are `Expiring` objects
(the waits of `otpy._process`), each told once, through ``expire()``, that its
time is up.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Protocol

import trio

__all__ = ["Expiring", "Handle", "Timers"]

_TICKS_PER_SECOND = 1000

#: What `Timers.add` returns: ``(tick, token)``.
Handle = tuple[int, int]


class Expiring(Protocol):
    """Something with a deadline: a parked wait."""

    def expire(self) -> None:
        """The deadline passed (called at most once, from the timer task)."""


class Timers:
    """Millisecond timer buckets for one node."""

    __slots__ = ("_buckets", "_heap", "_scope", "_tokens")

    def __init__(self) -> None:
        self._buckets: dict[int, dict[int, Expiring]] = {}
        self._heap: list[int] = []
        self._scope: trio.CancelScope | None = None
        self._tokens = itertools.count(1)

    def add(self, item: Expiring, timeout: float) -> Handle:
        """Arm a timer that calls ``item.expire()`` after ``timeout`` seconds.

        Args:
            item: what expires.
            timeout: seconds.

        Returns:
            A handle for `cancel`.
        """
        tick = math.ceil((trio.current_time() + timeout) * _TICKS_PER_SECOND)
        token = next(self._tokens)
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = {}
            heapq.heappush(self._heap, tick)
            scope = self._scope
            if scope is not None:
                when = tick / _TICKS_PER_SECOND
                if when < scope.deadline:
                    scope.deadline = when
        bucket[token] = item
        return (tick, token)

    def cancel(self, handle: Handle) -> None:
        """Disarm a timer (the wait ended some other way). Idempotent."""
        tick, token = handle
        bucket = self._buckets.get(tick)
        if bucket is not None:
            # The (possibly empty) bucket stays until its tick: deleting it
            # would make the next wait in the same millisecond push the tick
            # onto the heap again.
            bucket.pop(token, None)

    async def run(self) -> None:
        """The timer task: fire buckets as their time comes. Runs until cancelled."""
        heap = self._heap
        buckets = self._buckets
        while True:
            while heap and not buckets.get(heap[0]):
                buckets.pop(heapq.heappop(heap), None)
            deadline = heap[0] / _TICKS_PER_SECOND if heap else math.inf
            with trio.CancelScope(deadline=deadline) as scope:
                self._scope = scope
                if heap and heap[0] / _TICKS_PER_SECOND < scope.deadline:
                    scope.deadline = heap[0] / _TICKS_PER_SECOND
                await trio.sleep_forever()
            self._scope = None
            # Compare as the deadline was set (tick / 1000 <= now): multiplying
            # the clock instead (now * 1000) can land a hair below the tick
            # (2.002 * 1000 == 2001.9999999999998) and the bucket would never fire.
            now = trio.current_time()
            while heap and heap[0] / _TICKS_PER_SECOND <= now:
                tick = heapq.heappop(heap)
                bucket = buckets.pop(tick, None)
                if not bucket:
                    continue
                for item in bucket.values():
                    item.expire()
