"""Parse throughput of the CLI's stream-json output: claudecode vs claude-agent-sdk.

Both parse the same bytes: every recording in tests/claudecode_tests/recordings,
repeated to ~60,000 lines, fed in 64 KiB chunks as they would arrive from the
CLI's stdout. claudecode: `CLIProtocol.feed` (line buffer, JSON, typed
messages, control events). claude-agent-sdk: the same steps its subprocess
transport and message parser do (split lines, ``json.loads``,
``parse_message``), with control lines skipped as its query layer does.

    python bench/claudecode_parse.py          # both, side by side
    python bench/claudecode_parse.py --impl claudecode|sdk   # one, JSON line

The SDK runs in its own virtualenv under $BENCH_DIR (default
/tmp/otpy-bench), created on first use (pip install claude-agent-sdk).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORDINGS = HERE.parent / "tests" / "claudecode_tests" / "recordings"
sys.path.insert(0, str(HERE))

from _claudecode_bench import SDK_VERSION, sdk_python  # noqa: E402

TARGET_LINES = 60_000
CHUNK = 65536


def corpus() -> bytes:
    lines = []
    for path in sorted(RECORDINGS.glob("*.jsonl")):
        lines.extend(ln for ln in path.read_bytes().splitlines(keepends=True) if ln.strip())
    reps = TARGET_LINES // len(lines) + 1
    return b"".join(lines * reps)


def run_claudecode(data: bytes) -> tuple[int, float]:
    from claudecode._protocol import CLIProtocol

    proto = CLIProtocol()
    n = 0
    t0 = time.perf_counter()
    for i in range(0, len(data), CHUNK):
        n += len(proto.feed(data[i:i + CHUNK]))
    return n, time.perf_counter() - t0


def run_sdk(data: bytes) -> tuple[int, float]:
    import codecs

    from claude_agent_sdk._internal.message_parser import parse_message

    decoder = codecs.getincrementaldecoder("utf-8")()
    n = 0
    buf = ""
    t0 = time.perf_counter()
    for i in range(0, len(data), CHUNK):
        buf += decoder.decode(data[i:i + CHUNK])
        *lines, buf = buf.split("\n")
        for line in lines:
            line = line.strip()
            if not line:
                continue
            obj = json.loads(line)
            if obj.get("type") in ("control_request", "control_response",
                                   "control_cancel_request"):
                n += 1
                continue
            with contextlib.suppress(Exception):  # the SDK raises on unknown types
                parse_message(obj)
            n += 1
    return n, time.perf_counter() - t0


def one(impl: str) -> None:
    data = corpus()
    runner = run_claudecode if impl == "claudecode" else run_sdk
    runner(data[: len(data) // 10])  # warm-up
    times = []
    n = 0
    for _ in range(5):
        n, dt = runner(data)
        times.append(dt)
    lines = data.count(b"\n")
    print(json.dumps({"impl": impl, "lines": lines, "events": n,
                      "lines_per_s": lines / statistics.median(times)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--impl", choices=["claudecode", "sdk"])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if args.impl:
        one(args.impl)
        return
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    sdk_py = sdk_python()
    rounds = []
    for _ in range(args.rounds):  # interleaved, one fresh process each
        ours = json.loads(subprocess.run([sys.executable, __file__, "--impl", "claudecode"],
                                         capture_output=True, text=True, check=True,
                                         env=env).stdout)
        sdk = json.loads(subprocess.run([sdk_py, __file__, "--impl", "sdk"],
                                        capture_output=True, text=True, check=True,
                                        env=env).stdout)
        rounds.append((ours["lines_per_s"], sdk["lines_per_s"]))
    ours_med = statistics.median(r[0] for r in rounds)
    sdk_med = statistics.median(r[1] for r in rounds)
    ratio = statistics.median(r[0] / r[1] for r in rounds)
    print(f"\nstream-json parse throughput, {ours['lines']:,} recorded lines in "
          f"{CHUNK // 1024} KiB chunks, median of {args.rounds} interleaved rounds\n")
    print("| implementation | lines/s | ratio (median of per-round ratios) |")
    print("|---|---|---|")
    print(f"| claudecode (CLIProtocol.feed) | {ours_med:,.0f} | {ratio:.2f}x |")
    print(f"| claude-agent-sdk {SDK_VERSION} (split + json.loads + parse_message) | "
          f"{sdk_med:,.0f} | 1.00x |")
    print("\nGoal: >= 2x")


if __name__ == "__main__":
    main()
