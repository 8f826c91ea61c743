"""Web pages inside an otpy node: serve an ASGI app in a process, stream server-sent events.

Needs the ``web`` extra (``pip install "otpy[web]"``: hypercorn and starlette).
The observer page and ``examples/web_chat`` are built on it;
docs/design/014-web-stack.md says why it looks like this.

- :func:`serve` runs an ASGI app (a Starlette one, say) on hypercorn's trio worker
  in the calling task. Called from inside ``otpy.open_node(...)`` (or any otpy
  process), every connection and every request handler is a trio task of that
  process: handlers call ``otpy.call``, ``claudecode.stream``... directly.
- :class:`EventStream` is an ASGI response that sends server-sent events
  from an async generator, and always closes the generator: when it is
  exhausted, when it raises, and when the client goes away (the generator is
  cancelled at its current ``await``, so e.g. a ``claudecode.stream`` being
  consumed there abandons its turn).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, cast

import attrs
import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from hypercorn.typing import ASGIFramework
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["EventStream", "ServerSentEvent", "serve", "until_signalled"]


@attrs.frozen
class ServerSentEvent:
    """One server-sent event: a name and a JSON-encodable payload.

    Attributes:
        event: the event name (the ``event:`` field).
        data: the payload, sent as one line of JSON (the ``data:`` field).
    """

    event: str
    data: Any

    def encode(self) -> bytes:
        """The event in the ``text/event-stream`` format.

        Returns:
            ``event: <name>\\ndata: <json>\\n\\n`` as UTF-8.
        """
        payload = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"event: {self.event}\ndata: {payload}\n\n".encode()


class EventStream(Response):
    """A Starlette response streaming :class:`ServerSentEvent` s from an async generator.

    Like Starlette's ``StreamingResponse``, but the generator is always closed
    (``aclosing``) and the client's disconnect cancels it where it waits.

    Args:
        events: the generator; it runs in the request's task (so in the
            request's otpy process).
        headers: extra response headers.
        on_close: called once the response is over, however it ended (sent,
            failed, or the client went away); e.g. to release a per-user slot.
    """

    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[ServerSentEvent, None],
                 headers: dict[str, str] | None = None,
                 on_close: Callable[[], None] | None = None) -> None:
        self.events = events
        self.on_close = on_close
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", "x-accel-buffering": "no",
                           **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the events; stop (closing the generator) if the client disconnects."""
        try:
            await self._send_events(receive, send)
        finally:
            if self.on_close is not None:
                self.on_close()

    async def _send_events(self, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        async with contextlib.aclosing(self.events) as events, trio.open_nursery() as nursery:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch_disconnect)
            async for event in events:
                await send({"type": "http.response.body", "body": event.encode(),
                            "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            nursery.cancel_scope.cancel()


async def until_signalled(*signums: int) -> None:
    """Return when the process receives one of ``signums`` (default SIGINT, SIGTERM).

    Must run in the main thread (as ``trio.run``'s tasks do).
    """
    with trio.open_signal_receiver(*(signums or (signal.SIGINT, signal.SIGTERM))) as received:
        async for _ in received:
            return


async def serve(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    graceful_timeout: float = 2.0,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` with hypercorn's trio worker in the calling task until shut down.

    Use it with ``await nursery.start(serve, app, ...)`` to learn the bound
    addresses (``port=0`` picks a free port).

    Args:
        app: the ASGI application.
        host: the address to bind.
        port: the TCP port (0: any free port).
        shutdown_trigger: returns when the server should stop (default: never;
            cancel the task instead). Open connections get ``graceful_timeout``
            seconds to finish.
        graceful_timeout: seconds open requests may take to finish at shutdown.
        task_status: receives the bound URLs (``["http://127.0.0.1:8000"]``).
    """
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    # hypercorn's own messages go through `logging` ("hypercorn.error"), not
    # straight to stderr: quiet unless configured, errors still reach stderr.
    config.errorlog = logging.getLogger("hypercorn.error")
    # Starlette's and hypercorn's type hints describe the same ASGI interface differently.
    await hypercorn_serve(cast(ASGIFramework, app), config, shutdown_trigger=shutdown_trigger,
                          task_status=task_status)
