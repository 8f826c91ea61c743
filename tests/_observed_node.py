"""A node to observe, in its own OS process (tests/test_observer*.py).

    python tests/_observed_node.py NAME COOKIE_FILE EPMD_PORT [--observer off]

A distributed otpy node running a small application: ``app_sup`` (one_for_one)
with a worker GenServer ``worker_a`` and a ``claudecode.Supervisor``
``sessions`` holding one session, ``assistant``, whose real pinned CLI talks
to a FakeAnthropic started here. Prints ``@@READY <node>``, then reads
commands on stdin: ``turn`` runs one turn on the session and prints ``@@TURN
<text>``; end of input stops the node.
"""

from __future__ import annotations

import sys
import tempfile
from typing import Any

import trio

import claudecode
import otpy
from claudecode._install import install_cli
from claudecode.testing import FakeAnthropic, Text, Turn

INPUT_TOKENS = 1234
OUTPUT_TOKENS = 56


class Worker(otpy.GenServer):
    """A worker with a little state for the page to show."""

    async def init(self, label: str) -> None:
        self.label = label
        self.served = 0

    async def handle_call(self, request: Any, caller: Any) -> Any:
        self.served += 1
        return request


async def main(fake: FakeAnthropic) -> None:
    home = tempfile.mkdtemp(prefix="observed_home_")
    env = {"HOME": home, "CLAUDE_CONFIG_DIR": f"{home}/.claude", **fake.env(max_retries=0)}
    session = {"name": "assistant", "model": "claude-haiku-4-5", "env": env, "cwd": home,
               "cli_path": install_cli().path}
    await otpy.Supervisor.start_link([
        Worker.child_spec("a", id="worker_a", name="worker_a"),
        claudecode.Supervisor.child_spec([session], name="sessions"),
    ], name="app_sup")
    print(f"@@READY {otpy.node()}", flush=True)
    async for line in _lines():
        if line == "turn":
            text = await claudecode.stream("assistant", "hello observer").final_text()
            print(f"@@TURN {text}", flush=True)


async def _lines() -> Any:
    stdin = trio.wrap_file(sys.stdin)
    while True:
        line = await stdin.readline()
        if not line:
            return
        yield line.strip()


async def boot(name: str, cookie: str, epmd_port: int, observer: bool) -> None:
    async with FakeAnthropic.serve(log_requests=False) as fake:
        fake.default = Turn([Text("hello from the fake")], input_tokens=INPUT_TOKENS,
                            output_tokens=OUTPUT_TOKENS)
        async with otpy.open_node(name, cookie, epmd_port=epmd_port, observer=observer,
                                  shutdown_timeout=5.0):
            await main(fake)


if __name__ == "__main__":
    with open(sys.argv[2]) as f:
        cookie_ = f.read().strip()
    trio.run(boot, sys.argv[1], cookie_, int(sys.argv[3]), "--observer" not in sys.argv[4:])
