"""The tools/hooks/permissions and history guides, and their examples, stay true.

* Every ```` ```python ```` block of ``docs/claudecode/tools-hooks-permissions.md``
  and ``docs/claudecode/history.md`` compiles (top-level ``await`` allowed).
* Every complete program in them (a block that calls ``otpy.run`` or
  ``trio.run``, or is followed directly by a ```` ```text ```` block) runs as
  a subprocess, offline: the programs start their own
  ``claudecode.testing.FakeAnthropic`` and the real pinned CLI talks to it.
  When a ```` ```text ```` block follows, the program's output must match it
  line by line (``…`` stands for any text).
* ``examples/mcp_tools.py``, ``examples/history.py`` and
  ``examples/between_turns.py`` run as subprocesses and print their key lines.
* Facts the pages state are checked against the code: the hook event list,
  the callback timeout, the events taking ``additional_context``, which
  shorthand fits which event, and the tool error texts quoted in the tables.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from _session_env import processes_using

import claudecode
from claudecode._callbacks import DEFAULT_CALLBACK_TIMEOUT
from claudecode._hooks import ADDITIONAL_CONTEXT_EVENTS, HookOutputError, HookResponse
from claudecode._install import install_cli
from claudecode._options import HOOK_EVENTS

ROOT = Path(__file__).resolve().parents[2]
TOOLS_PAGE = ROOT / "docs" / "claudecode" / "tools-hooks-permissions.md"
HISTORY_PAGE = ROOT / "docs" / "claudecode" / "history.md"
PAGES = (TOOLS_PAGE, HISTORY_PAGE)
FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
CLI_ROOT = install_cli().directory.parent
"""The pinned CLI's install root (installed into the user cache on first use)."""


class Block:
    """A ```` ```python ```` block of a page, and the output block right after it, if any."""

    def __init__(self, page: str, line: int, code: str, output: str | None) -> None:
        self.page = page
        self.line = line
        self.code = code
        self.output = output

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def is_program(self) -> bool:
        return "otpy.run(" in self.code or "trio.run(" in self.code or self.output is not None


def _blocks(page: Path) -> list[Block]:
    text = page.read_text("utf-8")
    fences = list(FENCE.finditer(text))
    found = []
    for index, match in enumerate(fences):
        if match.group(1) != "python":
            continue
        output = None
        if index + 1 < len(fences):
            after = fences[index + 1]
            between = text[match.end():after.start()]
            if after.group(1) == "text" and not between.strip():
                output = after.group(2)
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(page.name, line, match.group(2), output))
    return found


BLOCKS = [b for page in PAGES for b in _blocks(page)]
PROGRAMS = [b for b in BLOCKS if b.is_program]


