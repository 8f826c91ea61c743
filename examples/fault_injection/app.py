"""A small order-taking application, the tree its fault-injection tests exercise.

    app (rest_for_one)
    ├── names        Registry: the application's Via names
    ├── core         Supervisor (one_for_all)
    │   ├── inventory    GenServer "inventory": stock counts
    │   └── orders       GenServer "orders": takes orders, reserves stock
    ├── notifiers    DynamicSupervisor: one Notifier per channel, Via("names", channel)
    ├── notifier_starter   starts the notifiers (and is started again with them)
    └── assistants   claudecode.Supervisor: sessions Via("names", "triage"), ...("summarizer")

The registry comes first and the strategy is rest_for_one: when the registry
restarts, everything registered in it restarts too. `orders` and
`inventory` share state (reservations), so they restart together. The
notifiers are started by a child of the tree, right after their
DynamicSupervisor, not by the code that started the application: a restarted
DynamicSupervisor comes back empty, and rest_for_one then runs the starter
again. (The first version of this file started them from `start`; its
property test found that after one restart of the registry no notifier was
left.) The
sessions run the real Claude Code CLI (lazily, on their first query) against
the API given in their options — `FakeAnthropic` in the tests and in the
demo below (``python examples/fault_injection/app.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import claudecode
import otpy

CHANNELS = ("email", "sms")
ASSISTANTS = ("triage", "summarizer")


class Inventory(otpy.GenServer):
    """Stock counts; ``("reserve", item)`` takes one if there is one."""

    async def init(self) -> None:
        self.stock = {"book": 3, "pen": 10}

    async def handle_call(self, request: Any, caller: Any) -> Any:
        op, item = request
        if op == "reserve" and self.stock.get(item, 0) > 0:
            self.stock[item] -= 1
            return True
        return False if op == "reserve" else self.stock.get(item, 0)


class Orders(otpy.GenServer):
    """Takes orders: reserves stock, then tells every notifier."""

    async def init(self) -> None:
        self.taken: list[str] = []

    async def handle_call(self, request: Any, caller: Any) -> Any:
        _, item = request
        if not await otpy.call("inventory", ("reserve", item)):
            return "out of stock"
        self.taken.append(item)
        for channel in CHANNELS:
            otpy.cast(otpy.Via("names", channel), ("order", item))
        return f"order {len(self.taken)}: {item}"


class Notifier(otpy.GenServer):
    """Sends order notices on one channel (here: counts them)."""

    async def init(self, channel: str) -> None:
        self.channel = channel
        self.sent = 0

    async def handle_cast(self, request: Any) -> None:
        self.sent += 1

    async def handle_call(self, request: Any, caller: Any) -> Any:
        return (self.channel, self.sent)


def tree(session_options: Mapping[str, Any]) -> list[otpy.ChildSpec]:
    """The application's children, in start order.

    Args:
        session_options: options for the assistant sessions (API, env, cwd).

    Returns:
        The child specs.
    """
    core = otpy.Supervisor.child_spec(
        [Inventory.child_spec(name="inventory"), Orders.child_spec(name="orders")],
        strategy="one_for_all", id="core")
    assistants = claudecode.Supervisor.child_spec(
        [{**session_options, "name": otpy.Via("names", name)} for name in ASSISTANTS],
        id="assistants")
    return [otpy.Registry.child_spec("names"), core,
            otpy.DynamicSupervisor.child_spec(id="notifiers", name="notifiers"),
            otpy.ChildSpec("notifier_starter", start_notifiers, restart="transient"),
            assistants]


async def start_notifiers() -> None:
    """Start one notifier per channel under the ``notifiers`` DynamicSupervisor.

    As a child's start function it returns None: the child "ignores" its
    start (it has no process of its own), and is run again whenever its
    supervisor restarts the children after ``notifiers``.
    """
    for channel in CHANNELS:
        await otpy.DynamicSupervisor.start_child(
            "notifiers", Notifier.child_spec(channel, id=channel,
                                             name=otpy.Via("names", channel)))


async def start(session_options: Mapping[str, Any], max_restarts: int = 10) -> otpy.Pid:
    """Start the application linked to the caller.

    Args:
        session_options: options for the assistant sessions.
        max_restarts: the root's restart intensity (within 5 s).

    Returns:
        The root supervisor.
    """
    return await otpy.Supervisor.start_link(tree(session_options), strategy="rest_for_one",
                                            max_restarts=max_restarts, max_seconds=5)


async def demo() -> None:
    """Take two orders and ask the triage assistant, against FakeAnthropic."""
    import tempfile

    from claudecode.testing import FakeAnthropic

    async with FakeAnthropic.serve(log_requests=False) as fake:
        with tempfile.TemporaryDirectory() as home:
            options = {"env": {"HOME": home, "CLAUDE_CONFIG_DIR": f"{home}/.claude",
                               **fake.env()}, "cwd": home}
            app = await start(options)
            print(await otpy.call("orders", ("order", "book")))
            print(await otpy.call("orders", ("order", "pen")))
            print(await otpy.call(otpy.Via("names", "email"), "sent"))
            triage = otpy.Via("names", "triage")
            print(await claudecode.stream(triage, "a customer asks").final_text())
            await otpy.stop(app)  # in order: the sessions end their CLIs before HOME goes


if __name__ == "__main__":
    otpy.run(demo)
