"""Names: a Registry for Via names and pub/sub, a DynamicSupervisor, a Global name.

Run it with ``python examples/registry_names.py``. The tree is::

    Supervisor (rest_for_one)
    ├── Registry "rooms"   unique keys: one process per room name
    ├── Registry "topics"  duplicate keys: many subscribers per topic
    └── DynamicSupervisor "room_sup"
        └── Room processes, started on demand, named Via("rooms", room)

A room is reached by its `Via` name (call / cast / whereis), subscribes to a
topic in the duplicate registry, and receives what `Registry.dispatch`
publishes. When a room crashes, the dynamic supervisor restarts it and the
new process registers the same names again; the dead process's entries
vanished with it. Finally a `Global` name is used as a node-wide singleton.
"""

from __future__ import annotations

import logging
from typing import Any

import trio.testing

import otpy
from otpy import DynamicSupervisor, Registry, Supervisor, Via


class Room(otpy.GenServer):
    """A chat room: keeps the messages published to its topic."""

    async def init(self, room: str) -> None:
        self.room = room
        self.seen: list[str] = []
        Registry.register("topics", "news", room)  # subscribe: value = room name

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request == "seen":
            return self.seen
        raise ValueError(f"bad request {request!r}")

    async def handle_info(self, message: Any) -> None:
        match message:
            case ("news", text):
                self.seen.append(text)


def publish(text: str) -> None:
    """Send ``("news", text)`` to every subscriber of the topic."""

    def deliver(entries: list[tuple[otpy.Pid, Any]]) -> None:
        for pid, _room in entries:
            otpy.send(pid, ("news", text))

    Registry.dispatch("topics", "news", deliver)


async def open_room(room: str) -> otpy.Pid | None:
    """Start a room under the dynamic supervisor, named ``Via("rooms", room)``."""
    spec = Room.child_spec(room, id=room, name=Via("rooms", room))
    return await DynamicSupervisor.start_child("room_sup", spec)


async def main() -> None:
    """Build the tree, publish, crash a room, use a Global name."""
    await Supervisor.start_link(
        [
            Registry.child_spec("rooms", keys="unique"),
            Registry.child_spec("topics", keys="duplicate"),
            DynamicSupervisor.child_spec(name="room_sup"),
        ],
        strategy="rest_for_one",
    )
    for room in ("lobby", "games"):
        await open_room(room)
    subscribers = sorted(room for _pid, room in Registry.lookup("topics", "news"))
    print("subscribers:", subscribers)

    publish("hello")
    print("lobby saw:", await otpy.call(Via("rooms", "lobby"), "seen"))

    old = otpy.whereis(Via("rooms", "games"))
    try:
        await otpy.call(Via("rooms", "games"), "explode")
    except otpy.CallError as err:
        print("call failed with", type(err.reason).__name__)
    await trio.testing.wait_all_tasks_blocked()  # let the supervisor restart it
    new = otpy.whereis(Via("rooms", "games"))
    print("games restarted under the same name:", new not in (None, old))
    print("subscriber entries:", Registry.count("topics"))
    publish("again")
    print("games saw:", await otpy.call(Via("rooms", "games"), "seen"))

    leader = otpy.Global("leader")
    otpy.register(leader)  # the main process claims the node-wide name
    print("leader is main:", otpy.whereis(leader) == otpy.self())
    try:
        otpy.register(leader, new)
    except ValueError:
        print("a Global name has one holder at a time")
    count = await DynamicSupervisor.count_children("room_sup")
    print("rooms running:", count["active"])


if __name__ == "__main__":
    logging.getLogger("otpy").setLevel(logging.CRITICAL)  # hide the crash report
    otpy.run(main)