def _env(tmp_path: Path) -> dict[str, str]:
    """The environment of a program run: a private HOME and config dir, the pinned CLI."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(HOME=str(home), CLAUDE_CONFIG_DIR=str(home / ".claude"),
               CLAUDECODE_CLI_DIR=str(CLI_ROOT), PYTHONUNBUFFERED="1")
    return env


def _run(args: list[str], tmp_path: Path, cwd: Path) -> str:
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, (f"{args} exited {done.returncode}\n{done.stdout}\n"
                                  f"{done.stderr[-3000:]}")
    return done.stdout


def _matches(expected: str, actual: str) -> bool:
    want = expected.rstrip("\n").split("\n")
    got = [line.rstrip() for line in actual.rstrip("\n").split("\n")]
    if len(want) != len(got):
        return False
    for pattern, line in zip(want, got, strict=True):
        regex = ".*".join(re.escape(part) for part in pattern.rstrip().split("…"))
        if not re.fullmatch(regex, line):
            return False
    return True


# -- the pages' code ---------------------------------------------------------------------


def test_there_are_snippets_and_programs() -> None:
    for page in PAGES:
        blocks = [b for b in BLOCKS if b.page == page.name]
        assert len(blocks) >= 3, page.name
        assert any(b.is_program and b.output is not None for b in blocks), page.name
    # The session-running programs of both pages are among them.
    assert sum("FakeAnthropic.serve" in b.code for b in PROGRAMS) >= 2


def test_matching_with_wildcards() -> None:
    assert _matches("a: …\nb\n", "a: 12 entries\nb")
    assert _matches("x …-work/y", "x -tmp-abc-work/y")
    assert not _matches("a: …\nb", "a: 1\nb\nc")
    assert not _matches("b", "c")


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_snippet_compiles(block: Block) -> None:
    compile(block.code, block.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.mark.parametrize("block", PROGRAMS, ids=[b.id for b in PROGRAMS])
def test_program_runs(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text(block.code, "utf-8")
    out = _run([str(script)], tmp_path, tmp_path)
    if block.output is not None:
        assert _matches(block.output, out), (
            f"{block.id}: the output differs from the page\n--- page ---\n{block.output}"
            f"--- program ---\n{out}"
        )


# -- the examples -------------------------------------------------------------------------


def test_mcp_tools_example(tmp_path: Path) -> None:
    out = _run(["examples/mcp_tools.py"], tmp_path, ROOT)
    lines = out.splitlines()
    assert "tools the model can call: mcp__calc__add, mcp__calc__stats" in lines
    expected_in_order = [
        "[model]  calls mcp__calc__add {'a': 2, 'b': 3}",
        "[result] 5",
        "[model]  calls mcp__calc__add {'a': 'two', 'b': 3}",
        "[result] (error) Tool error: invalid arguments for 'add': $.a: expected integer, "
        "got string [...]",
        "[model]  calls mcp__calc__stats {}",
        '[result] {"calls": 1, "total": 5}',
        "[model]  Made 1 addition, total 5; 'two' is not a number.",
        "what the model's next requests carried:",
        "  toolu_add: 5",
        "  toolu_bad: Tool error: invalid arguments for 'add': $.a: expected integer, "
        "got string [...]",
        '  toolu_stats: {"calls": 1, "total": 5}',
    ]
    positions = [lines.index(line) for line in expected_in_order]
    assert positions == sorted(positions)
    # The tools ran in processes of their own: neither the session nor the program.
    ran = re.search(r"their own processes: \[(<[\d.]+>), (<[\d.]+>)\] "
                    r"\(the session was (<[\d.]+>), this program is (<[\d.]+>)\)", out)
    assert ran is not None, out
    add_pid, stats_pid, session_pid, main_pid = ran.groups()
    assert len({add_pid, stats_pid, session_pid, main_pid}) == 4
    base_url = re.search(r"FakeAnthropic at (http://127\.0\.0\.1:\d+)", out)
    assert base_url is not None
    assert processes_using(base_url.group(1)) == []  # no CLI left behind


def test_between_turns_example(tmp_path: Path) -> None:
    lines = _run(["examples/between_turns.py"], tmp_path, ROOT).splitlines()
    assert lines[:4] == [
        "task started: Wait a second",
        "query answered: Started the job.",
        'task completed: Background command "Wait a second" completed (exit code 0)',
        "the CLI's own turn (task-notification): The background job is done.",
    ]
    # the streamed prompt's messages are answered one by one, or together
    streamed = " ".join(lines[4:])
    assert lines[4:] and all(line.startswith("streamed prompt answered: You said:")
                             for line in lines[4:])
    assert "second thought" in streamed


def test_history_example(tmp_path: Path) -> None:
    out = _run(["examples/history.py"], tmp_path, ROOT)
    conversation_before = (
        "   conversation:\n"
        "     user       What is the capital of France?\n"
        "     assistant  Paris.\n"
        "     user       And its population?\n"
        "     assistant  About 2.1 million people live in Paris proper.\n"
    )
    conversation_after = (
        "   conversation (the newest branch):\n"
        "     user       What is the capital of France?\n"
        "     assistant  Paris.\n"
        "     user       What about Germany?\n"
        "     assistant  Berlin is the capital of Germany.\n"
    )
    assert conversation_before in out
    assert conversation_after in out
    assert out.index(conversation_before) < out.index(conversation_after)
    for line in (
        "   the directory name encodes the cwd: True",
        "   list_projects: ['my project']",
        "   list_sessions: same id: True, first_prompt='What is the capital of France?', "
        "summary='And its population?', cwd is the project: True, file_size > 0: True",
        "   summary: 'And its population?'",
        "   same session id: True",
        "   the old branch is still in the file: True",
        "   summary: 'What about Germany?'",
        "   an unknown id raises SessionNotFoundError",
    ):
        assert line in out.splitlines(), line
    assert re.search(r"^   transcript: projects/-[A-Za-z0-9-]+-my-project/<session id>\.jsonl$",
                     out, re.M)
    entries = re.search(r"read_session: (\d+) entries, 2 user and 2 assistant among them", out)
    assert entries is not None and int(entries.group(1)) > 4


# -- facts the pages state ---------------------------------------------------------------


def _paragraph(text: str, start: str) -> str:
    index = text.index(start)
    end = text.find("\n\n", index)
    return text[index:end if end >= 0 else None]


def test_hook_events_listed_are_the_known_ones() -> None:
    text = TOOLS_PAGE.read_text("utf-8")
    events = _paragraph(text, "The events the pinned CLI knows are").split("Any other name")[0]
    listed = re.findall(r"`(\w+)`", events)
    assert listed == list(HOOK_EVENTS)
    context = _paragraph(text, "`additional_context` is accepted by").split("Every shorthand")[0]
    named = set(re.findall(r"`(\w+)`", context)) - {"additional_context", "ok", "allow", "deny",
                                                   "block"}
    assert named == set(ADDITIONAL_CONTEXT_EVENTS)


def test_callback_timeout_is_as_documented() -> None:
    text = TOOLS_PAGE.read_text("utf-8")
    assert DEFAULT_CALLBACK_TIMEOUT == 30.0
    assert "the **callback timeout**: 30\nseconds" in text


@pytest.mark.parametrize(
    ("response", "fits", "does_not_fit"),
    [
        (claudecode.ok(), HOOK_EVENTS, ()),
        (claudecode.allow(), ("PreToolUse", "PermissionRequest"), ("Stop", "PostToolUse")),
        (claudecode.deny("no"), ("PreToolUse", "PermissionRequest"), ("UserPromptSubmit",)),
        (claudecode.ask(), ("PreToolUse",), ("PermissionRequest", "Stop")),
        (claudecode.block("no"),
         ("UserPromptSubmit", "PostToolUse", "Stop", "SubagentStop", "PreToolUse"), ()),
        (claudecode.halt("enough"), HOOK_EVENTS, ()),
        (claudecode.deny("no", interrupt=True), ("PermissionRequest",), ("PreToolUse",)),
        (claudecode.ok(additional_context="x"), tuple(ADDITIONAL_CONTEXT_EVENTS), ("Stop",)),
    ],
)
def test_shorthands_fit_the_events_the_table_names(
    response: HookResponse, fits: tuple[str, ...], does_not_fit: tuple[str, ...]
) -> None:
    for event in fits:
        wire = response.to_wire(event)  # does not raise
        if "hookSpecificOutput" in wire:
            assert wire["hookSpecificOutput"]["hookEventName"] == event
    for event in does_not_fit:
        with pytest.raises(HookOutputError):
            response.to_wire(event)
    # block means deny on the permission events, as the table says
    assert claudecode.block("no").to_wire("PreToolUse") == claudecode.deny("no").to_wire(
        "PreToolUse")


@claudecode.tool("add", "Add two integers", {"a": int, "b": int})
async def _add(args: dict[str, Any]) -> str:
    return str(args["a"] + args["b"])


@claudecode.tool("boom", "Always fails")
def _boom(args: dict[str, Any]) -> str:
    raise ValueError("<message>")


@claudecode.tool("add", "Returns bytes")
def _bytes(args: dict[str, Any]) -> bytes:
    return b"png"


@claudecode.tool("add", "Takes its time")
async def _slow(args: dict[str, Any]) -> str:
    await trio.sleep(3600)
    return "late"


def _text(result: claudecode.ToolResult) -> str:
    assert result.is_error
    [block] = result.content
    return str(block["text"])


async def test_tool_error_texts_quoted_in_the_page(autojump_clock: trio.testing.MockClock) -> None:
    text = TOOLS_PAGE.read_text("utf-8")
    server = claudecode.mcp_server("calc", [_add])
    quoted = [
        _text(await _add.run({"a": "two", "b": 3})),
        _text(await _boom.run({})),
        _text(await _slow.run({}, timeout=DEFAULT_CALLBACK_TIMEOUT)),
        _text(await server.call_tool("sub", {})),
    ]
    assert quoted == [
        "Tool error: invalid arguments for 'add': $.a: expected integer, got string",
        "Tool error: ValueError: <message>",
        "Tool error: 'add' timed out after 30s",
        "Tool error: unknown tool 'sub'",
    ]
    for line in quoted:
        assert f"`{line}`" in text, line
    unusable = _text(await _bytes.run({}))
    assert unusable.startswith("Tool error: unusable result from 'add': ")
    assert "`Tool error: unusable result from 'add': ...`" in text


def test_pages_are_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text("utf-8")
    section = nav[nav.index("  - claudecode:"):]
    section = section[:section.index("\n  - ", 1)]
    assert "claudecode/tools-hooks-permissions.md" in section
    assert "claudecode/history.md" in section


def test_callback_timeout_is_set_through_the_adapter() -> None:
    from claudecode._options import Options
    from claudecode.adapters._port import Launch

    port = claudecode.adapters.Port(callback_timeout=5)
    launch = Launch.local(Options(), "claude", port.callback_timeout)
    assert launch.handler.callback_timeout == 5  # type: ignore[attr-defined]
    assert "adapters.Port(callback_timeout=5)" in TOOLS_PAGE.read_text("utf-8")
