"""Python side of bench/dist.py: a node with a sink and an echo server."""

from __future__ import annotations

import sys
from typing import Any

import trio

import otpy


async def sink() -> None:
    receive = otpy.receive
    while True:
        msg = await receive()
        if type(msg) is tuple and msg and msg[0] == otpy.Atom("expect"):
            k, frm = msg[1], msg[2]
            for _ in range(k):
                await receive()
            otpy.send(frm, (otpy.Atom("done"), k))


class Echo(otpy.GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        return request


async def main() -> None:
    otpy.spawn(sink, name="sink")
    await Echo.start(name="echo")
    print(f"@@READY {otpy.node()}", flush=True)
    await trio.wrap_file(sys.stdin).read()


if __name__ == "__main__":
    otpy.run(main, node=sys.argv[1], cookie=sys.argv[2], epmd_port=int(sys.argv[3]))
