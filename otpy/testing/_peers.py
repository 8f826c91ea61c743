"""Real peer nodes for tests: a private EPMD, ``erl`` nodes, Python nodes, sandboxes.

Each is a separate OS process, started for real and stopped (or killed) by
the test: `Epmd` (``epmd -port <free port>``, so a test never touches the
system's EPMD), `ErlNode` (``erl -noshell`` with a read-eval-print loop on
stdin), `PyNode` (``python -m otpy.testing._peer``: an otpy node with an
``echo`` server and a ``looper`` that links and records signals) and
`SandboxNode` (``claudecode sandbox``). The pytest plugin's fixtures start
them; tests can also use the classes directly.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import trio

__all__ = ["Epmd", "ErlEvalError", "ErlNode", "PyNode", "SandboxNode", "free_port", "unique"]


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique(prefix: str) -> str:
    """A node alive-name unlikely to clash: ``prefix_<8 hex digits>``."""
    return f"{prefix}_{secrets.token_hex(4)}"


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.02)


def _stop(proc: subprocess.Popen[bytes], sig: int | None = None, timeout: float = 5) -> None:
    if proc.poll() is not None:
        return
    try:
        if sig is not None:
            proc.send_signal(sig)
        elif proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout)
    except (subprocess.TimeoutExpired, OSError):
        proc.kill()
        proc.wait(timeout)


class Epmd:
    """A private ``epmd`` on a free port (killed by `stop`).

    Attributes:
        port: its port (pass it as ``epmd_port=`` to `otpy.open_node`).
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(["epmd", "-port", str(self.port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        _wait_port(self.port, self.proc, "epmd")

    def stop(self) -> None:
        """Kill it."""
        self.proc.kill()
        self.proc.wait(5)


class ErlEvalError(Exception):
    """An expression raised inside the ``erl`` node."""


_REPL = r"""
Loop = fun Loop(Bs) ->
    case io:get_line('') of
        eof -> halt();
        {error, _} -> halt();
        Line ->
            {Tag, Val, Bs2} =
                try
                    {ok, Toks, _} = erl_scan:string(Line),
                    {ok, Exprs} = erl_parse:parse_exprs(Toks),
                    {value, V, Bs1} = erl_eval:exprs(Exprs, Bs),
                    {ok, V, Bs1}
                catch C:E -> {error, {C, E}, Bs}
                end,
            io:format("@@RES ~w ~w~n", [Tag, Val]),
            Loop(Bs2)
    end
end,
io:format("@@READY ~w~n", [node()]),
Loop(erl_eval:new_bindings()).
"""


class ErlNode:
    """A real ``erl -noshell`` node, driven by Erlang expressions on its stdin.

    Args:
        epmd_port: the EPMD it registers with.
        cookie: its cookie.
        name: its short node name (default a unique ``erl_...@localhost``).
        extra_args: more ``erl`` arguments (e.g. ``-kernel net_ticktime 4``).

    Attributes:
        name: the node name, e.g. ``erl_1a2b3c4d@localhost``.
        log: output lines that were not answers (logger reports).
    """

    def __init__(self, epmd_port: int, cookie: str, name: str | None = None,
                 extra_args: Sequence[str] = ()) -> None:
        self.name = name or f"{unique('erl')}@localhost"
        self.cookie = cookie
        env = dict(os.environ, ERL_EPMD_PORT=str(epmd_port))
        self.proc = subprocess.Popen(
            ["erl", "-noshell", "-start_epmd", "false", "-sname", self.name, "-setcookie",
             cookie, *extra_args, "-eval", _REPL],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
            cwd="/tmp",
        )
        self.log: list[str] = []
        self._buf = b""
        assert self.proc.stdout is not None
        self._fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + 30
        while True:
            line = self._read_line_blocking(deadline)
            if line.startswith("@@READY "):
                break
            self.log.append(line)

    @property
    def os_pid(self) -> int:
        """The OS process id."""
        return self.proc.pid

    def _read_line_blocking(self, deadline: float) -> str:
        import select

        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"erl did not answer; output so far: {self.log[-20:]}")
            if select.select([self._fd], [], [], left)[0]:
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    raise RuntimeError(f"erl exited; output: {self.log[-20:]}")
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("utf-8", "replace")

    async def eval(self, expr: str, timeout: float = 15.0) -> str:
        """Evaluate one line of Erlang (ending with ``.``) and return the result as ``~w`` text.

        Args:
            expr: the expressions.
            timeout: real seconds to wait for the answer.

        Returns:
            The value, printed with ``~w``.

        Raises:
            ErlEvalError: the expression raised.
        """
        assert self.proc.stdin is not None and "\n" not in expr
        self.proc.stdin.write(expr.encode() + b"\n")
        self.proc.stdin.flush()
        with trio.fail_after(timeout):
            while True:
                while b"\n" not in self._buf:
                    await trio.lowlevel.wait_readable(self._fd)
                    chunk = os.read(self._fd, 65536)
                    if not chunk:
                        raise RuntimeError(f"erl exited; output: {self.log[-20:]}")
                    self._buf += chunk
                raw, _, self._buf = self._buf.partition(b"\n")
                line = raw.decode("utf-8", "replace")
                if line.startswith("@@RES "):
                    tag, _, value = line[6:].partition(" ")
                    if tag != "ok":
                        raise ErlEvalError(value)
                    return value
                self.log.append(line)

    def kill(self) -> None:
        """SIGKILL it (a crash of the whole node)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        """Close its stdin (the REPL halts); kill it if it lingers."""
        _stop(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class PyNode:
    """``python -m otpy.testing._peer``: an otpy node in its own OS process.

    It runs an ``echo`` GenServer (replies ``("echo", request, node)``) and a
    ``looper`` that, on ``("link", pid)`` / ``("monitor", pid)`` messages,
    links to or monitors ``pid`` and records the `Exit` / `Down` signals it
    gets; ``otpy.rpc.call(node, "otpy.testing._peer", "events", [])`` returns
    them. Modules listed in ``allow`` may be called by rpc too.

    Args:
        epmd_port: the EPMD it registers with.
        cookie: its cookie.
        ticktime: its net tick time (seconds).
        allow: more rpc allow-list entries (``"module:*"``).
        env: extra environment variables (e.g. ``PYTHONPATH``).

    Attributes:
        name: its node name.
    """

    def __init__(self, epmd_port: int, cookie: str, *, ticktime: float = 1.0,
                 allow: Sequence[str] = (), env: dict[str, str] | None = None) -> None:
        self.name = f"{unique('py')}@localhost"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "otpy.testing._peer", self.name, cookie, str(epmd_port),
             str(ticktime), *allow],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        for raw in self.proc.stdout:
            if raw.startswith(b"@@READY"):
                return
            if time.monotonic() > deadline:
                break
        self.proc.kill()
        raise RuntimeError(f"the Python peer node {self.name} did not start")

    @property
    def os_pid(self) -> int:
        """The OS process id (for `otpy.testing.Partition`, or ``kill -9``)."""
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL it."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        """Close its stdin (it shuts down in order); kill it if it lingers."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):  # in case a test left it partitioned
                os.kill(self.proc.pid, signal.SIGCONT)
        _stop(self.proc)


class SandboxNode:
    """``claudecode sandbox``: the node where remote sessions' CLIs run.

    Args:
        epmd_port: the EPMD it registers with.
        cookie: its cookie.
        directory: where to write its cookie file.
        ticktime: its net tick time.
        env: extra environment variables.

    Attributes:
        name: its node name (pass it to ``claudecode.adapters.Node``).
    """

    def __init__(self, epmd_port: int, cookie: str, directory: Path, *, ticktime: float = 1.0,
                 env: dict[str, str] | None = None) -> None:
        self.name = f"{unique('sbx')}@localhost"
        cookie_file = Path(directory) / f"{self.name}.cookie"
        cookie_file.write_text(cookie)
        cookie_file.chmod(0o600)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "claudecode._cli", "sandbox", "--name", self.name,
             "--cookie-file", str(cookie_file), "--epmd-port", str(epmd_port),
             "--net-ticktime", str(ticktime), "--log-level", "WARNING"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(b"@@READY"):
                return
        raise RuntimeError("the sandbox node did not start")

    @property
    def os_pid(self) -> int:
        """The OS process id."""
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL it (its CLIs are orphaned to init and end when their pipes close)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        """SIGTERM it (it ends its CLIs); kill it if it lingers."""
        _stop(self.proc, signal.SIGTERM, timeout=10)
