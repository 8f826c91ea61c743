"""Side-by-side benchmark of otpy's core against raw trio, triotp and Erlang.

Runs the five workloads of ``../shared/peers`` (W1 spawn, W2 ring, W3 calls,
W4 idle memory, W5 crash+restart) round-robin, one fresh OS process per
measurement, and prints medians and the median of per-round ratios to raw
trio (run with the same Python and the same trio as otpy), next to the
targets of the core issue.

    python bench/core.py                 # 3 rounds
    python bench/core.py --rounds 5 --no-erlang
    python bench/core.py --workloads w1,w3
    python bench/core.py --baseline /path/to/other/checkout --no-triotp --no-erlang
    python bench/core.py --handler      # also otpy with a handler on every telemetry event

triotp runs in its own virtualenv (it pins trio 0.19), created on first use
under ``$BENCH_DIR`` (default /tmp/otpy-bench).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = Path(os.environ.get("OTPY_PEERS", ROOT.parent / "shared" / "peers"))
BENCH = Path(os.environ.get("BENCH_DIR", "/tmp/otpy-bench"))

# workload -> (metric, higher is better, target ratio to raw trio or None)
METRICS = {
    "w1": [("spawns_per_s", True, 0.6)],
    "w2": [("msgs_per_s", True, 0.9)],
    "w3": [("calls_per_s", True, 0.7), ("median_us", False, None), ("p99_us", False, None)],
    "w4": [("rss_bytes_per_proc", False, 1.25)],
    "w5": [("restarts_per_s", True, 0.8)],
}
LABELS = {
    "w1": "W1 spawn 20k, processes/s",
    "w2": "W2 ring 1000x100, msgs/s",
    "w3": "W3 20k calls",
    "w4": "W4 10k idle, RSS bytes/proc",
    "w5": "W5 2000 crash+restart, restarts/s",
}


def venv(name: str, *pip: str) -> Path:
    path = BENCH / f"venv-{name}"
    if not (path / "bin" / "python").exists():
        print(f"setting up {path}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(path / "bin" / "pip"), "install", "-q", *pip], check=True)
    return path / "bin" / "python"


def peers(with_erlang: bool, with_triotp: bool = True,
          baseline: Path | None = None, handler: bool = False) -> dict[str, list[str]]:
    out = {
        "otpy": [sys.executable, str(HERE / "bench_otpy.py")],
        "raw trio": [sys.executable, str(PEERS / "trio" / "bench_trio.py")],
    }
    if handler:
        out["otpy+handler"] = ["env", "OTPY_BENCH_TELEMETRY=all", sys.executable,
                               str(HERE / "bench_otpy.py")]
    if baseline is not None:
        # Another checkout of otpy (e.g. before a change), same Python and trio.
        rev = subprocess.run(["git", "-C", str(baseline), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip() or "base"
        out[f"otpy@{rev}"] = ["env", f"PYTHONPATH={baseline}", sys.executable,
                              str(baseline / "bench" / "bench_otpy.py")]
    if with_triotp:
        out["triotp"] = [str(venv("triotp", "triotp")),
                         str(PEERS / "triotp" / "bench_triotp.py")]
    if with_erlang and shutil.which("erl"):
        ebin = BENCH / "ebin"
        ebin.mkdir(parents=True, exist_ok=True)
        sources = sorted(str(p) for p in (PEERS / "erlang").glob("*.erl"))
        subprocess.run(["erlc", "-o", str(ebin), *sources], check=True)
        out["erlang (+S 1)"] = ["erl", "+S", "1", "-noshell", "-pa", str(ebin), "-run", "bench",
                                "main"]
    return out


def measure(cmd: list[str], workload: str) -> dict[str, float] | None:
    proc = subprocess.run([*cmd, workload], capture_output=True, text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"  {cmd[-1]} {workload} FAILED: {proc.stderr[-300:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1])["metrics"]  # type: ignore[no-any-return]


def fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workloads", default="w1,w2,w3,w4,w5")
    ap.add_argument("--no-erlang", action="store_true")
    ap.add_argument("--no-triotp", action="store_true")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another otpy checkout measured as an extra column")
    ap.add_argument("--handler", action="store_true",
                    help="also otpy with a trivial handler attached to every telemetry event")
    args = ap.parse_args()
    workloads = args.workloads.split(",")
    runners = peers(not args.no_erlang, not args.no_triotp, args.baseline, args.handler)
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    ratios: dict[tuple[str, str, str], list[float]] = {}
    raw_out = HERE / "results" / f"core-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    raw_out.parent.mkdir(exist_ok=True)
    with raw_out.open("w") as log:
        for r in range(1, args.rounds + 1):
            for w in workloads:
                round_metrics: dict[str, dict[str, float]] = {}
                for name, cmd in runners.items():
                    if name.startswith("erlang") and w not in METRICS:
                        continue
                    m = measure(cmd, w)
                    print(f"round {r} {w} {name}: {'ok' if m else 'failed'}", file=sys.stderr)
                    if m is None:
                        continue
                    round_metrics[name] = m
                    results.setdefault((name, w), []).append(m)
                    log.write(json.dumps({"round": r, "peer": name, "workload": w,
                                          "metrics": m}) + "\n")
                base = round_metrics.get("raw trio")
                for name, m in round_metrics.items():
                    for metric, _, _ in METRICS[w]:
                        if base and metric in m and base.get(metric):
                            ratios.setdefault((name, w, metric), []).append(
                                m[metric] / base[metric])

    names = list(runners)
    print(f"\nMedians over {args.rounds} rounds (python {sys.version.split()[0]})\n")
    print("| workload / metric | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for w in workloads:
        for metric, _, _ in METRICS[w]:
            cells = []
            for n in names:
                vals = [m[metric] for m in results.get((n, w), []) if metric in m]
                cells.append(fmt(statistics.median(vals)) if vals else "n/a")
            print(f"| {LABELS[w]} — {metric} | " + " | ".join(cells) + " |")
    print("\nMedian of per-round ratios to raw trio (same round), with the core issue's targets\n")
    print("| workload / metric | " + " | ".join(names) + " | target (otpy) | met |")
    print("|---|" + "---|" * (len(names) + 2))
    for w in workloads:
        for metric, higher, target in METRICS[w]:
            cells = []
            for n in names:
                vals = ratios.get((n, w, metric))
                cells.append(f"{statistics.median(vals):.2f}x" if vals else "n/a")
            met = ""
            vals = ratios.get(("otpy", w, metric))
            if target is not None and vals:
                med = statistics.median(vals)
                ok = med >= target if higher else med <= target
                met = "yes" if ok else f"no ({med / target - 1:+.0%})"
            tgt = "" if target is None else (f">= {target}x" if higher else f"<= {target}x")
            print(f"| {LABELS[w]} — {metric} | " + " | ".join(cells) + f" | {tgt} | {met} |")
    print(f"\nraw results: {raw_out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
