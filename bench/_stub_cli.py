"""A stand-in for the Claude Code CLI that answers at once, for host-overhead benchmarks.

    python bench/_stub_cli.py [CLI flags ignored]

Speaks the stream-json protocol on stdin/stdout with recorded lines from
tests/claudecode_tests/recordings: an ``initialize`` control request gets the
recorded ``control_response`` (with its request id), every user message gets
the recorded ``system``/``assistant``/``result`` lines of a plain-text turn
with the text set to ``pong``. Other control requests get an empty success.
It exits at end of input. With the CLI's own ~30 ms per turn gone, what is
left of a turn's latency is the driving library's overhead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RECORDINGS = Path(__file__).resolve().parent.parent / "tests" / "claudecode_tests" / "recordings"
REPLY = "pong"


def _turn_lines() -> bytes:
    lines = [json.loads(ln) for ln in (RECORDINGS / "plain_text.jsonl").read_text().splitlines()
             if ln.strip()]
    out: list[dict[str, Any]] = []
    for obj in lines:
        if obj.get("type") == "assistant":
            obj["message"]["content"] = [{"type": "text", "text": REPLY}]
        elif obj.get("type") == "result":
            obj["result"] = REPLY
        out.append(obj)
    return b"".join(json.dumps(o, separators=(",", ":")).encode() + b"\n" for o in out)


def _init_response() -> dict[str, Any]:
    for ln in (RECORDINGS / "initialize.jsonl").read_text().splitlines():
        if ln.strip():
            obj: dict[str, Any] = json.loads(ln)
            if obj.get("type") == "control_response":
                return obj
    raise RuntimeError("no control_response in initialize.jsonl")


def main() -> None:
    """Serve stdin until it ends."""
    turn = _turn_lines()
    init = _init_response()
    out = sys.stdout.buffer
    for raw in sys.stdin.buffer:
        if not raw.strip():
            continue
        msg = json.loads(raw)
        kind = msg.get("type")
        if kind == "user":
            out.write(turn)
        elif kind == "control_request":
            rid = msg.get("request_id")
            if msg.get("request", {}).get("subtype") == "initialize":
                resp = {**init, "response": {**init["response"], "request_id": rid}}
            else:
                resp = {"type": "control_response",
                        "response": {"subtype": "success", "request_id": rid, "response": {}}}
            out.write(json.dumps(resp).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    main()
