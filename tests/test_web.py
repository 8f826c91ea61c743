"""otpy.web: an ASGI app served inside an otpy process, server-sent events, disconnects.

Real hypercorn on a loopback port, real sockets. The request handlers must run
as tasks of the serving process (so otpy calls work in them), and a client
that goes away mid-stream must close the event generator at once, where it
waits — the property `examples/web_chat` relies on to interrupt a turn.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import otpy
from otpy.web import EventStream, ServerSentEvent, serve


async def _request(url: str, path: str) -> trio.SocketStream:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return stream


async def _read_until(stream: trio.SocketStream, marker: bytes) -> bytes:
    data = b""
    with trio.fail_after(10):
        while marker not in data:
            chunk = await stream.receive_some()
            assert chunk, data
            data += chunk
    return data


async def test_handlers_run_in_the_serving_process_and_a_gone_client_closes_the_stream() -> None:
    closed = trio.Event()
    seen: dict[str, object] = {}

    async def whoami(request: Request) -> Response:
        return JSONResponse({"pid": str(otpy.self())})

    async def forever(request: Request) -> Response:
        async def events() -> AsyncGenerator[ServerSentEvent, None]:
            n = 0
            try:
                while True:
                    yield ServerSentEvent("tick", {"n": n})
                    n += 1
                    with trio.move_on_after(0.01):
                        await otpy.receive()  # an otpy wait, in a handler
            finally:
                seen["last"] = n
                closed.set()

        return EventStream(events())

    app = Starlette(routes=[Route("/whoami", whoami), Route("/forever", forever)])
    async with otpy.open_node(), trio.open_nursery() as nursery:
        urls = await nursery.start(functools.partial(serve, app, "127.0.0.1", 0))
        async with await _request(urls[0], "/whoami") as s:
            body = await _read_until(s, b"}")
        assert f'"pid":"{otpy.self()}"'.encode() in body  # a task of this very process

        s = await _request(urls[0], "/forever")
        head = await _read_until(s, b"event: tick\ndata: {\"n\":3}")
        assert b"content-type: text/event-stream" in head.lower()
        assert not closed.is_set()
        await s.aclose()  # the page goes away mid-stream
        with trio.fail_after(5):
            await closed.wait()  # the generator was closed where it waited
        assert isinstance(seen["last"], int) and seen["last"] >= 3
        nursery.cancel_scope.cancel()


async def test_a_generator_that_raises_ends_the_response_and_is_closed() -> None:
    cleaned = trio.Event()

    async def broken(request: Request) -> Response:
        async def events() -> AsyncGenerator[ServerSentEvent, None]:
            try:
                yield ServerSentEvent("one", {"ok": True})
                raise RuntimeError("the handler failed mid-stream")
            finally:
                cleaned.set()

        return EventStream(events())

    app = Starlette(routes=[Route("/broken", broken)])
    async with otpy.open_node(), trio.open_nursery() as nursery:
        urls = await nursery.start(functools.partial(serve, app, "127.0.0.1", 0))
        async with await _request(urls[0], "/broken") as s:
            data = await _read_until(s, b'data: {"ok":true}')
            with trio.fail_after(10):  # the server ends the connection: no hanging page
                while chunk := await s.receive_some():
                    data += chunk
        assert cleaned.is_set()
        assert b"event: one" in data
        nursery.cancel_scope.cancel()
