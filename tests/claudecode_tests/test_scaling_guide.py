"""The scaling guide, its example and the scaling benchmark stay true.

* Every ```` ```python ```` block of docs/claudecode/scaling.md compiles.
* ``examples/scaling_sessions.py`` (real CLI, FakeAnthropic) prints what the
  guide shows.
* ``bench/scaling_sessions.py --smoke`` runs with tiny sizes: every turn
  answered with its context, never more CLIs than the budget, none left.
* The page is in the nav, with its design record.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from claudecode._install import install_cli

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "claudecode" / "scaling.md"
FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
CLI_ROOT = install_cli().directory.parent


def _env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(HOME=str(home), CLAUDE_CONFIG_DIR=str(home / ".claude"),
               CLAUDECODE_CLI_DIR=str(CLI_ROOT), PYTHONUNBUFFERED="1")
    return env


def _run(args: list[str], tmp_path: Path, timeout: float = 120) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{args} exited {done.returncode}\n{done.stdout}\n" \
                                 f"{done.stderr[-3000:]}"
    return done.stdout


def test_every_snippet_compiles() -> None:
    blocks = [m.group(2) for m in FENCE.finditer(PAGE.read_text("utf-8"))
              if m.group(1) == "python"]
    assert len(blocks) >= 5
    for code in blocks:
        compile(code, str(PAGE), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_the_example_prints_what_the_guide_shows(tmp_path: Path) -> None:
    text = PAGE.read_text("utf-8")
    shown = text[text.index("## Running the example"):]
    expected = next(m.group(2) for m in FENCE.finditer(shown) if m.group(1) == "text")
    got = _run(["examples/scaling_sessions.py"], tmp_path).splitlines()
    want = expected.rstrip("\n").splitlines()
    assert len(got) == len(want), got
    for line, pattern in zip(got, want, strict=True):
        if pattern.startswith("live CLIs now: "):  # 1 if an idle timeout came first
            assert re.fullmatch(r"live CLIs now: [12] \(never more than max_live_clis=2\)",
                                line), line
        else:
            assert line == pattern


def test_the_benchmark_smoke_run(tmp_path: Path) -> None:
    out = _run(["bench/scaling_sessions.py", "--smoke"], tmp_path, timeout=300)
    line = next(x for x in reversed(out.splitlines()) if x.startswith("@@RESULT "))
    result = json.loads(line[len("@@RESULT "):])
    assert len(result["runs"]) == 1  # (spares: test_hibernation.py)
    for run in result["runs"]:
        assert run["ok"] == run["turns"] == run["conversations"] * run["turns_per_conversation"]
        assert run["lost_context"] == 0 and run["clis_left"] == 0
        assert run["budget"]["peak_live"] <= run["max_live_clis"]
        assert run["peak_live_clis_proc"] <= run["max_live_clis"]
        kinds = run["by_kind"]
        assert kinds["cold"]["n"] + kinds["spare"]["n"] == run["conversations"]
    memory = result["memory"]
    assert set(memory) == {"hibernated"}
    assert 0 < memory["hibernated"]["tracemalloc_bytes_per_session"] < 40_000


def test_the_page_and_its_design_record_are_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text("utf-8")
    assert "Scaling sessions: claudecode/scaling.md" in nav
    assert "design/016-hibernation-and-cli-budget.md" in nav
    assert "scaling.md" in (ROOT / "docs" / "claudecode" / "sessions.md").read_text("utf-8")
