"""A Python peer node for the distribution tests, run as a separate OS process.

    python tests/_py_node.py NAME COOKIE EPMD_PORT TICKTIME

It starts a distributed otpy node with an ``echo`` GenServer and a ``looper``
process, allows rpc on this module, prints ``@@READY <node>`` and runs until
its stdin closes. The functions below are what tests call on it by rpc.
"""

from __future__ import annotations

import sys
from typing import Any

import trio

import otpy

_events: list[Any] = []


class Echo(otpy.GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request == "crash":
            raise RuntimeError("echo crashed")
        if request == "unencodable":
            return {1, 2}  # no Erlang term: the caller's call fails, not this server
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


# ----------------------------------------------------------- rpc targets


def add(a: int, b: int) -> int:
    return a + b


async def slow_add(a: int, b: int) -> int:
    await trio.sleep(0.01)
    return a + b


def events() -> list[Any]:
    """Signals the looper recorded: [(kind, reason name), ...]."""
    out = []
    for e in _events:
        kind = "exit" if isinstance(e, otpy.Exit) else "down"
        out.append((kind, type(e.reason).__name__))
    return out


async def call_back(node: str, name: str, request: Any) -> Any:
    """Call a GenServer on another node from here (calls go both ways)."""
    return await otpy.call((name, node), request)


def global_register(name: str) -> otpy.Pid:
    """Start a process here and register it as Global(name)."""
    pid = otpy.spawn(otpy.receive)
    otpy.register(otpy.Global(name), pid)
    _registered_here[name] = pid
    return pid


def global_register_later(name: str, delay: float) -> None:
    """Register Global(name) here after ``delay`` seconds (to race a partition)."""

    async def later() -> None:
        await trio.sleep(delay)
        global_register(name)

    otpy.spawn(later)


_registered_here: dict[str, otpy.Pid] = {}


def global_holder_here(name: str) -> otpy.Pid | None:
    """The process this node registered as Global(name) (even if it lost the name)."""
    return _registered_here.get(name)


def global_whereis(name: str) -> otpy.Pid | None:
    return otpy.whereis(otpy.Global(name))


def fail() -> None:
    raise ValueError("failed on purpose")


async def main(name: str, cookie: str, epmd_port: int, ticktime: float) -> None:
    await Echo.start(name="echo")
    otpy.spawn(looper, name="looper")
    print(f"@@READY {otpy.node()}", flush=True)
    await trio.wrap_file(sys.stdin).read()  # until the test closes our stdin


if __name__ == "__main__":
    import _py_node as this  # one copy of the module: rpc imports it by this name

    name, cookie, port, tick = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    tls = None
    if len(sys.argv) > 5:  # a directory with ca.pem, node.pem, node.key
        d = sys.argv[5]
        tls = otpy.TLSConfig(f"{d}/node.pem", f"{d}/node.key", f"{d}/ca.pem")
    otpy.run(this.main, name, cookie, port, tick, node=name, cookie=cookie, epmd_port=port,
             net_ticktime=tick, rpc_allow=["_py_node:*"], shutdown_timeout=1.0, tls=tls)
