"""Calls from many trio tasks of one process vs from as many processes, same run.

A web server handles each request in its own trio task of one otpy process;
the alternative is one otpy process per request. This measures what the
first costs against the second: 10,000 `otpy.call`s to one echo GenServer,
issued by 100 concurrent callers that are either tasks of one process (a
nursery inside it) or 100 processes. Rounds alternate the two shapes; the
ratio is taken per round.

    python bench/task_calls.py                # 5 rounds
    python bench/task_calls.py --rounds 9 --calls 20000 --callers 100
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import trio

import otpy


class Echo(otpy.GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        return request


async def from_tasks(server: otpy.Pid, callers: int, per_caller: int) -> float:
    async def caller() -> None:
        for i in range(per_caller):
            await otpy.call(server, i)

    t0 = time.perf_counter()
    async with trio.open_nursery() as n:
        for _ in range(callers):
            n.start_soon(caller)
    return time.perf_counter() - t0


async def from_processes(server: otpy.Pid, callers: int, per_caller: int) -> float:
    async def caller() -> None:
        for i in range(per_caller):
            await otpy.call(server, i)

    t0 = time.perf_counter()
    refs = {otpy.spawn_monitor(caller)[1] for _ in range(callers)}
    while refs:
        down = await otpy.receive(otpy.Down)
        assert down.reason == otpy.Normal(), down.reason
        refs.discard(down.ref)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--callers", type=int, default=100)
    args = ap.parse_args()
    per_caller = args.calls // args.callers
    calls = per_caller * args.callers

    async def run() -> list[tuple[float, float]]:
        server = await Echo.start_link()
        await from_tasks(server, args.callers, per_caller)  # warm-up
        await from_processes(server, args.callers, per_caller)
        rounds = []
        for r in range(args.rounds):
            if r % 2:
                procs = await from_processes(server, args.callers, per_caller)
                tasks = await from_tasks(server, args.callers, per_caller)
            else:
                tasks = await from_tasks(server, args.callers, per_caller)
                procs = await from_processes(server, args.callers, per_caller)
            rounds.append((calls / tasks, calls / procs))
        return rounds

    rounds = otpy.run(run)
    tasks = statistics.median(t for t, _ in rounds)
    procs = statistics.median(p for _, p in rounds)
    ratio = statistics.median(t / p for t, p in rounds)
    print(f"python {sys.version.split()[0]}, trio {trio.__version__}, {calls:,} calls by "
          f"{args.callers} callers, median of {args.rounds} rounds")
    print("| callers | calls/s |")
    print("|---|---|")
    print(f"| {args.callers} tasks of one process | {tasks:,.0f} |")
    print(f"| {args.callers} processes | {procs:,.0f} |")
    print(f"| ratio tasks / processes (per round, median) | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
