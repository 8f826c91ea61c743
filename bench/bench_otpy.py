"""otpy on the five peer workloads of ../shared/peers (same sizes, same JSON line).

W1 spawn 20k processes that exit at once and wait for all; W2 ring of 1000
processes passing a token 100 times round; W3 20k sequential GenServer calls
(after 2k warm-up), each timed; W4 RSS per idle process (10k blocked in
receive); W5 2000 crash+restart cycles of a supervised GenServer.

Usage: python bench/bench_otpy.py {w1|w2|w3|w4|w4gs|w5}  -> one JSON line

With ``OTPY_BENCH_TELEMETRY=all`` a trivial handler is attached to every
telemetry event first (``=calls``: and every GenServer call is timed).
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
from typing import Any

import trio
from trio.testing import wait_all_tasks_blocked

import otpy

SPAWN_N = 20_000
RING_N, RING_M = 1_000, 100
CALLS, WARMUP = 20_000, 2_000
IDLE_N = 10_000
RESTARTS = 2_000

now = time.perf_counter


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def settle_rss() -> int:
    gc.collect()
    return rss_bytes()


def latency_stats(samples_ns: list[int]) -> dict[str, float]:
    s = sorted(samples_ns)
    return {
        "median_us": statistics.median(s) / 1000,
        "p99_us": s[min(len(s) - 1, int(0.99 * len(s)))] / 1000,
    }


async def w1() -> tuple[dict[str, Any], dict[str, Any]]:
    async def proc() -> None:
        pass

    me = otpy.self()
    t0 = now()
    for _ in range(SPAWN_N):
        otpy.spawn(proc)
    # wait for all: the node's process table holds only us again
    node = me._proc.node
    while len(node.procs) > 1:
        await trio.sleep(0)
    dt = now() - t0
    return {"n": SPAWN_N}, {"spawns_per_s": SPAWN_N / dt, "elapsed_s": dt}


async def w2() -> tuple[dict[str, Any], dict[str, Any]]:
    n, m = RING_N, RING_M
    me = otpy.self()

    async def node(nxt_box: list[otpy.Pid]) -> None:
        receive = otpy.receive
        send = otpy.send
        nxt = (await receive())
        while True:
            hops = await receive()
            if hops == 0:
                send(me, "done")
            else:
                send(nxt, hops - 1)

    pids = [otpy.spawn(node, None) for _ in range(n)]
    for i, pid in enumerate(pids):
        otpy.send(pid, pids[(i + 1) % n])
    await wait_all_tasks_blocked()
    t0 = now()
    otpy.send(pids[0], n * m)
    await otpy.receive()
    dt = now() - t0
    for pid in pids:
        otpy.exit(pid, otpy.Kill())
    return {"n": n, "m": m}, {"msgs_per_s": n * m / dt, "elapsed_s": dt}


class Ping(otpy.GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        return "pong"

    async def handle_cast(self, request: Any) -> None:
        if request == "crash":
            raise RuntimeError("crash")


async def w3() -> tuple[dict[str, Any], dict[str, Any]]:
    srv = await Ping.start_link()
    call = otpy.call
    for _ in range(WARMUP):
        assert await call(srv, "ping") == "pong"
    samples = []
    clock = time.perf_counter_ns
    t0 = now()
    for _ in range(CALLS):
        t = clock()
        await call(srv, "ping")
        samples.append(clock() - t)
    dt = now() - t0
    return {"calls": CALLS, "warmup": WARMUP}, {"calls_per_s": CALLS / dt,
                                                **latency_stats(samples)}


async def w4() -> tuple[dict[str, Any], dict[str, Any]]:
    async def idle() -> None:
        await otpy.receive()

    pids = []
    before = settle_rss()
    for _ in range(IDLE_N):
        pids.append(otpy.spawn(idle))
    await wait_all_tasks_blocked()
    after = settle_rss()
    for pid in pids:
        otpy.send(pid, "stop")
    return {"n": IDLE_N}, {"rss_bytes_per_proc": (after - before) / IDLE_N}


async def w4gs() -> tuple[dict[str, Any], dict[str, Any]]:
    pids = []
    await Ping.start()
    before = settle_rss()
    for _ in range(IDLE_N):
        pids.append(await Ping.start())
    await wait_all_tasks_blocked()
    after = settle_rss()
    return {"n": IDLE_N}, {"rss_bytes_per_proc": (after - before) / IDLE_N}


async def w5() -> tuple[dict[str, Any], dict[str, Any]]:
    await otpy.Supervisor.start_link(
        [Ping.child_spec(name="srv")], max_restarts=10**9, max_seconds=1
    )
    t0 = now()
    for _ in range(RESTARTS):
        old = otpy.whereis("srv")
        ref = otpy.monitor(old)
        otpy.cast(old, "crash")
        await otpy.receive(lambda m, ref=ref: type(m) is otpy.Down and m.ref == ref)
        while True:  # wait for the restarted child to answer
            try:
                assert await otpy.call("srv", "ping") == "pong"
                break
            except otpy.CallError:
                await trio.sleep(0)
    dt = now() - t0
    return {"restarts": RESTARTS}, {"restarts_per_s": RESTARTS / dt}


WORKLOADS = {"w1": w1, "w2": w2, "w3": w3, "w4": w4, "w4gs": w4gs, "w5": w5}


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in WORKLOADS:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(WORKLOADS)}}}")
    w = sys.argv[1]
    import logging

    logging.getLogger("otpy").setLevel(logging.CRITICAL + 1)
    variant = os.environ.get("OTPY_BENCH_TELEMETRY")
    if variant:
        from otpy import telemetry

        seen = [0]

        def handler(event: Any, measurements: Any, metadata: Any) -> None:
            seen[0] += 1

        telemetry.attach("bench", [("otpy",), ("claudecode",)], handler)
        if variant == "calls":
            telemetry.sample_calls(1)
    params, metrics = otpy.run(WORKLOADS[w], shutdown_timeout=0.0)
    print(json.dumps({"peer": "otpy", "workload": w, "params": params, "metrics": metrics,
                      "python": sys.version.split()[0], "trio": trio.__version__}), flush=True)


if __name__ == "__main__":
    main()
