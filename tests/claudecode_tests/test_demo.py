"""The demo (``scripts/demo`` runs ``examples/demo.py``), run offline as a user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from _session_env import processes_using

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_offline_and_recovers_from_a_killed_cli() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    env["PYTHONUNBUFFERED"] = "1"
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "examples/demo.py"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=60, check=False,
    )
    elapsed = time.monotonic() - t0
    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\n{out}\n{done.stderr}"
    assert elapsed < 60

    assert "Offline: the real Claude Code CLI" in out
    # streamed answers, and memory within a session
    assert "[assistant] < A supervision tree is a hierarchy" in out
    assert "[turn 2 of this conversation]" in out
    # the kill: a typed error for the caller ...
    assert "<-- SIGKILL" in out
    assert ("the caller got a StreamError with a typed reason: "
            "CLIExited(status=-9, stderr_tail='')") in out
    # ... the restart under the same name, siblings untouched ...
    restart = re.search(r"restarted 'reviewer' under its name: (<[\d.]+>) -> (<[\d.]+>)", out)
    assert restart is not None and restart.group(1) != restart.group(2)
    assert "siblings untouched: True" in out
    # ... and a fresh conversation that answers again
    assert ("[reviewer] < Yes, I'm back: a brand-new process with a clean conversation. "
            "[turn 1 of this conversation]") in out
    assert "claude processes left: 0" in out

    base_url = re.search(r"FakeAnthropic at (http://127\.0\.0\.1:\d+)", out)
    assert base_url is not None
    assert processes_using(base_url.group(1)) == []
