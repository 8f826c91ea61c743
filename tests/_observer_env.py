"""The node the observer tests observe: tests/_observed_node.py in its own OS process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from _dist_erl import unique

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COOKIE = "observer_cookie"


class ObservedNode:
    """tests/_observed_node.py in its own OS process."""

    def __init__(self, epmd_port: int, tmp: Path, *extra: str) -> None:
        self.name = f"{unique('observed')}@localhost"
        self.cookie_file = tmp / "cookie"
        self.cookie_file.write_text(COOKIE + "\n")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_observed_node.py"), self.name, str(self.cookie_file),
             str(epmd_port), *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(HERE)})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("@@READY"):
            self.stop()
            raise RuntimeError(f"the observed node did not start: {line!r}")

    def command(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().decode().strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
