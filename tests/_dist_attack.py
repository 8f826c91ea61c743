"""Helpers for the attack tests: a victim node in its own OS process, a raw
attacker peer, and an ``erl`` node that checks the victim keeps serving.

* `Victim` runs ``tests/_py_node.py`` (with options and a log file) as a
  separate OS process.
* `RawPeer` is what an attacker holding the cookie writes by hand: it runs the
  handshake (otpy's sans-IO machine, as any client library would) and then
  sends whatever bytes it likes, reading only when it wants to.
* `Watchdog` is a real ``erl`` node connected to the victim that calls the
  victim's ``echo`` GenServer in a loop for as long as an attack runs and
  records each call's round trip: the victim's other connections must keep
  being served.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import trio
from _dist_erl import ErlNode, unique

from otpy import Atom, Pid
from otpy.dist import _control as ctl
from otpy.dist._epmd_io import port_please
from otpy.dist._etf import term_to_binary
from otpy.dist._handshake import Initiator
from otpy.dist._handshake_io import DistConnection, connect

HERE = Path(__file__).resolve().parent
COOKIE = "attack-test-cookie"
TICK = 1.0


class Victim:
    """``tests/_py_node.py`` in its own OS process, logging to a file."""

    def __init__(self, epmd_port: int, tmp: Path, *, cookie: str = COOKIE,
                 options: dict[str, Any] | None = None, tls_dir: Path | None = None,
                 tick: float = TICK, env: dict[str, str] | None = None) -> None:
        self.name = f"{unique('victim')}@localhost"
        self.log = tmp / f"{self.name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_py_node.py"), self.name, cookie, str(epmd_port),
             str(tick), *([str(tls_dir)] if tls_dir else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=HERE,
            env={**os.environ, "PY_NODE_LOG": str(self.log),
                 "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE),
                                                             os.environ.get("PYTHONPATH")])),
                 "PY_NODE_OPTIONS": json.dumps(options or {}), **(env or {})},
        )
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if raw.startswith(b"@@READY"):
                break
        else:
            raise RuntimeError(f"victim exited before it was ready: {self.log_text()[-2000:]}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def memory(self) -> dict[str, int]:
        """The victim's memory in KiB (``rss`` now, ``peak`` so far), read from /proc."""
        fields = dict(line.split(":", 1)
                      for line in Path(f"/proc/{self.pid}/status").read_text().splitlines()
                      if ":" in line)
        return {"rss": int(fields["VmRSS"].split()[0]), "peak": int(fields["VmHWM"].split()[0])}

    def log_text(self) -> str:
        try:
            return self.log.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                self.proc.wait(5)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait(5)


class RawPeer:
    """An attacker's distribution connection: authenticated, then raw bytes."""

    def __init__(self, dc: DistConnection, name: str) -> None:
        self.dc = dc
        self.name = name
        self.node = Atom(name)
        self.pid = Pid(self.node, 1, 0, 1)

    @classmethod
    async def open(cls, victim: str, epmd_port: int, *, cookie: str = COOKIE,
                   name: str | None = None) -> RawPeer:
        """Connect to ``victim`` and run the handshake as node ``name``."""
        name = name or f"{unique('raw')}@localhost"
        found = await port_please(victim, epmd_port=epmd_port)
        assert found is not None, f"{victim} is not registered"
        stream = await trio.open_tcp_stream("127.0.0.1", found[0])
        dc = await connect(stream, this_node=name, peer_node=victim, cookie=cookie, creation=1)
        return cls(dc, name)

    async def send_raw(self, data: bytes) -> None:
        await self.dc.stream.send_all(data)

    async def send_packet(self, payload: bytes) -> None:
        await self.send_raw(struct.pack(">I", len(payload)) + payload)

    async def reg_send(self, name: str, message_ext: bytes) -> None:
        """REG_SEND to a registered process; ``message_ext`` is a complete term (131 ...)."""
        control = term_to_binary((ctl.REG_SEND, self.pid, Atom(""), Atom(name)))
        await self.send_packet(b"p" + control + message_ext)

    async def closed_by_peer(self, timeout: float) -> bool:
        """Read (and drop) until the victim closes the connection; False on timeout."""
        with trio.move_on_after(timeout):
            try:
                while await self.dc.stream.receive_some(1 << 16):
                    pass
            except trio.BrokenResourceError:
                pass
            return True
        return False

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.dc.stream)


class Watchdog:
    """A real ``erl`` node that keeps calling the victim's ``echo`` while an attack runs."""

    def __init__(self, epmd_port: int, victim: str, cookie: str = COOKIE) -> None:
        self.erl = ErlNode(f"{unique('watch')}@localhost", cookie, epmd_port,
                           extra_args=("-kernel", "net_ticktime", str(int(TICK * 4))))
        self.victim = victim
        self.times: list[float] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._n = 0
        assert self.ping() < 5.0, "the erl node cannot reach the victim before the attack"

    def ping(self) -> float:
        """One call from erl to the victim's echo; its round trip in seconds."""
        with self._lock:
            return self._ping()

    def _ping(self) -> float:
        self._n += 1
        t = f"T{self._n}"  # the REPL keeps its bindings: a fresh variable per call
        out = self.erl.eval(
            f"{{{t}, {{_, hi, _}}}} = timer:tc(fun() -> gen_server:call({{echo, "
            f"'{self.victim}'}}, hi, 20000) end), {t}.", timeout=30)
        return int(out) / 1e6

    async def watch(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Ping in a loop (run it in a nursery; cancel it when the attack is over)."""
        task_status.started()
        while True:
            try:
                self.times.append(await trio.to_thread.run_sync(self.ping,
                                                                abandon_on_cancel=True))
            except Exception as exc:
                self.failures.append(repr(exc))
            await trio.sleep(0.05)

    def worst(self) -> float:
        return max(self.times, default=0.0)

    def stop(self) -> None:
        self.erl.stop()


async def erl_sees_victim(watch: Watchdog) -> None:
    """After the attack: the erl node still reaches the victim, quickly."""
    assert await trio.to_thread.run_sync(watch.ping) < 2.0
    assert not watch.failures, watch.failures


def log_lines(text: str) -> list[str]:
    return text.splitlines()


def max_line(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


_ANSI = re.compile(r"\x1b")


def has_raw_escape(text: str) -> bool:
    return bool(_ANSI.search(text))


__all__ = ["COOKIE", "TICK", "Initiator", "RawPeer", "Victim", "Watchdog", "erl_sees_victim",
           "has_raw_escape", "max_line", "time"]
