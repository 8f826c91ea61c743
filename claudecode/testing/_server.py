"""The trio + h11 HTTP server behind :class:`~claudecode.testing.FakeAnthropic`.

It listens on 127.0.0.1 (a random free port by default), speaks HTTP/1.1 with
keep-alive, records every request, asks the :class:`~claudecode.testing._script.Script`
for the reply to each ``POST /v1/messages``, and carries out the response
plan built by :mod:`claudecode.testing._render` (the only I/O is here).
"""

from __future__ import annotations

import gzip
import logging
import math
import random
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import h11
import trio

from claudecode.testing._render import (
    Body,
    Drop,
    Finish,
    Head,
    IdSource,
    Plan,
    Wait,
    plan_error,
    plan_other,
    plan_reply,
)
from claudecode.testing._replies import APIError, RecordedRequest, ReplyLike, parse_json
from claudecode.testing._script import Script, ScriptError, ScriptPredicate

logger = logging.getLogger("claudecode.testing.fake_anthropic")

MAX_BODY_BYTES = 64 * 1024 * 1024
"""Largest request body accepted (a larger one gets a 413 and the connection closes)."""

_READ_SIZE = 65536


class _Dropped(Exception):
    """The plan asked to drop the connection."""


class _Connection:
    """One client connection: an h11 state machine over a trio stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.proto = h11.Connection(h11.SERVER)

    async def send(self, event: h11.Event) -> None:
        data = self.proto.send(event)
        if data:
            await self.stream.send_all(data)

    async def next_event(self) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
        """The next h11 event, reading from the socket as needed (never NEED_DATA)."""
        while True:
            event = self.proto.next_event()
            if event is h11.NEED_DATA:
                self.proto.receive_data(bytes(await self.stream.receive_some(_READ_SIZE)))
            else:
                return event


class FakeAnthropic:
    """A scripted Anthropic Messages API on loopback for the real Claude Code CLI.

    Start it with ``async with FakeAnthropic.serve() as fake:`` or, in an
    existing nursery, ``fake = FakeAnthropic(); await nursery.start(fake.run)``.
    Point the CLI at it with :meth:`env`. Script answers with :meth:`script`
    (a FIFO consumed by ``POST /v1/messages`` requests) and :attr:`default`
    (used when the queue has nothing for a request; an :class:`Echo` unless
    changed).

    Args:
        host: address to listen on (loopback by default).
        port: port; ``0`` picks a free one.
        api_key: value handed to the CLI as ``ANTHROPIC_API_KEY``.
        default: the reply when nothing is scripted (default :class:`Echo`).
        seed: seeds the id generator for reproducible ids.
        log_requests: log one line per request to the
            ``claudecode.testing.fake_anthropic`` logger (level INFO).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "sk-ant-fake-key",
        default: ReplyLike | None = None,
        seed: int | None = None,
        log_requests: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.api_key = api_key
        self.log_requests = log_requests
        self.requests: list[RecordedRequest] = []
        """Every request received (all paths), in arrival order."""
        self.script_errors: list[ScriptError] = []
        """Mistakes of reply functions (each was answered with HTTP 500)."""
        self._script = Script() if default is None else Script(default)
        self._ids = IdSource(random.Random(seed))
        self._changed = trio.Condition()
        self._started = False

    # -- lifecycle -------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; valid once the server has started."""
        if not self._started:
            raise RuntimeError("FakeAnthropic is not running (use serve() or nursery.start(run))")
        return f"http://{self.host}:{self.port}"

    async def run(
        self, *, task_status: trio.TaskStatus[FakeAnthropic] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled; use as ``await nursery.start(fake.run)``.

        Args:
            task_status: reports the running fake to ``nursery.start``.
        """
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        self.port = int(listeners[0].socket.getsockname()[1])
        self._started = True
        try:
            async with trio.open_nursery() as nursery:
                task_status.started(self)
                await trio.serve_listeners(
                    self._handle_connection, listeners, handler_nursery=nursery
                )
        finally:
            self._started = False

    @classmethod
    @asynccontextmanager
    async def serve(cls, **kwargs: Any) -> AsyncIterator[FakeAnthropic]:
        """Run a fake for the duration of an ``async with`` block.

        Args:
            **kwargs: passed to :class:`FakeAnthropic`.

        Yields:
            The running fake.
        """
        fake = cls(**kwargs)
        async with trio.open_nursery() as nursery:
            await nursery.start(fake.run)
            try:
                yield fake
            finally:
                nursery.cancel_scope.cancel()

    def env(self, *, max_retries: int | None = None) -> dict[str, str]:
        """Environment variables that point the CLI at this fake and nowhere else.

        Merge them into the CLI's environment. They do not set ``HOME`` or
        ``CLAUDE_CONFIG_DIR``: give the CLI a temporary one yourself so the
        user's ``~/.claude`` is never touched.

        Args:
            max_retries: if set, ``CLAUDE_CODE_MAX_RETRIES`` (``0`` makes a
                retryable API error such as 429/529 surface at once instead of
                after the CLI's back-off; the CLI's default is 10 retries).

        Returns:
            The variables.
        """
        env = {
            "ANTHROPIC_BASE_URL": self.base_url,
            "ANTHROPIC_API_KEY": self.api_key,
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_DISABLE_FEATURE_FLAGS": "1",
            "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
        }
        if max_retries is not None:
            env["CLAUDE_CODE_MAX_RETRIES"] = str(max_retries)
        return env

    # -- scripting -------------------------------------------------------

    @property
    def default(self) -> ReplyLike:
        """The reply used when the queue has nothing for a request."""
        return self._script.default

    @default.setter
    def default(self, reply: ReplyLike) -> None:
        self._script.default = reply

    def script(
        self, *replies: ReplyLike, when: ScriptPredicate | None = None, times: int = 1
    ) -> None:
        """Queue replies for the next ``POST /v1/messages`` requests, in order.

        Args:
            *replies: blocks (:class:`Text`, :class:`ToolUse`, ...), turns,
                :class:`APIError`, :class:`Disconnect`, :class:`Echo`, or
                functions of the :class:`RecordedRequest` returning one.
            when: if given, these entries are used only by requests for which
                ``when(request)`` is true; other requests pass them by.
            times: queue the sequence this many times.

        Raises:
            ScriptError: an argument is not a reply or a callable.
        """
        self._script.add(*replies, when=when, times=times)

    @property
    def pending(self) -> int:
        """Number of queued replies not consumed yet."""
        return len(self._script)

    def clear_script(self) -> None:
        """Drop every queued reply (the default stays)."""
        self._script.clear()

    @property
    def messages_requests(self) -> list[RecordedRequest]:
        """The recorded ``POST /v1/messages`` requests (model turns)."""
        return [r for r in self.requests if r.is_messages]

    async def wait_for_requests(
        self, count: int, predicate: ScriptPredicate | None = None
    ) -> list[RecordedRequest]:
        """Wait until at least ``count`` matching requests were recorded.

        Args:
            count: how many.
            predicate: which requests count; all when ``None``.

        Returns:
            The matching requests.
        """
        async with self._changed:
            while True:
                matching = [r for r in self.requests if predicate is None or predicate(r)]
                if len(matching) >= count:
                    return matching
                await self._changed.wait()

    # -- HTTP ------------------------------------------------------------

    async def _handle_connection(self, stream: trio.SocketStream) -> None:
        conn = _Connection(stream)
        try:
            while True:
                request = await self._read_request(conn)
                if request is None:
                    return
                await self._carry_out(conn, self._plan(request))
                if h11.MUST_CLOSE in (conn.proto.our_state, conn.proto.their_state):
                    return
                conn.proto.start_next_cycle()
        except (_Dropped, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except h11.RemoteProtocolError as exc:
            logger.info("fake anthropic: bad request from client: %s", exc)
            await self._reject(conn, exc)
        except h11.LocalProtocolError:  # pragma: no cover - a bug in our plans
            logger.exception("fake anthropic: response violated HTTP/1.1")
        finally:
            with trio.move_on_after(1) as cleanup:
                cleanup.shield = True
                await stream.aclose()

    def _plan(self, request: RecordedRequest) -> Plan:
        if not request.is_messages:
            return plan_other(request, self._ids)
        try:
            reply = self._script.next_reply(request)
        except ScriptError as exc:
            self.script_errors.append(exc)
            logger.warning("fake anthropic: %s", exc)
            return plan_error(APIError(500, message=str(exc)), self._ids)
        return plan_reply(reply, request, self._ids)

    async def _carry_out(self, conn: _Connection, plan: Plan) -> None:
        for step in plan:
            if isinstance(step, Wait):
                if step.seconds == math.inf:
                    await trio.sleep_forever()
                await trio.sleep(step.seconds)
            elif isinstance(step, Head):
                await conn.send(h11.Response(status_code=step.status, headers=list(step.headers)))
            elif isinstance(step, Body):
                await conn.send(h11.Data(data=step.data))
            elif isinstance(step, Finish):
                await conn.send(h11.EndOfMessage())
            elif isinstance(step, Drop):
                raise _Dropped

    async def _reject(self, conn: _Connection, exc: h11.RemoteProtocolError) -> None:
        if conn.proto.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        error = APIError(exc.error_status_hint, message=f"bad HTTP request: {exc}")
        plan = plan_error(error, self._ids)
        with suppress(h11.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
            await self._carry_out(conn, plan)

    async def _read_request(self, conn: _Connection) -> RecordedRequest | None:
        head: h11.Request | None = None
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await conn.next_event()
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_BODY_BYTES:
                    raise h11.RemoteProtocolError("request body too large", 413)
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
        if head is None:  # pragma: no cover - h11 always sends Request first
            return None
        headers: dict[str, str] = {}
        for name, value in head.headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        body = _decode_body(b"".join(chunks), headers.get("content-encoding", ""))
        target = urlsplit(head.target.decode("latin-1"))
        async with self._changed:
            request = RecordedRequest(
                index=len(self.requests),
                method=head.method.decode("ascii", "replace"),
                path=target.path,
                query=dict(parse_qsl(target.query, keep_blank_values=True)),
                headers=headers,
                body=body,
                json=parse_json(body),
                received_at=time.monotonic(),
            )
            self.requests.append(request)
            self._changed.notify_all()
        if self.log_requests:
            logger.info("fake anthropic: %s", request.describe())
        return request


def _decode_body(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, zlib.error, EOFError):
        return body
    return body
