"""Tasks: one-off work in its own process, and a bounded parallel map.

Run it with ``python examples/task_stream.py``. It shows:

- ``Task.async_`` / ``Task.await_``: start a function in a linked process and
  wait for its result, with a timeout that leaves the task running;
- ``Task.async_stream``: map a function over items with at most
  ``max_concurrency`` tasks at once, results in input order, and a per-item
  timeout that kills only the slow task (``on_timeout="kill_task"``);
- ``TaskSupervisor.async_nolink``: a task that is only monitored, so its
  crash comes back as `TaskError` instead of taking the caller down.

Timings use short real sleeps; the whole program runs in well under a second.
"""

from __future__ import annotations

import logging

import trio

import otpy
from otpy import Task, TaskSupervisor

running = 0
peak = 0


async def square(x: int) -> int:
    """Square ``x`` after ``x`` hundredths of a second; count concurrent runs."""
    global running, peak
    running += 1
    peak = max(peak, running)
    try:
        await trio.sleep(x / 100)
        return x * x
    finally:
        running -= 1


async def parse(text: str) -> int:
    """Crash on input that is not a number."""
    return int(text)


async def main() -> None:
    """Run each kind of task and print what comes back."""
    task = Task.async_(square, 7)
    print("async_/await_ ->", await Task.await_(task, timeout=1.0))

    slow = Task.async_(square, 30)
    try:
        await Task.await_(slow, timeout=0.05)
    except otpy.Timeout:
        print("not ready after 50 ms; the task keeps running")
    print("a second await ->", await slow.result(timeout=1.0))

    results = [r async for r in Task.async_stream(range(1, 7), square, max_concurrency=3)]
    print("async_stream ->", results)
    print("at most", peak, "ran at once")

    items = [1, 50, 2]
    results = [
        r
        async for r in Task.async_stream(items, square, timeout=0.2, on_timeout="kill_task")
    ]
    print("with a 0.2 s timeout ->", results)

    sup = await TaskSupervisor.start_link()
    try:
        await Task.await_(await TaskSupervisor.async_nolink(sup, parse, "seven"))
    except otpy.TaskError as err:
        assert isinstance(err.reason, otpy.Crash)
        print("nolink task crashed:", type(err.reason.exception).__name__)
    print("the caller is fine:", otpy.is_alive(otpy.self()))


if __name__ == "__main__":
    logging.getLogger("otpy").setLevel(logging.CRITICAL)  # hide the crash report
    otpy.run(main)
