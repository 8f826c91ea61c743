"""The ``examples/web_chat`` server as its tests start it (``--port 0 --offline``).

Shared by ``test_web_chat.py`` (the story of two pages) and
``test_web_chat_attacks.py`` (its threat model, tested as an attacker would).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [  # playwright adds --headless and a fresh --user-data-dir itself
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WAIT_MS = 30_000  # the longest any one expectation may take (a loaded 2-core machine)


class Server:
    """The example's server process, started as a user starts it."""

    def __init__(self, tmp_path: Path, *options: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
        self.stderr_path = tmp_path / "server.stderr"
        with self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "examples/web_chat/app.py", "--port", "0", "--offline",
                 *options],
                cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=stderr,
            )
        self.lines: list[str] = []
        self.pending = b""
        try:
            self.fake_url = self.expect_line(r"FakeAnthropic at (http://\S+)").group(1)
            self.url = self.expect_line(r"serving on (http://\S+)").group(1)
        except BaseException:
            self.stop()
            raise

    def shutdown(self) -> None:
        """Stop the server as a user does (SIGTERM): its CLIs and temporary HOME go with it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
        self.stop()

    def stop(self) -> None:
        """Kill the server if it is still running (the test failed midway); close its pipe."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def expect_line(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Read stdout lines (unbuffered, from the pipe) until one matches ``pattern``."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                while b"\n" in self.pending:
                    raw, self.pending = self.pending.split(b"\n", 1)
                    line = raw.decode(errors="replace")
                    self.lines.append(line)
                    if found := re.search(pattern, line):
                        return found
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    break
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self.pending += chunk
        raise AssertionError(f"no line matching {pattern!r}; stdout: {self.lines}, "
                             f"stderr: {self.stderr()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.load(response)
