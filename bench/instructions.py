"""Instructions per message and per call, counted by callgrind: load-independent.

Wall-clock ratios move with whatever else the machine runs; instruction
counts do not. This runs two small workloads under ``valgrind
--tool=callgrind`` at two sizes and reports the difference divided by the
extra work, so start-up and imports cancel out (trio's scheduling shuffle and
Python's hash seed are fixed, so a checkout gives the same count every run):

- ring: 200 processes pass a token round (each hop a send, a wake-up, a
  receive);
- calls: sequential `otpy.call`s to an echo GenServer;
- spawn: processes spawned that exit at once (W1's path);
- restarts: a supervised GenServer crashed and restarted (W5's path);
- turns: turns of a warm claudecode session whose CLI is bench/_stub_cli.py
  (answers at once with recorded lines; only the host process is counted,
  so this is the per-turn overhead of the session and its adapter).

Give one or more otpy checkouts to compare them in one run (default: this one).
``--handler`` also runs each checkout that has ``otpy.telemetry`` with one
trivial handler attached to every event (``("otpy",)`` and ``("claudecode",)``),
``--calls`` with GenServer call latency sampled on every call as well.

    python bench/instructions.py
    python bench/instructions.py . /path/to/other/checkout --handler
    python bench/instructions.py --workloads ring,calls
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
import os
import sys
import otpy
import trio

if os.environ.get("OTPY_BENCH_TELEMETRY"):
    from otpy import telemetry
    seen = [0]

    def handler(event, measurements, metadata):
        seen[0] += 1

    telemetry.attach("bench", [("otpy",), ("claudecode",)], handler)
    if os.environ["OTPY_BENCH_TELEMETRY"] == "calls":
        telemetry.sample_calls(1)

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

async def spawn():
    async def body():
        pass
    for _ in range(N * 100):
        otpy.spawn(body)
        await trio.sleep(0)

class Fragile(otpy.GenServer):
    async def handle_call(self, request, caller):
        raise otpy.Stop(otpy.TermReason("boom"), reply="ok")

async def restarts():
    sup = await otpy.Supervisor.start_link([Fragile.child_spec(id="f", name="f")],
                                           max_restarts=10 ** 9, max_seconds=1)
    for _ in range(N * 20):
        await otpy.call("f", "crash")
        await otpy.Supervisor.which_children(sup)

async def turns():
    import tempfile
    import claudecode
    home = tempfile.mkdtemp()
    session = await claudecode.start_link(cli_path=os.environ["STUB_CLI"], cwd=home,
                                          env={"HOME": home})
    await claudecode.stream(session, "warm").final_result()
    for _ in range(N * 10):
        await claudecode.stream(session, "ping").final_result()
    await claudecode.stop(session)

import logging
logging.getLogger("otpy").setLevel(logging.CRITICAL + 1)
otpy.run({"ring": ring, "calls": calls, "spawn": spawn, "restarts": restarts,
          "turns": turns}[KIND])
'''

#: (workload, small N, large N, units of work per unit of N)
RUNS = [("ring", 1, 6, 200), ("calls", 1, 6, 100), ("spawn", 1, 6, 100),
        ("restarts", 1, 4, 20), ("turns", 1, 3, 10)]
LABELS = {"ring": "per ring hop", "calls": "per call", "spawn": "per spawn",
          "restarts": "per restart", "turns": "per turn"}


def count(checkout: Path, script: Path, kind: str, n: int, telemetry: str = "") -> int:
    env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONHASHSEED": "0",
           "STUB_CLI": str(script.parent / "claude-stub")}
    env.pop("OTPY_BENCH_TELEMETRY", None)
    if telemetry:
        env["OTPY_BENCH_TELEMETRY"] = telemetry
    with tempfile.NamedTemporaryFile(suffix=".cg") as out:
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}",
             sys.executable, str(script), kind, str(n)],
            capture_output=True, text=True, env=env,
            cwd=tempfile.gettempdir(), check=True)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    assert found, proc.stderr[-500:]
    return int(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkouts", nargs="*", type=Path, default=[HERE.parent])
    ap.add_argument("--workloads", default=",".join(kind for kind, *_ in RUNS))
    ap.add_argument("--handler", action="store_true",
                    help="also with a handler attached to every telemetry event")
    ap.add_argument("--calls", action="store_true",
                    help="also with the handler and every call's latency sampled")
    ap.add_argument("--only", choices=["plain", "handler", "calls"], default=None,
                    help="run this variant only")
    args = ap.parse_args()
    wanted = args.workloads.split(",")
    runs = [r for r in RUNS if r[0] in wanted]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "workload.py"
        script.write_text(WORKLOAD)
        stub = Path(tmp) / "claude-stub"
        stub.write_text(f"#!/bin/sh\nexec {sys.executable} {HERE / '_stub_cli.py'} \"$@\"\n")
        stub.chmod(0o755)
        print("| checkout | " + " | ".join(f"instructions {LABELS[k]}" for k, *_ in runs) + " |")
        print("|---|" + "---|" * len(runs))
        for checkout in args.checkouts:
            rev = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip()
            variants = [""]
            if (checkout / "otpy" / "telemetry.py").exists():
                variants += ["all"] * args.handler + ["calls"] * args.calls
            if args.only is not None:
                variants = [{"plain": "", "handler": "all", "calls": "calls"}[args.only]]
            for variant in variants:
                cells = []
                for kind, small, large, per in runs:
                    extra = (count(checkout, script, kind, large, variant)
                             - count(checkout, script, kind, small, variant))
                    cells.append(f"{extra / ((large - small) * per):,.0f}")
                label = {"": "", "all": ", handler on every event",
                         "calls": ", handler + every call sampled"}[variant]
                print(f"| {checkout} ({rev}{label}) | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
