"""The session-layer docs' code: every snippet compiles, every complete program runs.

A ```` ```python ```` block of ``docs/claudecode/{sessions,streaming,
supervision,hosting}.md`` must compile (top-level ``await`` allowed). A block
that is a complete program (it calls ``otpy.run``) runs as a subprocess with
the real CLI pointed at a FakeAnthropic (echo replies) and a private HOME
(the two-node programs of supervision.md run in test_global_sessions.py).
"""

from __future__ import annotations

import ast
import os
import re
import sys
from pathlib import Path

import pytest
import trio
from _session_env import CLI, no_orphans

from claudecode.testing import FakeAnthropic

__all__ = ["no_orphans"]

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "docs" / "claudecode" / f"{name}.md"
         for name in ("sessions", "streaming", "supervision", "hosting")]
FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def _blocks() -> list[tuple[str, int, str]]:
    found = []
    for page in PAGES:
        text = page.read_text("utf-8")
        for match in FENCE.finditer(text):
            if match.group(1) == "python":
                line = text.count("\n", 0, match.start()) + 1
                found.append((page.name, line, match.group(2)))
    return found


BLOCKS = _blocks()
# The cluster pair of supervision.md (``# node_a.py`` / ``# node_b.py``) runs as a
# pair of nodes in test_global_sessions.py, not alone.
PROGRAMS = [b for b in BLOCKS if "otpy.run(" in b[2] and not b[2].startswith("# node_")]


def test_there_are_snippets_and_programs() -> None:
    assert len(BLOCKS) >= 15
    assert len(PROGRAMS) >= 2


@pytest.mark.parametrize(("page", "line", "code"), BLOCKS,
                         ids=[f"{p}:{n}" for p, n, _ in BLOCKS])
def test_snippet_compiles(page: str, line: int, code: str) -> None:
    compile(code, f"{page}:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.mark.parametrize(("page", "line", "code"), PROGRAMS,
                         ids=[f"{p}:{n}" for p, n, _ in PROGRAMS])
async def test_program_runs(page: str, line: int, code: str, tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text(code, "utf-8")
    home = tmp_path / "home"
    home.mkdir()
    async with FakeAnthropic.serve(log_requests=False) as fake:
        env = {**os.environ, **fake.env(max_retries=0), "HOME": str(home),
               "CLAUDE_CONFIG_DIR": str(home / ".claude"), "CLAUDECODE_CLI_DIR": "/nonexistent",
               "PATH": f"{Path(CLI).parent}:{os.environ.get('PATH', '')}"}
        with trio.fail_after(30):
            done = await trio.run_process([sys.executable, str(script)], cwd=tmp_path, env=env,
                                          capture_stdout=True, capture_stderr=True, check=False)
    out = done.stdout.decode()
    assert done.returncode == 0, f"{page}:{line} exited {done.returncode}\n{out}\n" \
                                 f"{done.stderr.decode()[-3000:]}"
    assert "echo #" in out
