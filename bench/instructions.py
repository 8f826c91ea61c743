"""Instructions per message and per call, counted by callgrind: load-independent.

Wall-clock ratios move with whatever else the machine runs; instruction
counts do not. This runs two small workloads under ``valgrind
--tool=callgrind`` at two sizes and reports the difference divided by the
extra work, so start-up and imports cancel out (trio's scheduling shuffle and
Python's hash seed are fixed, so a checkout gives the same count every run):

- ring: 200 processes pass a token round (each hop a send, a wake-up, a
  receive);
- calls: sequential `otpy.call`s to an echo GenServer;
- spawn: processes that exit at once, each awaited through its monitor;
- restart: a supervised GenServer crashed and restarted, waiting each time
  until the new one answers.

Give one or more otpy checkouts to compare them in one run (default: this one).

    python bench/instructions.py
    python bench/instructions.py . /path/to/other/checkout
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

WORKLOAD = '''
import sys
import otpy
import trio

# trio shuffles each scheduling batch with its own random generator: seed it so
# that two runs of one checkout take the same path (trio 0.35: trio._core._run._r).
trio._core._run._r.seed(0)

class Echo(otpy.GenServer):
    async def handle_call(self, request, caller):
        return request

KIND, N = sys.argv[1], int(sys.argv[2])

async def ring(n=200):
    first = otpy.self()

    async def hop(nxt):
        while True:
            token = await otpy.receive()
            otpy.send(nxt, token)
            if token == 0:
                return

    nxt = first
    for _ in range(n):
        nxt = otpy.spawn(hop, nxt)
    otpy.send(nxt, N)
    while True:
        token = await otpy.receive()
        if token == 0:
            break
        otpy.send(nxt, token - 1)

async def calls():
    server = await Echo.start_link()
    for i in range(N * 100):
        await otpy.call(server, i)

async def nothing():
    pass

async def spawn():
    for _ in range(N * 100):
        _, ref = otpy.spawn_monitor(nothing)
        await otpy.receive(lambda m: isinstance(m, otpy.Down) and m.ref == ref)

class Crashy(otpy.GenServer):
    async def handle_call(self, request, caller):
        return request

    async def handle_cast(self, request):
        raise RuntimeError("crash")

async def restart():
    import logging
    logging.disable(logging.CRITICAL)
    await otpy.Supervisor.start_link([Crashy.child_spec(name="crashy")],
                                     max_restarts=10**9, max_seconds=1)
    for _ in range(N * 10):
        old = otpy.whereis("crashy")
        ref = otpy.monitor(old)
        otpy.cast("crashy", "boom")
        await otpy.receive(lambda m: isinstance(m, otpy.Down) and m.ref == ref)
        while True:
            try:
                await otpy.call("crashy", "ping")
                break
            except otpy.CallError:
                await trio.sleep(0)  # the supervisor has not restarted it yet

otpy.run({"ring": ring, "calls": calls, "spawn": spawn, "restart": restart}[KIND])
'''

#: (workload, small N, large N, units of work per unit of N)
RUNS = [("ring", 1, 11, 200), ("calls", 1, 11, 100), ("spawn", 1, 11, 100),
        ("restart", 1, 11, 10)]


def count(checkout: Path, script: Path, kind: str, n: int) -> int:
    with tempfile.NamedTemporaryFile(suffix=".cg") as out:
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}",
             sys.executable, str(script), kind, str(n)],
            capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": str(checkout), "PYTHONHASHSEED": "0"},
            cwd=tempfile.gettempdir(), check=True)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    assert found, proc.stderr[-500:]
    return int(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkouts", nargs="*", type=Path, default=[HERE.parent])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "workload.py"
        script.write_text(WORKLOAD)
        print("| checkout | per ring hop | per call | per spawn | per crash+restart |")
        print("|---|---|---|---|---|")
        for checkout in args.checkouts:
            rev = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip()
            cells = []
            for kind, small, large, per in RUNS:
                extra = count(checkout, script, kind, large) - count(checkout, script, kind,
                                                                       small)
                cells.append(f"{extra / ((large - small) * per):,.0f}")
            print(f"| {checkout} ({rev}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
