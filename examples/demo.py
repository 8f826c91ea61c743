"""The demo: a supervision tree whose workers crash and come back.

Run it with ``scripts/demo`` (or ``python examples/demo.py``). It starts

    app (one_for_one)
    ├── registry        Registry "workers"
    ├── counter         a GenServer keeping a count, named Via(workers, "counter")
    └── pool (rest_for_one)
        ├── fetcher     a worker that crashes on bad input
        └── cache       depends on fetcher: restarted with it

then crashes workers in different ways and prints what the supervisors do.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

import otpy
from otpy import Supervisor, Via


def say(text: str) -> None:
    print(text, flush=True)


class Counter(otpy.GenServer):
    async def init(self) -> None:
        self.n = 0

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request == "incr":
            self.n += 1
        return self.n


class Fetcher(otpy.GenServer):
    async def handle_call(self, url: str, caller: Any) -> Any:
        if not url.startswith("http"):
            raise ValueError(f"cannot fetch {url!r}")
        return f"<contents of {url}>"


class Cache(otpy.GenServer):
    trap_exits = True

    async def init(self) -> None:
        self.entries: dict[str, str] = {}

    async def handle_call(self, url: str, caller: Any) -> Any:
        if url not in self.entries:
            self.entries[url] = await otpy.call("fetcher", url)
        return self.entries[url]

    async def terminate(self, reason: otpy.ExitReason) -> None:
        say(f"    cache {otpy.self()} terminating ({type(reason).__name__}), "
            f"dropping {len(self.entries)} entries")


async def tree() -> list[tuple[str, Any]]:
    rows = []
    for c in await Supervisor.which_children("app"):
        rows.append((str(c.id), c.pid))
        if c.id == "pool":
            for d in await Supervisor.which_children("pool"):
                rows.append((f"  pool/{d.id}", d.pid))
    return rows


async def show(title: str) -> None:
    say(f"\n{title}")
    for name, pid in await tree():
        say(f"  {name:<14} {pid}")


async def main() -> None:
    say("otpy demo: a supervised tree that crashes and restarts\n")
    app = await Supervisor.start_link(
        [
            otpy.Registry.child_spec("workers", id="registry"),
            Counter.child_spec(id="counter", name=Via("workers", "counter")),
            Supervisor.child_spec(
                [Fetcher.child_spec(id="fetcher", name="fetcher"),
                 Cache.child_spec(id="cache", name="cache")],
                strategy="rest_for_one", id="pool", name="pool",
            ),
        ],
        strategy="one_for_one", max_restarts=3, max_seconds=5, name="app",
    )
    await show("the tree, started left to right:")

    counter = Via("workers", "counter")
    for _ in range(3):
        n = await otpy.call(counter, "incr")
    say(f"\ncounter (found by its Via name) counted to {n}")

    say("\n1. kill the counter: one_for_one restarts just it, with fresh state")
    otpy.exit(otpy.whereis(counter), otpy.Kill())
    await trio.sleep(0.05)
    say(f"   counter now at {await otpy.call(counter, 'get')} under pid "
        f"{otpy.whereis(counter)}")

    say("\n2. ask the cache for a bad URL: the fetcher crashes inside the call;")
    say("   rest_for_one restarts the fetcher AND the cache that depends on it")
    await otpy.call("cache", "http://example.org")
    try:
        await otpy.call("cache", "ftp://nope")
    except otpy.CallError as err:
        say(f"   the caller got a typed error at once: {err.reason!r}")
    await trio.sleep(0.05)
    await show("the tree after the restarts (pool/* have new pids):")

    say("\n3. crash the fetcher 4 times within 5 s: the pool gives up (intensity 3/5s),")
    say("   and the app supervisor restarts the whole pool subtree")
    old_pool = otpy.whereis("pool")
    for _ in range(4):
        ref = otpy.monitor("fetcher")
        otpy.exit(otpy.whereis("fetcher"), otpy.TermReason("boom"))
        await otpy.receive(lambda m, ref=ref: isinstance(m, otpy.Down) and m.ref == ref)
        await trio.sleep(0.01)
    await trio.sleep(0.05)
    say(f"   pool was {old_pool}, now {otpy.whereis('pool')}")
    await show("the final tree:")

    say("\n4. stop the app: children stop right to left")
    otpy.trap_exits(True)
    await otpy.stop(app, otpy.Shutdown(), timeout=10)
    say("\ndone.")


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR, format="    [log] %(message)s")
    logging.getLogger("otpy").setLevel(logging.CRITICAL)
    otpy.run(main)
