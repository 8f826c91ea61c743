"""Receive timeouts without a cancel scope per wait: one timer task per node.

Timed waits (``receive(timeout=...)``, calls) register in millisecond buckets;
one trio task sleeps until the earliest bucket and wakes the processes whose
wait is still the one that registered. Adding and cancelling are O(1) dict
operations, and the trio deadline is only touched when a new bucket is earlier
than every existing one. Because the timer task sleeps on a trio deadline,
`trio.testing.MockClock` drives it like any other timeout.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import TYPE_CHECKING

import trio
from trio.lowlevel import reschedule

if TYPE_CHECKING:
    from otpy._process import Process

__all__ = ["Timers"]

_TICKS_PER_SECOND = 1000


class Timers:
    """Millisecond timer buckets for one node."""

    __slots__ = ("_buckets", "_heap", "_scope", "_tokens")

    def __init__(self) -> None:
        self._buckets: dict[int, dict[int, Process]] = {}
        self._heap: list[int] = []
        self._scope: trio.CancelScope | None = None
        self._tokens = itertools.count(1)

    def add(self, proc: Process, timeout: float) -> tuple[int, int]:
        """Arm a timer that ends ``proc``'s current wait after ``timeout`` seconds.

        Args:
            proc: the waiting process (``proc.timer`` is set to the token).
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
        bucket[token] = proc
        proc.timer = token
        return (tick, token)

    def cancel(self, proc: Process, handle: tuple[int, int]) -> None:
        """Disarm a timer (the wait ended some other way)."""
        tick, token = handle
        proc.timer = 0
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
            now_tick = trio.current_time() * _TICKS_PER_SECOND
            while heap and heap[0] <= now_tick:
                tick = heapq.heappop(heap)
                bucket = buckets.pop(tick, None)
                if not bucket:
                    continue
                for token, proc in bucket.items():
                    if proc.timer == token:
                        # -1 = fired; a process that is runnable right now
                        # sees it before it parks again.
                        proc.timer = -1
                        if proc.waiting:
                            proc.waiting = False
                            reschedule(proc.task)  # type: ignore[arg-type]
