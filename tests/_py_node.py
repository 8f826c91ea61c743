"""A Python peer node for the distribution tests, run as a separate OS process.

    python tests/_py_node.py NAME COOKIE EPMD_PORT TICKTIME

It starts a distributed otpy node with an ``echo`` GenServer, a ``looper``
process and a ``sink`` that drops what it gets, allows rpc on this module,
prints ``@@READY <node>`` and runs until its stdin closes. The functions below
are what tests call on it by rpc.

Optional environment: ``PY_NODE_OPTIONS`` (JSON: more `otpy.run` options;
``atom_headroom`` sets ``max_atoms`` to the atoms that exist now plus that
many) and ``PY_NODE_LOG`` (a file for the node's log, INFO and up).
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
            case ("flood", pid, n, size):
                flood(pid, n, size)
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


def memory() -> dict[str, int]:
    """This OS process's memory in KiB: ``{"rss": now, "peak": highest so far}``."""
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {"rss": int(fields["VmRSS"].split()[0]), "peak": int(fields["VmHWM"].split()[0])}


def atoms() -> int:
    """How many atoms exist in this OS process."""
    return len(otpy.Atom._table)


def connected() -> list[str]:
    return otpy.nodes()


def flood(pid: otpy.Pid, n: int, size: int) -> int:
    """Send ``n`` messages of ``size`` bytes to ``pid`` (plain local sends, never
    blocking); returns how many were sent."""
    payload = b"x" * size
    for i in range(n):
        otpy.send(pid, (i, payload))
    return n


async def sink() -> None:
    while True:
        await otpy.receive()


async def main(name: str, cookie: str, epmd_port: int, ticktime: float) -> None:
    await Echo.start(name="echo")
    otpy.spawn(looper, name="looper")
    otpy.spawn(sink, name="sink")
    print(f"@@READY {otpy.node()}", flush=True)
    await trio.wrap_file(sys.stdin).read()  # until the test closes our stdin


if __name__ == "__main__":
    import _py_node as this  # one copy of the module: rpc imports it by this name

    name, cookie, port, tick = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    tls = None
    if len(sys.argv) > 5:  # a directory with ca.pem, node.pem, node.key
        d = sys.argv[5]
        tls = otpy.TLSConfig(f"{d}/node.pem", f"{d}/node.key", f"{d}/ca.pem")
    import json
    import logging
    import os

    options = json.loads(os.environ.get("PY_NODE_OPTIONS", "{}"))
    if "atom_headroom" in options:
        options["max_atoms"] = len(otpy.Atom._table) + 64 + options.pop("atom_headroom")
    if os.environ.get("PY_NODE_LOG"):
        logging.basicConfig(filename=os.environ["PY_NODE_LOG"], level=logging.INFO,
                            format="%(levelname)s %(name)s: %(message)s")
    otpy.run(this.main, name, cookie, port, tick, node=name, cookie=cookie, epmd_port=port,
             net_ticktime=tick, rpc_allow=["_py_node:*"], shutdown_timeout=1.0, tls=tls,
             **options)
