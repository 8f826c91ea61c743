"""The observer: a live web page of a node's supervision trees, processes and sessions.

Inside a node::

    async with otpy.open_node():
        ...
        await otpy.observer.serve("127.0.0.1", 8000)   # until cancelled

or attached to a running node from outside, as a hidden node::

    otpy observer --node app@host --cookie-file ~/.erlang.cookie

The page draws the supervision trees, shows a process's mailbox, links,
monitors and state, a timeline of restarts, and the sessions with their
CLI's state, tokens and cost; its data is also at ``GET /api/tree``. Every
node answers the observer through its ``otpy_observer`` process
(`otpy.observer._backend`). Serving needs the ``web`` extra (``pip install
"otpy[web]"``). Security (the token, what a cookie holder can see and kill):
docs/otpy/observer.md.
"""

from __future__ import annotations

import trio

__all__ = ["serve"]


async def serve(host: str = "127.0.0.1", port: int = 8000, *, node: str | None = None,
                token: str | None = None,
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the observer page from the calling process until cancelled.

    Every request is a trio task of the calling process. Use ``await
    nursery.start(otpy.observer.serve, host, 0)`` to learn the address.

    Args:
        host: the address to bind; 127.0.0.1 by default. Any other than a
            loopback address requires ``token``.
        port: the TCP port (0: any free port).
        node: observe this node (``"name@host"``, reached over distribution:
            the calling node must be distributed) instead of the calling one.
        token: the access token: when set, every request must carry it
            (``Authorization: Bearer``, ``?token=`` once, then a cookie).
        task_status: receives the bound URLs.

    Raises:
        ValueError: a non-loopback ``host`` without a ``token``.
    """
    from otpy.observer._web import serve as serve_

    await serve_(host, port, node=node, token=token, task_status=task_status)

