"""The examples and the documentation's code, run the way a user would run them.

- Each example in ``examples/`` (but ``demo.py``, which has its own owner)
  runs as ``python examples/<name>.py``; its key output lines are checked.
- Each ```` ```python ```` block of the pages in ``DOC_PAGES`` that is a
  complete program (it calls ``otpy.run``) runs as a subprocess; when the
  next block is a ```` ```text ```` block, stdout must be exactly that text.
- A block that defines ``test_`` functions runs under pytest (with
  pytest-trio's ``trio_mode``) and must pass — unless the page marks it
  ``<!-- this test fails -->`` (a test that finds a bug): then it must fail,
  and every line of the ```` ```text ```` block after it must be in pytest's
  output.
- Every other python block must at least compile (top-level ``await``
  allowed), so a snippet cannot rot into a syntax error.
- ``mkdocs build --strict`` succeeds.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parent.parent
# The pages written with this file; other pages (distribution, claudecode) have their owners.
DOC_PAGES = [
    ROOT / "docs" / page
    for page in ("index.md", "otpy/processes.md", "otpy/genserver.md", "otpy/supervisors.md",
                 "otpy/tasks.md", "otpy/names.md", "otpy/testing.md", "otpy/telemetry.md",
                 "otpy/web.md")
]
FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
TIMEOUT = 60.0


def run_python(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the current interpreter with ``args``; fail the test on a non-zero exit.

    Args:
        args: arguments after the interpreter.
        cwd: the working directory.

    Returns:
        The finished process (stdout and stderr as text).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT,
        env=env, check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


# ---------------------------------------------------------------- examples

EXAMPLES: dict[str, list[str]] = {
    "ping_pong.py": [
        "ping 1 -> ('pong', 1)",
        "ping 3 -> ('pong', 3)",
        "left in the mailbox: unrelated",
        "nothing else arrived within 50 ms",
        "pong is down: Normal()",
        "name released: True",
        "linked child crashed: ValueError - invalid literal for int() with base 10: "
        "'forty-two'",
        "we are still alive: True",
    ],
    "supervised_counter.py": [
        "incr -> 11",
        "after reset -> 0",
        "call failed: ZeroDivisionError",
        "restarted with a new pid: True",
        "fresh state -> 10",
        "greeter: terminate(Normal())",
        "greeter -> goodbye",
        "child greeter stopped",
        "greeter -> hello, again",
        "greeter: terminate(Shutdown(detail=None))",
        "supervisor exited: True Shutdown(detail=None)",
    ],
    "task_stream.py": [
        "async_/await_ -> 49",
        "not ready after 50 ms; the task keeps running",
        "a second await -> 900",
        "async_stream -> [('ok', 1), ('ok', 4), ('ok', 9), ('ok', 16), ('ok', 25), "
        "('ok', 36)]",
        "at most 3 ran at once",
        "with a 0.2 s timeout -> [('ok', 1), ('exit', Timeout()), ('ok', 4)]",
        "nolink task crashed: ValueError",
        "the caller is fine: True",
    ],
    "registry_names.py": [
        "subscribers: ['games', 'lobby']",
        "lobby saw: ['hello']",
        "call failed with Crash",
        "games restarted under the same name: True",
        "subscriber entries: 2",
        "games saw: ['again']",
        "leader is main: True",
        "a Global name has one holder at a time",
        "rooms running: 2",
    ],
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs_and_prints_its_story(name: str) -> None:
    done = run_python([f"examples/{name}"], ROOT)
    lines = done.stdout.splitlines()
    for expected in EXAMPLES[name]:
        assert expected in lines, f"{expected!r} missing from:\n{done.stdout}"
    # the key lines come in the order the example tells its story
    positions = [lines.index(expected) for expected in EXAMPLES[name]]
    assert positions == sorted(positions)


# The claudecode examples are run by their own tests (they need the CLI).
CLAUDECODE_EXAMPLES = {
    "demo.py": "tests/claudecode_tests/test_demo.py",
    "mcp_tools.py": "tests/claudecode_tests/test_guides.py",
    "history.py": "tests/claudecode_tests/test_guides.py",
    "distributed_sessions.py": "tests/claudecode_tests/test_distributed_guide.py",
    "between_turns.py": "tests/claudecode_tests/test_guides.py",
    "scaling_sessions.py": "tests/claudecode_tests/test_scaling_guide.py",
}


def test_every_example_has_a_docstring_and_is_checked_by_a_test() -> None:
    everything = {p.name for p in (ROOT / "examples").glob("*.py")}
    assert everything == set(EXAMPLES) | set(CLAUDECODE_EXAMPLES)
    for name, test in CLAUDECODE_EXAMPLES.items():
        assert f"examples/{name}" in (ROOT / test).read_text() or name in (ROOT / test).read_text()
    for name in everything:
        tree = ast.parse((ROOT / "examples" / name).read_text())
        assert ast.get_docstring(tree), name


def test_supervised_counter_logs_one_line_reports() -> None:
    done = run_python(["examples/supervised_counter.py"], ROOT)
    assert "ERROR otpy: GenServer Counter" in done.stderr
    assert "reached max restart intensity (2 in 5s)" in done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------ doc blocks


@attrs.frozen
class Block:
    """One fenced code block of a documentation page."""

    page: str
    line: int
    lang: str
    code: str
    output: str | None  # the ```text block right after it, if any
    fails: bool = False  # marked <!-- this test fails --> (it finds a bug)

    @property
    def kind(self) -> str:
        """``program``, ``pytest`` or ``snippet``."""
        if re.search(r"^def test_|^async def test_", self.code, re.M):
            return "pytest"
        if re.search(r"^otpy\.run\(", self.code, re.M):
            return "program"
        return "snippet"


def doc_blocks() -> list[Block]:
    """Every fenced block of the otpy pages, with the output block that follows it."""
    blocks: list[Block] = []
    for page in DOC_PAGES:
        text = page.read_text()
        found = list(FENCE.finditer(text))
        for i, m in enumerate(found):
            lang, code = m.group(1), m.group(2)
            if lang != "python":
                continue
            output = None
            if i + 1 < len(found):
                nxt = found[i + 1]
                between = text[m.end():nxt.start()]
                if nxt.group(1) == "text" and not between.strip():
                    output = nxt.group(2)
            line = text.count("\n", 0, m.start()) + 1
            fails = text[:m.start()].rstrip().endswith("<!-- this test fails -->")
            blocks.append(Block(page.relative_to(ROOT).as_posix(), line, lang, code, output,
                                fails))
    return blocks


BLOCKS = doc_blocks()


def block_id(block: Block) -> str:
    """A readable test id: page and line."""
    return f"{block.page}:{block.line}"


def test_the_docs_have_programs_pytest_files_and_snippets() -> None:
    kinds = {b.kind for b in BLOCKS}
    assert kinds == {"program", "pytest", "snippet"}
    assert sum(b.output is not None for b in BLOCKS) >= 5


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.kind == "program"], ids=block_id)
def test_doc_program_runs_and_prints_what_the_page_shows(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text(block.code)
    done = run_python([str(script)], tmp_path)
    if block.output is not None:
        assert done.stdout.strip() == block.output.strip()


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.kind == "pytest"], ids=block_id)
def test_doc_test_file_passes_under_pytest(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "test_from_docs.py"
    script.write_text(block.code)
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "trio_mode=true", str(script)]
    if block.fails:
        done = subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=TIMEOUT, check=False)
        assert done.returncode == 1, done.stdout + done.stderr
    else:
        done = run_python(args, tmp_path)
    if block.fails:
        assert re.search(r"\b1 failed\b", done.stdout), done.stdout
        for expected in (block.output or "").strip().splitlines():
            assert expected.strip() in done.stdout, (expected, done.stdout)
        return
    assert re.search(r"\b[1-9]\d* passed\b", done.stdout), done.stdout
    assert "failed" not in done.stdout and "skipped" not in done.stdout


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.kind == "snippet"], ids=block_id)
def test_doc_snippet_compiles(block: Block) -> None:
    compile(block.code, block_id(block), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


# ------------------------------------------------------------------ mkdocs


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    done = run_python(
        ["-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(tmp_path / "site")],
        ROOT,
    )
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "otpy" / "supervisors" / "index.html").is_file()
    assert "WARNING" not in done.stderr
