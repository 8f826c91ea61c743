"""Test helpers that run real Erlang programs: a private ``epmd`` and ``erl`` nodes.

`Epmd` starts ``epmd -port <free port>`` in the foreground (so the suite never
touches a system EPMD on 4369) and kills it by pid. `ErlNode` starts
``erl -noshell`` with a tiny read-eval-print loop on stdin: each line written
is an Erlang expression sequence, and the node answers one line
``@@RES ok <term>`` or ``@@RES error <term>`` (terms printed with ``~w``).
Other output (logger reports) is kept in ``ErlNode.log``.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import time

import trio

# The REPL program, free_port, unique and ErlEvalError are the plugin's
# (otpy.testing._peers); the classes here keep the blocking API these tests use.
from otpy.testing._peers import _REPL, ErlEvalError, free_port, unique  # noqa: F401


class Epmd:
    """A private ``epmd`` process on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["epmd", "-port", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("epmd did not start") from None
                time.sleep(0.02)

    def names_cli(self) -> str:
        """Run the real ``epmd -names`` client against this port."""
        return subprocess.run(
            ["epmd", "-port", str(self.port), "-names"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout

    def stop(self) -> None:
        """Kill the epmd process."""
        self.proc.kill()
        self.proc.wait(5)


class ErlNode:
    """A real ``erl`` node driven through a read-eval-print loop on stdin."""

    def __init__(
        self,
        name: str,
        cookie: str,
        epmd_port: int,
        *,
        longnames: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        env = dict(os.environ, ERL_EPMD_PORT=str(epmd_port))
        cmd = [
            "erl",
            "-noshell",
            "-start_epmd",
            "false",
            "-name" if longnames else "-sname",
            name,
            "-setcookie",
            cookie,
            *extra_args,
            "-eval",
            _REPL,
        ]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd="/tmp",
        )
        self.cookie = cookie
        self.log: list[str] = []
        self._buf = b""
        ready = self._read_until("@@READY ", 30)
        self.node = ready.strip().strip("'")

    def _read_line(self, deadline: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"erl did not answer; output so far: {self.log[-20:]}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError(f"erl exited; output: {self.log[-20:]}")
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("utf-8", "replace")

    def _read_until(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self._read_line(deadline)
            if line.startswith(prefix):
                return line[len(prefix) :]
            self.log.append(line)

    def eval(self, expr: str, timeout: float = 15.0) -> str:
        """Evaluate ``expr`` (one line, ending with '.') and return the ``~w`` text.

        Raises:
            ErlEvalError: The expression raised.
        """
        assert self.proc.stdin is not None
        assert "\n" not in expr
        self.proc.stdin.write(expr.encode() + b"\n")
        self.proc.stdin.flush()
        result = self._read_until("@@RES ", timeout)
        tag, _, value = result.partition(" ")
        if tag != "ok":
            raise ErlEvalError(value)
        return value

    async def aeval(self, expr: str, timeout: float = 15.0) -> str:
        """`eval` from trio code, in a worker thread so the event loop runs."""
        return await trio.to_thread.run_sync(self.eval, expr, timeout, abandon_on_cancel=True)

    def stop(self) -> None:
        """Close stdin (the REPL halts); kill if it lingers."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(5)
        except (subprocess.TimeoutExpired, OSError):
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
