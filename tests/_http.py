"""A tiny HTTP/1.1 client on trio + h11 for the observer's tests: any headers (a forged
Host or Origin, as an attacker sends them), one request per connection."""

from __future__ import annotations

import json
from typing import Any

import attrs
import h11
import trio


@attrs.frozen
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def request(port: int, method: str, path: str, *, headers: dict[str, str] | None = None,
                  body: bytes = b"", host: str | None = None) -> Response:
    """Send one request to 127.0.0.1:port and read the whole answer.

    Args:
        port: the server's port.
        method: GET, POST...
        path: the target (with its query).
        headers: extra headers (lower-case names win over the defaults).
        body: the request body.
        host: the Host header (default ``127.0.0.1:port``).

    Returns:
        The response (headers lower-cased; a repeated header's values joined by ``, ``).
    """
    sent = {"host": host if host is not None else f"127.0.0.1:{port}",
            "content-length": str(len(body)), "connection": "close"}
    sent.update({k.lower(): v for k, v in (headers or {}).items()})
    conn = h11.Connection(h11.CLIENT)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(conn.send(h11.Request(method=method, target=path,
                                                    headers=list(sent.items()))))
        if body:
            await stream.send_all(conn.send(h11.Data(data=body)))
        await stream.send_all(conn.send(h11.EndOfMessage()))
        status = 0
        got: dict[str, str] = {}
        chunks: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                for k, v in event.headers:
                    key = k.decode().lower()
                    got[key] = f"{got[key]}, {v.decode()}" if key in got else v.decode()
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
    return Response(status, got, b"".join(chunks))


async def first_event(port: int, path: str = "/api/events",
                      headers: dict[str, str] | None = None) -> tuple[str, Any]:
    """Open a server-sent event stream and return its first event (name, data)."""
    conn = h11.Connection(h11.CLIENT)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        sent = {"host": f"127.0.0.1:{port}", **(headers or {})}
        await stream.send_all(conn.send(h11.Request(method="GET", target=path,
                                                    headers=list(sent.items()))))
        await stream.send_all(conn.send(h11.EndOfMessage()))
        buffer = b""
        while b"\n\n" not in buffer:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                assert event.status_code == 200, event
            elif isinstance(event, h11.Data):
                buffer += bytes(event.data)
            else:
                raise AssertionError(f"the stream ended: {event!r}")
    block = buffer.split(b"\n\n", 1)[0].decode()
    fields = dict(line.split(": ", 1) for line in block.splitlines())
    return fields["event"], json.loads(fields["data"])
