"""A supervised counter: a GenServer under a Supervisor, crashed and restarted.

Run it with ``python examples/supervised_counter.py``. The tree is::

    Supervisor (one_for_one, max_restarts=2, max_seconds=5)
    ├── "counter"   Counter, permanent: always restarted
    └── "greeter"   Greeter, transient: restarted only after an abnormal exit

The program calls and casts to the counter, makes it crash inside a call
(the caller gets a `CallError` whose reason is the `Crash`), watches the
supervisor restart it with fresh state, stops the transient greeter
normally (not restarted) and restarts it by hand, and finally crashes the counter until the restart
intensity is exceeded: the supervisor then shuts the remaining children
down, right to left, and exits with `Shutdown`.

Crash reports and supervisor reports go to the ``otpy`` loggers; this
example prints them as one line each on stderr.
"""

from __future__ import annotations

import logging
from typing import Any

import trio.testing

import otpy
from otpy import Supervisor


class Counter(otpy.GenServer):
    """Counts. ``trap_exits`` makes it run `terminate` when its supervisor stops it."""

    trap_exits = True

    async def init(self, start: int) -> None:
        self.n = start
        print(f"counter: init({start})")

    async def handle_call(self, request: Any, caller: Any) -> Any:
        match request:
            case "incr":
                self.n += 1
                return self.n
            case "get":
                return self.n
            case ("divide", k):
                self.n //= k  # k == 0 crashes the server
                return self.n
        raise ValueError(f"unknown request {request!r}")

    async def handle_cast(self, request: Any) -> None:
        if request == "reset":
            self.n = 0

    async def terminate(self, reason: otpy.ExitReason) -> None:
        print(f"counter: terminate({reason!r}) at n={self.n}")


class Greeter(otpy.GenServer):
    """Greets; ``"bye"`` stops it normally, with a reply."""

    trap_exits = True

    async def terminate(self, reason: otpy.ExitReason) -> None:
        print(f"greeter: terminate({reason!r})")

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request == "bye":
            raise otpy.Stop(otpy.Normal(), reply="goodbye")
        return f"hello, {request}"


async def settle() -> None:
    """Let every process run until all are idle (the restart has happened)."""
    await trio.testing.wait_all_tasks_blocked()


async def main() -> None:
    """Build the tree, crash things, print what the supervisor does."""
    otpy.trap_exits(True)  # we are linked to the supervisor: see its exit as a message
    sup = await Supervisor.start_link(
        [
            Counter.child_spec(10, name="counter"),
            Greeter.child_spec(name="greeter", restart="transient"),
        ],
        strategy="one_for_one",
        max_restarts=2,
        max_seconds=5,
    )
    print("incr ->", await otpy.call("counter", "incr"))
    otpy.cast("counter", "reset")
    print("after reset ->", await otpy.call("counter", "get"))
    print("greeter ->", await otpy.call("greeter", "world"))

    first = otpy.whereis("counter")
    try:
        await otpy.call("counter", ("divide", 0))
    except otpy.CallError as err:
        assert isinstance(err.reason, otpy.Crash)
        print("call failed:", type(err.reason.exception).__name__)
    await settle()
    print("restarted with a new pid:", otpy.whereis("counter") not in (None, first))
    print("fresh state ->", await otpy.call("counter", "get"))

    print("greeter ->", await otpy.call("greeter", "bye"))
    await settle()
    for child in await Supervisor.which_children(sup):
        print("child", child.id, "running" if child.pid is not None else "stopped")
    await Supervisor.restart_child(sup, "greeter")
    print("greeter ->", await otpy.call("greeter", "again"))

    for _ in range(2):  # two more crashes: three restarts within 5 s > max_restarts
        pid = otpy.whereis("counter")
        assert pid is not None
        otpy.exit(pid, otpy.Kill())  # untrappable: the counter dies with Killed
        await settle()
    msg = await otpy.receive(otpy.Exit, timeout=1.0)
    print("supervisor exited:", msg.pid == sup, msg.reason)


class OneLine(logging.Formatter):
    """Format log records without their traceback."""

    def formatException(self, ei: Any) -> str:
        return ""


if __name__ == "__main__":
    handler = logging.StreamHandler()
    handler.setFormatter(OneLine("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger("otpy").addHandler(handler)
    otpy.run(main)
