"""Install, locate and identify the pinned Claude Code CLI.

The project tests against one exact CLI version, :data:`PINNED_CLI_VERSION`,
taken from the npm package ``@anthropic-ai/claude-code``. That package ships the
CLI as a self-contained native executable (in a per-platform optional
dependency such as ``@anthropic-ai/claude-code-linux-x64``), so after the
install no network and no Node.js are needed to run it.

Layout of the cache::

    <root>/                      $CLAUDECODE_CLI_DIR, else
                                 $XDG_CACHE_HOME/claudecode/cli, else
                                 ~/.cache/claudecode/cli
      <version>/
        install.json             written last: its presence marks a complete install
        node_modules/...         what npm installed

:func:`resolve_cli` picks the executable a session runs: an explicit
``cli_path`` first, then the installed pinned copy, then ``claude`` on ``PATH``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from claudecode._errors import CLIInstallError, CLINotFoundError

PINNED_CLI_VERSION = "2.1.328"
"""The exact Claude Code CLI version this package is tested with."""

NPM_PACKAGE = "@anthropic-ai/claude-code"
"""The npm package the CLI is installed from."""

CLI_DIR_ENV = "CLAUDECODE_CLI_DIR"
"""Environment variable that overrides the root of the CLI cache."""

MARKER_FILE = "install.json"
"""File written into a version directory once its install is complete."""

BUNDLED = "bundled"
"""``cli_path`` value meaning: only the installed pinned copy."""

GLOBAL = "global"
"""``cli_path`` value meaning: only ``claude`` found on ``PATH``."""

_VERSION_RE = re.compile(r"(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?)")
_SAFE_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+-]*$")


@attrs.frozen
class InstallResult:
    """Outcome of :func:`install_cli`.

    Attributes:
        path: absolute path of the installed ``claude`` executable.
        version: the CLI version installed.
        directory: the version directory holding the install.
        installed: ``True`` when this call installed it, ``False`` when an
            existing complete install was reused.
        seconds: wall time the call took.
    """

    path: str
    version: str
    directory: Path
    installed: bool
    seconds: float


def _environ(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _check_version(version: str) -> str:
    if not _SAFE_VERSION_RE.match(version) or ".." in version:
        raise ValueError(f"not a valid CLI version: {version!r}")
    return version


def cli_root(env: Mapping[str, str] | None = None) -> Path:
    """Return the root directory under which CLI versions are installed.

    Args:
        env: environment to read (``CLAUDECODE_CLI_DIR``, ``XDG_CACHE_HOME``,
            ``HOME``); defaults to ``os.environ``.

    Returns:
        ``$CLAUDECODE_CLI_DIR`` if set and non-empty, else
        ``$XDG_CACHE_HOME/claudecode/cli``, else ``~/.cache/claudecode/cli``.
    """
    e = _environ(env)
    override = e.get(CLI_DIR_ENV, "")
    if override:
        return Path(override).expanduser()
    xdg = e.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "claudecode" / "cli"
    home = e.get("HOME", "") or str(Path.home())
    return Path(home) / ".cache" / "claudecode" / "cli"


def install_dir(version: str = PINNED_CLI_VERSION, env: Mapping[str, str] | None = None) -> Path:
    """Return the directory that holds (or would hold) one CLI version.

    Args:
        version: the CLI version.
        env: environment used to locate the cache root (see :func:`cli_root`).

    Returns:
        ``cli_root(env) / version``.
    """
    return cli_root(env) / _check_version(version)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def installed_cli(
    version: str = PINNED_CLI_VERSION, env: Mapping[str, str] | None = None
) -> str | None:
    """Return the executable of a complete install of ``version``, if any.

    Only installs whose marker file exists count, so a half-finished or
    interrupted install is never picked up.

    Args:
        version: the CLI version to look for.
        env: environment used to locate the cache root.

    Returns:
        The absolute path of the executable, or ``None``.
    """
    directory = install_dir(version, env)
    try:
        marker = json.loads((directory / MARKER_FILE).read_text("utf-8"))
        rel = marker["binary"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(rel, str):
        return None
    binary = (directory / rel).resolve()
    if directory.resolve() not in binary.parents or not _is_executable(binary):
        return None
    return str(binary)


def cli_version(path: str, *, env: Mapping[str, str] | None = None, timeout: float = 30.0) -> str:
    """Run ``<path> --version`` and return the version number it prints.

    Args:
        path: the ``claude`` executable.
        env: environment for the child process; defaults to ``os.environ``.
        timeout: seconds to wait for the command.

    Returns:
        The version, e.g. ``"2.1.328"`` (from output like ``2.1.328 (Claude Code)``).

    Raises:
        CLINotFoundError: the executable cannot be run, fails, or prints no version.
    """
    try:
        proc = subprocess.run(
            [path, "--version"],
            env=dict(_environ(env)),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise CLINotFoundError(f"cannot run {path} --version: {exc}") from exc
    match = _VERSION_RE.search(proc.stdout)
    if proc.returncode != 0 or match is None:
        tail = (proc.stdout + proc.stderr).strip()[-500:]
        raise CLINotFoundError(
            f"{path} --version exited {proc.returncode} without a version: {tail!r}"
        )
    return match.group(1)


def _find_binary(prefix: Path) -> Path | None:
    """Find the native CLI inside an npm prefix.

    The per-platform package's own executable is preferred: it exists whether
    or not npm ran the wrapper package's postinstall script (which only copies
    it over a placeholder in ``bin/claude.exe``).
    """
    scope = prefix / "node_modules" / "@anthropic-ai"
    candidates: list[Path] = []
    if scope.is_dir():
        for pkg in sorted(scope.iterdir()):
            if pkg.name.startswith("claude-code-"):
                candidates += [pkg / "claude", pkg / "claude.exe"]
    candidates.append(scope / "claude-code" / "bin" / "claude.exe")
    for candidate in candidates:
        if _is_executable(candidate):
            return candidate
    return None


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def install_cli(
    version: str = PINNED_CLI_VERSION,
    *,
    force: bool = False,
    env: Mapping[str, str] | None = None,
    npm: str | None = None,
    log: Callable[[str], None] | None = None,
) -> InstallResult:
    """Install one exact CLI version from npm into the cache (idempotent).

    npm installs into a temporary sibling directory that is renamed into place
    only after the executable answered ``--version`` with the expected version,
    so an interrupted install never looks complete. Concurrent installers are
    safe: the loser of the final rename reuses the winner's install.

    Args:
        version: the exact CLI version to install.
        force: reinstall even if a complete install exists.
        env: environment for locating the cache and running npm.
        npm: the npm executable; found on ``PATH`` when omitted.
        log: called with progress lines (e.g. ``print`` to stderr).

    Returns:
        An :class:`InstallResult`.

    Raises:
        CLIInstallError: npm is missing, fails, or installs no usable CLI.
    """
    started = time.monotonic()
    say = log or (lambda _line: None)
    e = dict(_environ(env))
    target = install_dir(version, e)
    existing = installed_cli(version, e)
    if existing is not None and not force:
        say(f"Claude Code CLI {version} already installed at {existing}")
        return InstallResult(existing, version, target, False, time.monotonic() - started)

    npm_exe = npm or shutil.which("npm", path=e.get("PATH"))
    if npm_exe is None:
        raise CLIInstallError(
            "npm not found on PATH; install Node.js/npm to install the Claude Code CLI"
        )
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.partial-", dir=root))
    try:
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp makes it 0700; installs are shareable
        # A package.json of its own stops npm from walking up to a parent project.
        (staging / "package.json").write_text('{"private": true}\n', "utf-8")
        cmd = [
            npm_exe,
            "install",
            "--prefix",
            str(staging),
            "--no-save",
            "--no-package-lock",
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
            "--include=optional",
            "--loglevel=warn",
            f"{NPM_PACKAGE}@{version}",
        ]
        say(f"Installing {NPM_PACKAGE}@{version} into {target} ...")
        try:
            proc = subprocess.run(
                cmd, env=e, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
            )
        except OSError as exc:
            raise CLIInstallError(f"cannot run npm ({npm_exe}): {exc}") from exc
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise CLIInstallError(f"npm install exited {proc.returncode}", _tail(output))
        binary = _find_binary(staging)
        if binary is None:
            raise CLIInstallError(
                "npm installed no native Claude Code executable for this platform", _tail(output)
            )
        try:
            got = cli_version(str(binary), env=e)
        except CLINotFoundError as exc:
            raise CLIInstallError(f"the installed CLI does not run: {exc}", _tail(output)) from exc
        if got != version:
            raise CLIInstallError(f"npm installed CLI version {got}, expected {version}")
        marker = {
            "version": version,
            "package": NPM_PACKAGE,
            "binary": str(binary.relative_to(staging)),
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (staging / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", "utf-8")
        _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    path = installed_cli(version, e)
    if path is None:  # pragma: no cover - only if someone deletes it under our feet
        raise CLIInstallError(f"install of {version} vanished from {target}")
    say(f"Installed Claude Code CLI {version} at {path}")
    return InstallResult(path, version, target, True, time.monotonic() - started)


def _move_into_place(staging: Path, target: Path) -> None:
    old: Path | None = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except OSError:
        if (target / MARKER_FILE).exists():
            return  # another installer finished first: keep its complete install
        if old is not None:
            os.replace(old, target)  # put the previous install back
            old = None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def uninstall_cli(
    version: str | None = PINNED_CLI_VERSION, env: Mapping[str, str] | None = None
) -> list[Path]:
    """Remove installed CLI versions from the cache.

    Args:
        version: the version to remove; ``None`` removes every version (the
            whole cache root).
        env: environment used to locate the cache root.

    Returns:
        The directories that were removed (empty if nothing was installed).
    """
    if version is None:
        root = cli_root(env)
        removed = sorted(p for p in root.iterdir()) if root.is_dir() else []
        for path in removed:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        return removed
    target = install_dir(version, env)
    if not target.exists():
        return []
    shutil.rmtree(target)
    return [target]


def _which(name: str, env: Mapping[str, str]) -> str | None:
    # An unset PATH means "no PATH search", not the process's own PATH.
    return shutil.which(name, path=env.get("PATH", ""))


def resolve_cli(cli_path: str | None = None, *, env: Mapping[str, str] | None = None) -> str:
    """Choose the ``claude`` executable to run.

    Order: an explicit ``cli_path``; else the installed pinned version
    (:data:`PINNED_CLI_VERSION`, see :func:`install_cli`); else ``claude`` on
    ``PATH``. Two special ``cli_path`` values restrict the search:
    ``"bundled"`` (only the installed pinned copy) and ``"global"`` (only
    ``PATH``).

    Args:
        cli_path: a path to an executable, a command name looked up on
            ``PATH``, ``"bundled"``, ``"global"``, or ``None``.
        env: environment to read ``PATH`` and the cache location from;
            defaults to ``os.environ``.

    Returns:
        The absolute path of the executable.

    Raises:
        CLINotFoundError: nothing usable was found; the message names
            ``claudecode install-cli``.
    """
    e = _environ(env)
    searched: list[str] = []
    if cli_path is not None and cli_path not in (BUNDLED, GLOBAL):
        expanded = os.path.expanduser(cli_path)
        if os.sep in expanded or (os.altsep and os.altsep in expanded):
            candidate = Path(expanded)
            if _is_executable(candidate):
                return str(candidate.resolve())
            raise CLINotFoundError(
                f"cli_path {cli_path!r} is not an executable file", (str(candidate),)
            )
        found = _which(expanded, e)
        if found is not None:
            return os.path.abspath(found)
        raise CLINotFoundError(f"cli_path {cli_path!r} was not found on PATH", ("PATH",))
    if cli_path in (None, BUNDLED):
        pinned = installed_cli(PINNED_CLI_VERSION, e)
        if pinned is not None:
            return pinned
        searched.append(str(install_dir(PINNED_CLI_VERSION, e)))
    if cli_path in (None, GLOBAL):
        found = _which("claude", e)
        if found is not None:
            return os.path.abspath(found)
        searched.append("claude on PATH")
    raise CLINotFoundError(f"Claude Code CLI {PINNED_CLI_VERSION} not found", tuple(searched))
