"""Distribution benchmark: Python<->Python, Python<->erl and erl<->erl on loopback.

For each pair (sender / caller -> receiver / server), in one run: one-way
throughput of N small messages (``{msg, I}`` sent to a registered sink on the
other node, timed until the sink reports it has them all) and the round trip of
M sequential ``gen_server``-style calls (median and p99). The pairs: Python ->
Python, Python -> erl, erl -> Python (erl's ``gen_server:call`` to a Python
GenServer) and erl -> erl.

    python bench/dist.py            # N=100000, M=5000
    python bench/dist.py --n 20000 --m 2000

Every node is a separate OS process except the measuring Python node (this
process); all register with a private epmd on a free port. Set
``OTPY_PURE_PYTHON=1`` to measure the Python nodes without the C term decoder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

import otpy
from otpy.dist._etf import C_DECODER

HERE = Path(__file__).resolve().parent
COOKIE = "bench-cookie"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], env: dict[str, str], marker: str = "@@READY") -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(marker.encode()):
            return proc
    raise RuntimeError(f"{cmd[0]} did not start")


async def measure(target: str, n: int, m: int) -> dict[str, float]:
    assert await otpy.connect(target), f"cannot connect to {target}"
    me = otpy.self()
    sink = ("sink", target)
    otpy.send(sink, (otpy.Atom("expect"), n, me))
    t0 = time.perf_counter()
    msg = otpy.Atom("msg")
    for i in range(n):
        otpy.send(sink, (msg, i))
        if i % 2000 == 0:
            await trio.sleep(0)  # let the writer flush while we produce
    done = await otpy.receive(lambda x: type(x) is tuple and x[0] == otpy.Atom("done"),
                              timeout=120)
    t1 = time.perf_counter()
    assert done[1] == n
    echo = ("echo", target)
    ping = otpy.Atom("ping")
    for _ in range(200):
        await otpy.call(echo, ping)
    samples = []
    for _ in range(m):
        s = time.perf_counter_ns()
        await otpy.call(echo, ping)
        samples.append(time.perf_counter_ns() - s)
    samples.sort()
    return {
        "msgs_per_s": n / (t1 - t0),
        "call_median_us": statistics.median(samples) / 1000,
        "call_p99_us": samples[min(len(samples) - 1, int(0.99 * len(samples)))] / 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--m", type=int, default=5_000)
    args = ap.parse_args()
    logging.getLogger("otpy").setLevel(logging.ERROR)
    port = free_port()
    epmd = subprocess.Popen(["epmd", "-port", str(port)])
    env = dict(os.environ, ERL_EPMD_PORT=str(port))
    ebin = tempfile.mkdtemp(prefix="otpy-bench-")
    subprocess.run(["erlc", "-o", ebin, str(HERE / "dist_peer.erl")], check=True)
    procs = []
    results: dict[str, dict[str, float]] = {}
    try:
        time.sleep(0.3)
        py_b = "py_b@localhost"
        procs.append(start([sys.executable, str(HERE / "_dist_peer.py"), py_b, COOKIE,
                            str(port)], env))
        erl_b = "erl_b@localhost"
        procs.append(start(["erl", "-noshell", "-sname", erl_b, "-setcookie", COOKIE, "-pa",
                            ebin, "-s", "dist_peer", "serve"], env))

        async def run_python() -> None:
            results["Python -> Python"] = await measure(py_b, args.n, args.m)
            results["Python -> erl"] = await measure(erl_b, args.n, args.m)

        otpy.run(run_python, node="py_a@localhost", cookie=COOKIE, epmd_port=port)

        def erl_bench(target: str) -> dict[str, float]:
            out = subprocess.run(
                ["erl", "-noshell", "-sname", "erl_a@localhost", "-setcookie", COOKIE, "-pa",
                 ebin, "-eval", f"dist_peer:bench('{target}', {args.n}, {args.m}), halt()."],
                env=env, capture_output=True, text=True, timeout=300)
            line = next(ln for ln in out.stdout.splitlines() if ln.startswith("@@RESULT"))
            return json.loads(line.removeprefix("@@RESULT "))  # type: ignore[no-any-return]

        results["erl -> Python"] = erl_bench(py_b)
        results["erl -> erl"] = erl_bench(erl_b)
    finally:
        for p in procs:
            p.kill()
        epmd.kill()
    base = results["erl -> erl"]
    print(f"\nDistribution on loopback, N={args.n} messages, M={args.m} calls "
          f"(python {sys.version.split()[0]}, "
          f"{'C' if C_DECODER else 'pure-Python'} term decoder)\n")
    print("| pair | msgs/s (one-way) | vs erl<->erl | call RTT median us | p99 us "
          "| median vs erl<->erl |")
    print("|---|---|---|---|---|---|")
    for pair, r in results.items():
        print(f"| {pair} | {r['msgs_per_s']:,.0f} | {r['msgs_per_s'] / base['msgs_per_s']:.2f}x "
              f"| {r['call_median_us']:.1f} | {r['call_p99_us']:.1f} "
              f"| {r['call_median_us'] / base['call_median_us']:.2f}x |")
    print("\nTargets (Python <-> Python): >= 50,000 msgs/s, median call RTT <= 150 us")
    json.dump(results, sys.stderr)


if __name__ == "__main__":
    main()

