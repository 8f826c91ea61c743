"""bench/decode.py runs end to end (tiny sizes): every decoder and shape gives a row.

A smoke test so the benchmark does not rot; it times nothing itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "decode.py"


def test_decode_benchmark_covers_every_shape_and_decoder() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--max-mb", "0.3", "--repeat", "1",
                          "--max-depth", "20"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line.split("|")[1:-1] for line in out.stdout.splitlines()[2:]]
    seen = {(r[0].strip(), r[1].strip().split(",")[0]) for r in rows}
    for decoder in ("C", "python"):
        for shape in ("flat list", "nested tails", "announcing tuples", "flat map",
                      "equal-key maps"):
            assert (decoder, shape) in seen, (decoder, shape)
    assert all(float(r[3]) >= 0 for r in rows)
