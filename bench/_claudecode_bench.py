"""Shared pieces of the claudecode session benchmarks (claudecode_turns, remote_sessions).

* :class:`FakeServer`: a :class:`~claudecode.testing.FakeAnthropic` in its own
  OS process (``python bench/_claudecode_bench.py fake TEXT``), so its cost is
  outside every measured process and all of them talk to the same server;
  every ``POST /v1/messages`` is answered with the same short text.
* :func:`stub_executable`: bench/_stub_cli.py as a CLI executable (answers at
  once), to measure a driver's own overhead without the CLI's ~30 ms;
* :func:`sdk_python`: the claude-agent-sdk virtualenv the comparisons use;
* private ``HOME`` environments, RSS from ``/proc/self/statm``, percentiles,
  and a scan for ``claude`` processes (to prove none is left behind).
"""

from __future__ import annotations

import atexit
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

HERE = Path(__file__).resolve().parent
REPLY = "pong"
"""The fixed text every benchmark turn gets from the fake model."""
ECHO = "@echo"
"""`FakeServer` text that makes it echo (``echo #N: prompt``, N = messages sent)."""
SYSTEM_PROMPT = "Answer briefly."
"""The same explicit system prompt for every implementation (the CLI sends it each turn)."""
PAGE = os.sysconf("SC_PAGE_SIZE")
SDK_VERSION = "0.2.187"
"""The claude-agent-sdk version the comparisons run against (its own virtualenv)."""


def cli_path() -> str:
    """The pinned Claude Code CLI (installed into the user cache on first use).

    Returns:
        Its absolute path.
    """
    from claudecode._install import install_cli

    return str(install_cli().path)


def sdk_python() -> str:
    """The claude-agent-sdk virtualenv's python, under ``$BENCH_DIR`` (default
    /tmp/otpy-bench), created on first use.

    Returns:
        Its path.
    """
    venv = Path(os.environ.get("BENCH_DIR", "/tmp/otpy-bench")) / "venv-sdk"
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"setting up {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q",
                        f"claude-agent-sdk=={SDK_VERSION}"], check=True)
    return str(py)


def rss_bytes() -> int:
    """Resident set size of this process, from ``/proc/self/statm``.

    Returns:
        Bytes.
    """
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def proc_rss_kib(pid: int) -> dict[str, int]:
    """``VmRSS``/``RssAnon``/``RssFile`` of another process, in KiB.

    Args:
        pid: the process.

    Returns:
        The three values (missing ones as 0).
    """
    out = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in out:
                out[key] = int(rest.split()[0])
    return out


def proc_cpu_seconds(pid: int) -> float:
    """user + sys CPU time a process has used so far (0.0 if it is gone).

    Args:
        pid: the process.

    Returns:
        Seconds.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mem_available_kib() -> int:
    """``MemAvailable`` from ``/proc/meminfo``.

    Returns:
        KiB.
    """
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def pct(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``samples``, nearest rank.

    Args:
        samples: values.
        q: quantile.

    Returns:
        The value.
    """
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def median(samples: list[float]) -> float:
    """Median (shorthand).

    Args:
        samples: values.

    Returns:
        The median.
    """
    return statistics.median(samples)


def median_ci(samples: list[float], resamples: int = 2000, seed: int = 1
              ) -> tuple[float, float]:
    """A 95% bootstrap confidence interval of the median.

    Args:
        samples: values.
        resamples: bootstrap resamples.
        seed: for a reproducible interval.

    Returns:
        ``(low, high)``.
    """
    rng = random.Random(seed)
    n = len(samples)
    meds = sorted(statistics.median(rng.choices(samples, k=n)) for _ in range(resamples))
    return meds[int(0.025 * resamples)], meds[int(0.975 * resamples) - 1]


_TEMP_DIRS: list[str] = []


def _remove_temp_dirs() -> None:
    for path in _TEMP_DIRS:
        shutil.rmtree(path, ignore_errors=True)


def temp_dir(prefix: str) -> Path:
    """A temporary directory removed when this process exits.

    Args:
        prefix: name prefix.

    Returns:
        Its path.
    """
    if not _TEMP_DIRS:
        atexit.register(_remove_temp_dirs)
    path = tempfile.mkdtemp(prefix=prefix)
    _TEMP_DIRS.append(path)
    return Path(path)


def private_env(fake_env: dict[str, str], prefix: str) -> tuple[dict[str, str], str]:
    """A fresh temporary HOME (and config dir) plus a working directory.

    Args:
        fake_env: the variables that point the CLI at the fake.
        prefix: temp dir prefix.

    Returns:
        ``(env for the CLI, cwd)``.
    """
    root = temp_dir(prefix)
    (root / "home").mkdir()
    (root / "work").mkdir()
    env = {"HOME": str(root / "home"), "CLAUDE_CONFIG_DIR": str(root / "home" / ".claude"),
           **fake_env}
    return env, str(root / "work")


