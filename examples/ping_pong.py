"""Ping-pong: plain otpy processes talking through their mailboxes.

Run it with ``python examples/ping_pong.py``. It shows, in order:

- ``spawn`` with a registered name, ``send`` to a name and to a pid;
- selective receive: the main process waits for ``("pong", n)`` while an
  unrelated message stays queued, in order, for a later ``receive``;
- a ``receive`` timeout (`otpy.Timeout`);
- a monitor: the `Down` message and its typed reason;
- a link while trapping exits: the crash of a linked process arrives as an
  `Exit` message whose reason is a `Crash` carrying the exception.

The crash at the end is also logged (logger ``otpy``) with its traceback on
stderr: that is otpy's crash report, not a failure of the example.
"""

from __future__ import annotations

from typing import Any

import otpy


async def pong() -> None:
    """Answer ``("ping", n, sender)`` with ``("pong", n)`` until told to stop."""
    while True:
        match await otpy.receive():
            case ("ping", n, sender):
                otpy.send(sender, ("pong", n))
            case "stop":
                return  # a normal exit


def is_pong(message: Any) -> bool:
    """The match predicate for the replies we wait for."""
    return isinstance(message, tuple) and message[0] == "pong"


async def fragile(text: str) -> int:
    """A process that crashes on bad input."""
    return int(text)


async def main() -> None:
    """Play three rounds, then watch one process stop and another crash."""
    me = otpy.self()
    pid = otpy.spawn(pong, name="pong")
    ref = otpy.monitor(pid)

    otpy.send(me, "unrelated")  # stays queued while we wait for pongs
    for n in range(1, 4):
        otpy.send("pong", ("ping", n, me))
        reply = await otpy.receive(is_pong, timeout=1.0)
        print("ping", n, "->", reply)

    print("left in the mailbox:", await otpy.receive(timeout=0))
    try:
        await otpy.receive(timeout=0.05)
    except otpy.Timeout:
        print("nothing else arrived within 50 ms")

    otpy.send(pid, "stop")
    down = await otpy.receive(lambda m: isinstance(m, otpy.Down) and m.ref == ref, timeout=1.0)
    print("pong is down:", down.reason)
    print("name released:", otpy.whereis("pong") is None)

    otpy.trap_exits(True)  # exit signals from links now arrive as Exit messages
    child = otpy.spawn_link(fragile, "forty-two")
    exit_msg = await otpy.receive(otpy.Exit, timeout=1.0)
    assert exit_msg.pid == child
    reason = exit_msg.reason
    assert isinstance(reason, otpy.Crash)
    print("linked child crashed:", type(reason.exception).__name__, "-", reason.exception)
    print("we are still alive:", otpy.is_alive(me))


if __name__ == "__main__":
    otpy.run(main)
