"""claude-agent-sdk parity, part 4: options, live stderr, ``python -m claudecode``.

Each option is checked where it lands: in the request the real CLI sends to
FakeAnthropic, in the CLI's own behaviour, or in the CLI process itself.
"""

from __future__ import annotations

import io
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _session_env import CLI, fake, no_orphans, opts

import claudecode
import otpy
from claudecode.testing import FakeAnthropic, Text, Turn

__all__ = ["fake", "no_orphans", "opts"]  # fixtures used by name


def _skill(root: Path, name: str, description: str) -> None:
    folder = root / ".claude" / "skills" / name
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text(f"---\nname: {name}\ndescription: {description}\n---\n"
                                     "Do it.\n")


async def test_stderr_lines_arrive_live_and_prompt_options_reach_the_api(
        opts: dict[str, Any], fake: FakeAnthropic, tmp_path: Path) -> None:
    prompt_file = tmp_path / "prompt.md"
    prompt_file.write_text("You answer in exactly three words.")
    _skill(Path(opts["cwd"]), "greeter", "Greets people warmly")
    _skill(Path(opts["cwd"]), "other", "Counts the stars")
    lines: list[str] = []
    copy = io.StringIO()
    fake.script(Turn([Text("three word answer")], delay=0.3))
    async with otpy.open_node():
        session = await claudecode.start_link(
            system_prompt={"type": "file", "path": prompt_file}, task_budget={"total": 20000},
            skills=["greeter"], extra_args={"debug-to-stderr": None},
            stderr=lines.append, debug_stderr=copy, **opts)
        seen_before: list[int] = []

        def note(message: claudecode.Message) -> None:
            if isinstance(message, claudecode.AssistantMessage):
                seen_before.append(len(lines))

        text = await claudecode.stream(session, "hi").tap(note).final_text()
        assert text == "three word answer"
        # the CLI's stderr reached the callback while the turn ran, line by line
        assert seen_before and seen_before[0] > 0
        assert any("[API REQUEST] /v1/messages" in line for line in lines[:seen_before[0]])
        assert all("\n" not in line for line in lines)
        assert copy.getvalue().splitlines()[:len(lines)] == lines
        request = fake.messages_requests[-1]
        assert "You answer in exactly three words." in request.system_text
        assert request.json["output_config"]["task_budget"] == {"type": "tokens",
                                                                "total": 20000}
        assert "task-budgets" in request.headers["anthropic-beta"]
        body = json.dumps(request.json)
        assert "Greets people warmly" in body and "Counts the stars" not in body
        await claudecode.stop(session)

        session = await claudecode.start_link(
            system_prompt={"type": "preset", "preset": "claude_code",
                           "append": "Always mention otters."}, **opts)
        await claudecode.stream(session, "hi").final_text()
        system = fake.messages_requests[-1].system_text
        assert "Always mention otters." in system
        assert "You answer in exactly three words." not in system
        assert len(system) > 2000  # the CLI's own prompt is there too
        await claudecode.stop(session)


async def test_resume_drops_turn_guards_a_truncating_resume(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        session = await claudecode.start_link(replay_user_messages=True, **opts)
        first = [m async for m in claudecode.stream(session, "first")]
        second = [m async for m in claudecode.stream(session, "second")]
        sid = await claudecode.get_session_id(session)
        await claudecode.stop(session)
        keep = [m for m in first if isinstance(m, claudecode.AssistantMessage)][-1].uuid
        prompt = [m for m in second if isinstance(m, claudecode.UserMessage) and m.is_replay]
        drops = prompt[0].uuid
        assert keep and drops

        lines: list[str] = []
        wrong = await claudecode.start(resume=sid, resume_session_at=keep, fork_session=True,
                                       resume_drops_turn="00000000-0000-4000-8000-000000000009",
                                       stderr=lines.append, **opts)
        with pytest.raises((claudecode.ResultError, claudecode.StreamError)):
            await claudecode.stream(wrong, "third").final_text()
        assert any("Resume rejected by --resume-drops-turn" in line for line in lines)
        if await claudecode.alive(wrong):
            await claudecode.stop(wrong)

        right = await claudecode.start_link(resume=sid, resume_session_at=keep,
                                            fork_session=True, resume_drops_turn=drops, **opts)
        # the second turn is gone: the model sees the first prompt, its answer, this one
        assert await claudecode.stream(right, "third").final_text() == "echo #4: third"
        await claudecode.stop(right)


@pytest.fixture
def world_readable() -> Iterator[Path]:
    """A temp directory other users can enter (pytest's own tmp dirs are private)."""
    path = Path(tempfile.mkdtemp(prefix="claudecode-user-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_user_runs_the_cli_as_another_os_user(opts: dict[str, Any],
                                                    world_readable: Path) -> None:
    user = "nobody" if os.getuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
    entry = pwd.getpwnam(user)
    cli = world_readable / "claude"
    os.link(CLI, cli)  # the pinned CLI, where that user can reach it
    home = world_readable / "home"
    work = world_readable / "work"
    for folder in (home, work):
        folder.mkdir()
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    env = {**opts["env"], "HOME": str(home), "CLAUDE_CONFIG_DIR": str(home / ".claude")}
    async with otpy.open_node():
        session = await claudecode.start_link(user=user, env=env, cwd=str(work),
                                              cli_path=str(cli))
        assert (await claudecode.stream(session, "who?").final_text()).startswith("echo #2")
        os_pid = (await claudecode.adapter_info(session))["os_pid"]
        status = Path(f"/proc/{os_pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1] == str(entry.pw_uid)
        # its transcript belongs to that user
        [transcript] = list((home / ".claude" / "projects").rglob("*.jsonl"))
        assert transcript.stat().st_uid == entry.pw_uid
        await claudecode.stop(session)
        with pytest.raises(claudecode.OptionError):
            await claudecode.start_link(
                user="x", adapter=claudecode.adapters.Node("sbx@nowhere"), cwd="/tmp")


def test_python_dash_m_claudecode_is_the_command() -> None:
    done = subprocess.run([sys.executable, "-m", "claudecode", "cli-path", "--cli-path", CLI],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == CLI
    usage = subprocess.run([sys.executable, "-m", "claudecode", "--help"], capture_output=True,
                           text=True, timeout=60, check=False)
    assert usage.returncode == 0 and "install-cli" in usage.stdout
    assert usage.stdout.startswith("usage: claudecode")
