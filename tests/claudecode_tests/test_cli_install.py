"""Installing and resolving the pinned Claude Code CLI.

The resolver is driven through its ``env`` parameter and through the
``claudecode`` command run as a subprocess with its own environment — never by
patching our code. One test performs a real npm install into a temporary
cache directory.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from claudecode._errors import ClaudeCodeError, CLINotFoundError
from claudecode._install import (
    CLI_DIR_ENV,
    MARKER_FILE,
    PINNED_CLI_VERSION,
    cli_root,
    cli_version,
    install_cli,
    install_dir,
    installed_cli,
    resolve_cli,
)


@pytest.fixture(scope="module")
def pinned() -> str:
    """The real pinned CLI (installed into the user cache if missing)."""
    return install_cli().path


@pytest.fixture(scope="module")
def real_root(pinned: str) -> str:
    """The cache root that holds the real pinned install."""
    return str(cli_root())


def _executable(directory: Path, name: str = "claude", version: str = "0.0.1") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\necho '{version} (Claude Code)'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _run_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "claudecode._cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cache_root_follows_the_environment(tmp_path: Path) -> None:
    assert cli_root({CLI_DIR_ENV: str(tmp_path)}) == tmp_path
    assert cli_root({"XDG_CACHE_HOME": "/x/cache"}) == Path("/x/cache/claudecode/cli")
    assert cli_root({"HOME": "/home/u"}) == Path("/home/u/.cache/claudecode/cli")
    assert install_dir("2.0.0", {CLI_DIR_ENV: str(tmp_path)}) == tmp_path / "2.0.0"
    with pytest.raises(ValueError):
        install_dir("../evil", {CLI_DIR_ENV: str(tmp_path)})


def test_explicit_cli_path_wins_over_pinned_and_path(tmp_path: Path, real_root: str) -> None:
    on_path = _executable(tmp_path / "bin")
    explicit = _executable(tmp_path / "elsewhere", "my-claude")
    env = {"PATH": str(on_path.parent), CLI_DIR_ENV: real_root}
    assert resolve_cli(str(explicit), env=env) == str(explicit)
    # A bare name is looked up on the given PATH.
    assert resolve_cli("claude", env=env) == str(on_path)
    with pytest.raises(CLINotFoundError, match="not an executable"):
        resolve_cli(str(tmp_path / "missing"), env=env)
    with pytest.raises(CLINotFoundError, match="claudecode install-cli"):
        resolve_cli("no-such-claude", env=env)


def test_pinned_install_wins_over_path(tmp_path: Path, pinned: str, real_root: str) -> None:
    on_path = _executable(tmp_path / "bin")
    env = {"PATH": str(on_path.parent), CLI_DIR_ENV: real_root}
    assert resolve_cli(env=env) == pinned
    assert resolve_cli("bundled", env=env) == pinned
    assert resolve_cli("global", env=env) == str(on_path)


def test_path_is_the_fallback(tmp_path: Path) -> None:
    on_path = _executable(tmp_path / "bin")
    env = {"PATH": str(on_path.parent), CLI_DIR_ENV: str(tmp_path / "empty-cache")}
    assert resolve_cli(env=env) == str(on_path)
    with pytest.raises(CLINotFoundError):
        resolve_cli("bundled", env=env)


def test_an_incomplete_install_is_ignored(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path / "nobin"), CLI_DIR_ENV: str(tmp_path / "cache")}
    version_dir = install_dir(PINNED_CLI_VERSION, env)
    fake_binary = _executable(version_dir / "node_modules" / "x")
    assert installed_cli(PINNED_CLI_VERSION, env) is None  # no marker yet
    marker = {"binary": "node_modules/x/claude"}
    (version_dir / MARKER_FILE).write_text(json.dumps(marker))
    assert installed_cli(PINNED_CLI_VERSION, env) == str(fake_binary)
    # A marker pointing outside the version directory is not trusted.
    (version_dir / MARKER_FILE).write_text(json.dumps({"binary": "../../elsewhere/claude"}))
    assert installed_cli(PINNED_CLI_VERSION, env) is None


def test_nothing_found_names_the_install_command(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {"PATH": str(empty_bin), CLI_DIR_ENV: str(tmp_path / "cache")}
    with pytest.raises(CLINotFoundError) as info:
        resolve_cli(env=env)
    assert "claudecode install-cli" in str(info.value)
    assert isinstance(info.value, ClaudeCodeError)
    assert str(install_dir(PINNED_CLI_VERSION, env)) in info.value.searched

    proc_env = {**env, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = _run_command("cli-path", env=proc_env)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "claudecode install-cli" in proc.stderr


def test_cli_version_of_the_pinned_copy(pinned: str, tmp_path: Path) -> None:
    assert cli_version(pinned) == PINNED_CLI_VERSION
    silent = tmp_path / "silent"
    silent.write_text("#!/bin/sh\nexit 3\n")
    silent.chmod(0o755)
    with pytest.raises(CLINotFoundError, match="exited 3"):
        cli_version(str(silent))
    with pytest.raises(CLINotFoundError):
        cli_version(str(tmp_path / "absent"))


def test_install_cli_command_is_idempotent_and_prints_the_path(pinned: str, real_root: str) -> None:
    env = {**os.environ, CLI_DIR_ENV: real_root}
    proc = _run_command("install-cli", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == pinned
    assert "already installed" in proc.stderr
    proc = _run_command("cli-path", "--show-version", env=env)
    assert proc.stdout.split() == [pinned, PINNED_CLI_VERSION]


def test_real_install_into_an_empty_cache_then_uninstall(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, CLI_DIR_ENV: str(cache)}
    proc = _run_command("install-cli", env=env)
    assert proc.returncode == 0, proc.stderr
    path = proc.stdout.strip()
    assert path.startswith(str(cache / PINNED_CLI_VERSION))
    assert cli_version(path) == PINNED_CLI_VERSION
    marker = json.loads((cache / PINNED_CLI_VERSION / MARKER_FILE).read_text())
    assert marker["version"] == PINNED_CLI_VERSION
    assert sorted(p.name for p in cache.iterdir()) == [PINNED_CLI_VERSION]  # no leftovers
    assert resolve_cli(env={"PATH": "", CLI_DIR_ENV: str(cache)}) == path

    proc = _run_command("uninstall-cli", env=env)
    assert proc.returncode == 0 and "removed" in proc.stdout
    assert not (cache / PINNED_CLI_VERSION).exists()
    proc = _run_command("uninstall-cli", env=env)
    assert proc.returncode == 0 and "nothing to remove" in proc.stderr
