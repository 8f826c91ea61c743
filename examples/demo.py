"""The demo: supervised Claude sessions that survive their CLI being killed.

Run it with ``scripts/demo`` (or ``python examples/demo.py``). It starts

    claude_sessions (claudecode.Supervisor, one_for_one)
    ├── assistant   a session named "assistant"
    ├── reviewer    a session named "reviewer"
    └── poet        a session named "poet"

each session driving its own real Claude Code CLI process. The sessions
answer prompts with streamed text; then the reviewer's CLI is killed with
SIGKILL in the middle of an answer. The caller gets a typed ``StreamError``
(``CLIExited(status=-9, ...)``), the session exits with that reason, the
supervisor restarts it under the same name with a fresh conversation, its
siblings keep running untouched, and it answers again.

Offline by default: the real CLI talks to ``claudecode.testing.FakeAnthropic``,
a scripted Messages API started inside this program on 127.0.0.1. With
``ANTHROPIC_API_KEY`` set, the sessions use the real API instead
(``CLAUDECODE_DEMO_MODEL`` picks the model, default ``claude-haiku-4-5``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

import trio

import claudecode
import otpy
from claudecode._install import PINNED_CLI_VERSION, install_cli
from claudecode.testing import FakeAnthropic, RecordedRequest, Text, Turn

SESSIONS = {
    "assistant": "You are a concise, friendly assistant.",
    "reviewer": "You review Python code changes.",
    "poet": "You answer in haiku.",
}

LONG_PROMPT = "Walk me through this diff line by line, in detail."

# Canned answers of the offline model, by prompt.
ANSWERS = {
    "What is a supervision tree?": (
        "A supervision tree is a hierarchy of processes where supervisors start, watch and "
        "restart their children, so a crash stays local and the system heals itself."
    ),
    "And why does that help here?": (
        "Each Claude session is a process under a supervisor: if its CLI dies, the session "
        "exits with a typed reason and comes back under the same name, fresh."
    ),
    "Review: `def add(a, b): return a - b`": (
        "Bug: `add` subtracts. It should `return a + b`; a unit test would have caught it."
    ),
    "Write about restarts.": (
        "Process falls silent / the supervisor notices / a fresh one answers."
    ),
    LONG_PROMPT: " ".join(
        f"Line {i}: this change looks reasonable, but consider the edge cases." for i in
        range(1, 41)
    ),
    "Are you back?": "Yes, I'm back: a brand-new process with a clean conversation.",
}


_partial = False  # a streamed answer is being printed on the current line


def say(text: str = "") -> None:
    """Print a line (ending a streamed line first, if one is open)."""
    global _partial
    if _partial:
        print(flush=True)
        _partial = False
    print(text, flush=True)


def end_line() -> None:
    """End a streamed line, if one is open."""
    global _partial
    if _partial:
        print(flush=True)
        _partial = False


def write(text: str) -> None:
    """Print streamed text without ending the line."""
    global _partial
    print(text, end="", flush=True)
    _partial = True


class _LogToConsole(logging.Handler):
    """Library reports (the session's and the supervisor's) as lines among ours."""

    def emit(self, record: logging.LogRecord) -> None:
        say(f"  [log] {record.name}: {record.getMessage()}")


def offline_reply(request: RecordedRequest) -> Turn:
    """The fake model: a canned answer, streamed word by word, aware of the turn number."""
    prompt = request.last_user_text
    turn = max(1, len(request.messages) // 2)
    text = ANSWERS.get(prompt, f"You said: {prompt}")
    if prompt != LONG_PROMPT:
        text += f" [turn {turn} of this conversation]"
    words = max(1, len(text.split(" ")))
    delay = 0.05 if prompt == LONG_PROMPT else 0.01
    return Turn([Text(text, chunks=min(words, len(text)))], chunk_delay=delay)


def claude_processes() -> list[int]:
    """CLI processes that are children of this program (from /proc)."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index(b"(") + 1:stat.rindex(b")")]
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        if ppid == me and comm == b"claude":
            found.append(int(entry))
    return found


@contextlib.asynccontextmanager
async def model_backend() -> AsyncIterator[dict[str, Any]]:
    """Options for every session: the offline fake (default) or the real API."""
    if os.environ.get("ANTHROPIC_API_KEY"):
        model = os.environ.get("CLAUDECODE_DEMO_MODEL", "claude-haiku-4-5")
        say(f"Using the real Anthropic API (model {model}).")
        with tempfile.TemporaryDirectory(prefix="claudecode-demo-") as work:
            yield {"model": model, "cwd": work, "max_turns": 1, "tools": [],
                   "include_partial_messages": True}
        return
    async with FakeAnthropic.serve(log_requests=False, default=offline_reply) as fake:
        say(f"Offline: the real Claude Code CLI {PINNED_CLI_VERSION} talks to FakeAnthropic "
            f"at {fake.base_url}")
        say("(set ANTHROPIC_API_KEY to use the real API)")
        with tempfile.TemporaryDirectory(prefix="claudecode-demo-") as home:
            env = {"HOME": home, "CLAUDE_CONFIG_DIR": os.path.join(home, ".claude"),
                   **fake.env(max_retries=0)}
            yield {"env": env, "cwd": home, "include_partial_messages": True}


