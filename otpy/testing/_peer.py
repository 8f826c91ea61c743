"""A Python peer node for tests, run as ``python -m otpy.testing._peer``.

    python -m otpy.testing._peer NAME COOKIE EPMD_PORT TICKTIME [ALLOW ...]

It starts a distributed otpy node with an ``echo`` GenServer and a
``looper`` process, allows rpc on this module (and on ``ALLOW`` entries such
as ``mymodule:*``), prints ``@@READY <node>`` and runs until its stdin
closes. The functions below are what tests call on it by rpc.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import trio

import otpy

_events: list[Any] = []


class Echo(otpy.GenServer):
    """Replies ``("echo", request, node)``; ``"crash"`` crashes it."""

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request == "crash":
            raise RuntimeError("echo crashed")
        return ("echo", request, otpy.node())


async def looper() -> None:
    """Links to / monitors whoever asks, exits on request, records signals."""
    otpy.trap_exits(True)
    while True:
        msg = await otpy.receive()
        match msg:
            case ("link", pid):
                otpy.link(pid)
                otpy.send(pid, ("linked", otpy.self()))
            case ("monitor", pid):
                otpy.monitor(pid)
                otpy.send(pid, ("monitoring", otpy.self()))
            case ("exit", reason):
                raise otpy.ProcessExit(otpy.TermReason(reason))
            case otpy.Exit() | otpy.Down():
                _events.append(msg)


def events() -> list[tuple[str, str]]:
    """The signals the looper recorded: ``[(kind, reason class name), ...]``."""
    return [("exit" if isinstance(e, otpy.Exit) else "down", type(e.reason).__name__)
            for e in _events]


def clear_events() -> None:
    """Forget the recorded signals."""
    _events.clear()


def whereis(name: str) -> otpy.Pid | None:
    """A local name's holder on this node."""
    return otpy.whereis(name)


async def main(name: str, cookie: str, epmd_port: int, ticktime: float) -> None:
    """Start the servers, say ready, run until stdin closes."""
    await Echo.start(name="echo")
    otpy.spawn(looper, name="looper")
    print(f"@@READY {otpy.node()}", flush=True)
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    while await stdin.receive_some():
        pass


if __name__ == "__main__":
    from otpy.testing import _peer as this  # one copy of the module: rpc imports it by name

    node, cookie_, port, tick = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    allow = ["otpy.testing._peer:*", *sys.argv[5:]]
    otpy.run(this.main, node, cookie_, port, tick, node=node, cookie=cookie_, epmd_port=port,
             net_ticktime=tick, rpc_allow=allow, shutdown_timeout=1.0)
