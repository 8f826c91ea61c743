"""bench/dist.py runs end to end (tiny sizes): every pair answers, with plausible numbers.

A smoke test so the benchmark does not rot; it times nothing itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "dist.py"


def test_dist_benchmark_measures_every_pair() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--n", "300", "--m", "30"],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    # the JSON results go to stderr, which epmd (a child) may also write to
    results, _ = json.JSONDecoder().raw_decode(out.stderr[out.stderr.index('{"Python'):])
    assert set(results) == {"Python -> Python", "Python -> erl", "erl -> Python", "erl -> erl"}
    for pair, r in results.items():
        assert r["msgs_per_s"] > 0 and 0 < r["call_median_us"] <= r["call_p99_us"], pair
        assert f"| {pair} |" in out.stdout
