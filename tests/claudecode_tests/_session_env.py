"""Shared fixtures for the session-layer tests: FakeAnthropic, a private HOME, no orphans.

Import the fixtures into a test module by name (``from _session_env import
fake, no_orphans, opts``): pytest finds fixtures in the module's namespace.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from claudecode._install import install_cli
from claudecode.testing import FakeAnthropic
from claudecode.testing._session_faults import alive_os as alive
from claudecode.testing._session_faults import processes_using

CLI = install_cli().path
"""The pinned CLI (installed into the user cache on first use)."""


def cli_children() -> list[int]:
    """Pids of CLI processes (running or zombie) whose parent is this test process.

    Found by scanning ``/proc``: ``stat`` gives the parent and the command
    name, ``cmdline`` the executable.
    """
    me = os.getpid()
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0", 1)[0].decode("utf-8", "replace")
        except OSError:
            continue
        comm = stat[stat.index(b"(") + 1:stat.rindex(b")")]
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        if ppid == me and (argv0 == CLI or comm == b"claude"):
            found.append(int(entry))
    return found


@pytest.fixture(autouse=True)
def no_orphans() -> Iterator[None]:
    """Fail the test if it leaves a CLI process (or an unreaped zombie) behind."""
    before = set(cli_children())
    yield
    left = set(cli_children()) - before
    assert not left, f"orphan CLI processes left behind: {sorted(left)}"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    """A running FakeAnthropic (quiet)."""
    async with FakeAnthropic.serve(log_requests=False) as server:
        yield server


@pytest.fixture
def opts(fake: FakeAnthropic, tmp_path: Path) -> dict[str, Any]:
    """Session options pointing the real CLI at the fake, with a private HOME and cwd."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        **fake.env(max_retries=0),
    }
    return {"env": env, "cwd": str(work), "cli_path": CLI}


__all__ = ["CLI", "alive", "cli_children", "fake", "no_orphans", "opts", "processes_using"]