def claude_processes() -> dict[int, int]:
    """Live (non-zombie) processes named ``claude``.

    Returns:
        pid -> parent pid.
    """
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        comm = stat[stat.index(b"(") + 1:stat.rindex(b")")]
        fields = stat[stat.rindex(b")") + 2:].split()
        if comm == b"claude" and fields[0] != b"Z":
            found[int(entry)] = int(fields[1])
    return found


def _cpu_ticks() -> tuple[int, int]:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_busy(interval: float = 1.0) -> float:
    """Share of all CPUs busy over ``interval`` seconds (from ``/proc/stat``).

    Args:
        interval: seconds to sample.

    Returns:
        0.0 .. 1.0.
    """
    busy0, total0 = _cpu_ticks()
    time.sleep(interval)
    busy1, total1 = _cpu_ticks()
    return (busy1 - busy0) / max(1, total1 - total0)


def wait_quiet(limit: float = 60.0, threshold: float = 0.2) -> str:
    """Wait (bounded) until the machine is mostly idle, so other work skews less.

    Args:
        limit: seconds to wait at most.
        threshold: busy share counted as quiet.

    Returns:
        A note on the load seen (for the printed caveats).
    """
    t0 = time.monotonic()
    busy = cpu_busy()
    while busy > threshold and time.monotonic() - t0 < limit:
        busy = cpu_busy()
    waited = time.monotonic() - t0
    note = f"CPU {busy:.0%} busy before start"
    if waited > 2 and busy <= threshold:
        note += f" (after waiting {waited:.0f} s for other work to finish)"
    if busy > threshold:
        note += f" (still busy after waiting {waited:.0f} s: other work shares the 2 cores)"
    return note


class LoadMeter:
    """How much CPU other processes took while a benchmark ran.

    Machine-wide busy time (``/proc/stat``) minus this process's and its
    waited-for descendants' CPU time (``os.times``); read it after every
    child has been waited for.
    """

    def __init__(self) -> None:
        self.busy0 = _cpu_ticks()[0]
        self.own0 = self._own()
        self.wall0 = time.monotonic()

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def report(self) -> str:
        """A sentence for the printed caveats.

        Returns:
            Other processes' CPU seconds against what was available.
        """
        busy = (_cpu_ticks()[0] - self.busy0) / os.sysconf("SC_CLK_TCK")
        own = self._own() - self.own0
        avail = (time.monotonic() - self.wall0) * (os.cpu_count() or 1)
        others = max(0.0, busy - own)
        return (f"this benchmark used {own:.0f} CPU s; other processes on the machine "
                f"{others:.0f} CPU s, of {avail:.0f} available ({others / avail:.0%})")


def stub_executable() -> str:
    """An executable that runs bench/_stub_cli.py with this interpreter.

    Returns:
        Its path (in a temporary directory).
    """
    path = temp_dir("cc-stub-") / "claude-stub"
    path.write_text(f"#!/bin/sh\nexec {sys.executable} -S -E {HERE / '_stub_cli.py'} \"$@\"\n")
    path.chmod(0o755)
    return str(path)


class FakeServer:
    """FakeAnthropic in a child process; use as a context manager.

    Attributes:
        env: the variables pointing a CLI at it (``fake.env(max_retries=0)``).
        proc: the child process.
    """

    def __init__(self, text: str = REPLY) -> None:
        self.text = text
        self.env: dict[str, str] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> FakeServer:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__)), "fake", self.text],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(HERE.parent)})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith(b"@@FAKE "):
            raise RuntimeError("the fake Anthropic server did not start")
        self.env = json.loads(line[len(b"@@FAKE "):])
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _serve_fake(text: str) -> None:
    import trio

    from claudecode.testing import Echo, FakeAnthropic, Text

    default = Echo() if text == ECHO else Text(text)

    async def main() -> None:
        async with FakeAnthropic.serve(log_requests=False, default=default) as fake:
            print("@@FAKE " + json.dumps(fake.env(max_retries=0)), flush=True)
            # Serve until the parent closes our stdin; forget the recorded
            # requests now and then so a long run does not grow.
            stdin = trio.lowlevel.FdStream(os.dup(0))
            async with trio.open_nursery() as nursery:
                async def prune() -> None:
                    while True:
                        await trio.sleep(1.0)
                        fake.requests.clear()

                nursery.start_soon(prune)
                while await stdin.receive_some(4096):
                    pass
                nursery.cancel_scope.cancel()

    trio.run(main)


def json_line(obj: dict[str, Any]) -> None:
    """Print one JSON result line (what the orchestrators read).

    Args:
        obj: the result.
    """
    print("@@RESULT " + json.dumps(obj), flush=True)


def read_result(stdout: str) -> dict[str, Any]:
    """The ``@@RESULT`` line of a runner's output.

    Args:
        stdout: the runner's stdout.

    Returns:
        The parsed result.
    """
    for line in reversed(stdout.splitlines()):
        if line.startswith("@@RESULT "):
            return json.loads(line[len("@@RESULT "):])  # type: ignore[no-any-return]
    raise RuntimeError(f"no result line in: {stdout[-500:]!r}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "fake":
        _serve_fake(sys.argv[2])
    else:
        sys.exit(f"usage: {sys.argv[0]} fake TEXT")