async def ask(session: str, prompt: str) -> str:
    """Stream one answer, printing the text as it arrives."""
    say(f"[{session}] > {prompt}")
    write(f"[{session}] < ")
    stream = claudecode.stream(session, prompt, timeout=60)
    async with stream:
        async for delta in stream.text_deltas():
            write(delta)
    end_line()
    return (stream.result.result or "") if stream.result is not None else ""


async def show_tree(sup: Any) -> None:
    rows = await claudecode.Supervisor.list_sessions(sup)
    say("  claude_sessions (claudecode.Supervisor, one_for_one)")
    for i, row in enumerate(rows):
        branch = "└──" if i == len(rows) - 1 else "├──"
        say(f"  {branch} {row.id:<10} {row.pid}")


async def kill_mid_stream(session: str) -> None:
    """Stream a long answer and SIGKILL the session's CLI after a few words."""
    info = await claudecode.adapter_info(session)
    say(f"[{session}] > {LONG_PROMPT}")
    write(f"[{session}] < ")
    deltas = 0
    try:
        async for delta in claudecode.stream(session, LONG_PROMPT, timeout=60).text_deltas():
            write(delta)
            deltas += 1
            if deltas == 8:
                os.kill(info["os_pid"], signal.SIGKILL)
                write(" <-- SIGKILL")
    except claudecode.StreamError as err:
        say(f"  the caller got a StreamError with a typed reason: {err.reason!r}")
        say(f"  {err}")
    else:
        raise RuntimeError("the stream was expected to fail")


async def main() -> int:
    started = time.monotonic()
    install_cli()  # the pinned CLI (a no-op when installed)
    say("claudecode demo: supervised Claude sessions that survive their CLI being killed\n")
    async with model_backend() as backend:
        configs = [{**backend, "name": name, "system_prompt": prompt}
                   for name, prompt in SESSIONS.items()]
        sup = await claudecode.Supervisor.start_link(configs, name="claude_sessions")
        say("\nThe supervision tree (each session starts its CLI on its first query):")
        await show_tree(sup)

        say("\n1. Sessions answer with streamed text; a session remembers its conversation.")
        await ask("assistant", "What is a supervision tree?")
        await ask("assistant", "And why does that help here?")
        await ask("reviewer", "Review: `def add(a, b): return a - b`")
        await ask("poet", "Write about restarts.")

        say("\n2. Kill the reviewer's CLI (SIGKILL to the real subprocess) mid-answer.")
        before = {name: otpy.whereis(name) for name in SESSIONS}
        os_pid = (await claudecode.adapter_info("reviewer"))["os_pid"]
        say(f"  reviewer {before['reviewer']} runs CLI os pid {os_pid}")
        await kill_mid_stream("reviewer")

        with trio.fail_after(10):
            while otpy.whereis("reviewer") in (None, before["reviewer"]):
                await trio.sleep(0.02)
        after = {name: otpy.whereis(name) for name in SESSIONS}
        say(f"  the supervisor restarted 'reviewer' under its name: {before['reviewer']} -> "
            f"{after['reviewer']}")
        untouched = all(after[n] == before[n] for n in SESSIONS if n != "reviewer")
        say(f"  siblings untouched: {untouched} (assistant {after['assistant']}, "
            f"poet {after['poet']})")
        await show_tree(sup)

        say("\n3. The restarted session answers again, with a fresh conversation.")
        await ask("reviewer", "Are you back?")
        say(f"  health: reviewer={await claudecode.health('reviewer')!r}, "
            f"assistant={await claudecode.health('assistant')!r}")

        say("\n4. Stop the tree: every session shuts its CLI down.")
        otpy.unlink(sup)
        await otpy.stop(sup, otpy.Shutdown())
        left = claude_processes()
        say(f"  claude processes left: {len(left)}")
    say(f"\nDone in {time.monotonic() - started:.1f} s.")
    return 1 if left else 0


if __name__ == "__main__":
    # Show the OTP-style reports of the crash and the restart, one line each.
    logging.basicConfig(level=logging.WARNING, handlers=[_LogToConsole()])
    sys.exit(otpy.run(main))
