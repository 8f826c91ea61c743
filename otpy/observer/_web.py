"""The observer's web page: a Starlette app on hypercorn's trio worker, and its guard.

`serve` runs inside an otpy process (docs/design/014-web-stack.md): every
request is a trio task of the calling process and asks the target node's
``otpy_observer`` process (`otpy.observer._backend`) with ``otpy.call`` — on
this node, or on another one over distribution. A *feed* process subscribes
to the target's events and keeps the restarts timeline; the page gets a
fresh snapshot by server-sent events whenever something happened (and every
few seconds, for mailbox lengths and the like).

`Guard` wraps the app and is where the threat model of docs/otpy/observer.md
is enforced: the token (required off loopback), the Host check on loopback
(DNS rebinding), same-origin JSON POSTs only (CSRF), no CORS at all, and
kills that need a single-use confirmation issued for that very process.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import time
from collections import deque
from collections.abc import AsyncGenerator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import otpy
from otpy import web
from otpy._process import current
from otpy.observer._backend import EVENT_TAG, NAME, ensure_backend

__all__ = ["Guard", "Hub", "app", "is_loopback", "serve"]

STATIC: Final = Path(__file__).resolve().parent / "static"
COOKIE: Final = "otpy_observer_token"
#: Seconds a kill confirmation stays valid.
CONFIRM_TTL: Final = 60.0
#: Seconds between snapshots when nothing happens (mailboxes change without events).
REFRESH: Final = 2.0
TIMELINE: Final = 200
_CALL_TIMEOUT: Final = 5.0
_SECURITY_HEADERS: Final = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy",
     b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
]
_TIMELINE_EVENTS: Final = {
    "otpy.supervisor.restart", "otpy.supervisor.give_up", "otpy.supervisor.start_error",
    "otpy.dist.node_up", "otpy.dist.node_down", "claudecode.turn.stop",
    "claudecode.turn.exception", "claudecode.cli.start", "claudecode.cli.exit",
    "claudecode.cli.hibernate",
}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Hub:
    """What the feed process learned, shared with the request tasks (one thread).

    Attributes:
        timeline: the latest events of interest, oldest first.
        version: bumped on every event (the page's snapshots follow it).
        connected: whether the feed is subscribed to the target now.
        confirmations: kill confirmations issued: token -> (pid text, deadline).
    """

    def __init__(self) -> None:
        self.timeline: deque[dict[str, Any]] = deque(maxlen=TIMELINE)
        self.version = 0
        self.changed = trio.Event()
        self.connected = False
        self.confirmations: dict[str, tuple[str, float]] = {}
        self._seq = 0

    def bump(self) -> None:
        """Wake every stream waiting for a change."""
        self.version += 1
        self.changed.set()
        self.changed = trio.Event()

    def add(self, name: str, measurements: Any, metadata: Any) -> None:
        """Record an event from the target (timeline events are kept)."""
        if name in _TIMELINE_EVENTS:
            self._seq += 1
            self.timeline.append({"seq": self._seq, "time": time.time(), "event": name,
                                  "measurements": measurements, "metadata": metadata})
        self.bump()


async def _feed(hub: Hub, target: Any) -> None:
    """The feed process: subscribe to the target's events, resubscribe if it goes away."""
    me = otpy.self()
    while True:
        try:
            await otpy.call(target, ("subscribe", me), _CALL_TIMEOUT)
        except otpy.CallError:
            hub.connected = False
            hub.bump()
            await trio.sleep(1.0)
            continue
        ref = otpy.monitor(target)
        hub.connected = True
        hub.bump()
        while True:
            msg = await otpy.receive()
            if type(msg) is tuple and len(msg) == 4 and msg[0] == EVENT_TAG:
                hub.add(msg[1], msg[2], msg[3])
            elif isinstance(msg, otpy.Down) and msg.ref == ref:
                hub.connected = False
                hub.add("otpy.observer.target_down", {}, {"reason": repr(msg.reason)})
                break
        await trio.sleep(1.0)


# ---------------------------------------------------------------- the guard


class Guard:
    """ASGI middleware enforcing who may read the page and who may kill.

    Args:
        app: the observer app.
        token: the access token, or None (allowed on loopback only).
        loopback: the server is bound to a loopback address.
    """

    def __init__(self, app: ASGIApp, token: str | None, loopback: bool) -> None:
        self.app = app
        self.token = token
        self.loopback = loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request; answer 401/403/415 itself, or pass it on with safe headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        set_cookie = None
        problem = self._host_problem(scope, headers)
        if problem is None and self.token is not None:
            problem, set_cookie = self._token_problem(scope, headers)
        if problem is None and scope["method"] not in ("GET", "HEAD"):
            problem = self._post_problem(scope, headers)
        if problem is not None:
            status, text = problem
            extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
            await _plain(send, status, text, extra)
            return

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = [(k, v) for k, v in message.get("headers", [])
                       if not k.lower().startswith(b"access-control-")]
                out += _SECURITY_HEADERS
                if set_cookie is not None:
                    out.append((b"set-cookie", set_cookie.encode("latin-1")))
                message = {**message, "headers": out}
            await send(message)

        await self.app(scope, receive, guarded_send)

    def _host_problem(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        if not self.loopback:
            return None  # the token protects a server others can reach
        server = scope.get("server") or ("", 0)
        port = server[1]
        allowed = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
        if headers.get("host", "").lower() not in allowed:
            return (403, "forbidden host (the observer answers its loopback address only)")
        return None

    def _token_problem(self, scope: Scope,
                       headers: dict[str, str]) -> tuple[tuple[int, str] | None, str | None]:
        assert self.token is not None
        offered = None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            offered = auth[7:].strip()
        from_query = None
        if offered is None:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if query.get("token"):
                offered = from_query = query["token"][0]
        if offered is None and "cookie" in headers:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(headers["cookie"])
            except Exception:
                jar = SimpleCookie()
            if COOKIE in jar:
                offered = jar[COOKIE].value
        if offered is None:
            return (401, "a token is required"), None
        if not hmac.compare_digest(offered.encode(), self.token.encode()):
            return (403, "wrong token"), None
        cookie = None
        if from_query is not None:
            cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
        return None, cookie

    def _post_problem(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        if scope["method"] != "POST":
            return (405, "method not allowed")
        origin = headers.get("origin")
        own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"
        if origin is None or origin != own:
            return (403, "cross-origin or origin-less POST refused")
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return (403, "cross-site POST refused")
        if headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return (415, "POST bodies are JSON")
        return None


async def _plain(send: Send, status: int, text: str,
                 extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()), *_SECURITY_HEADERS, *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------- the app


def app(hub: Hub, target: Any) -> Starlette:
    """The observer's Starlette app (unguarded: `serve` wraps it in `Guard`).

    Args:
        hub: the feed's shared state.
        target: the ``otpy_observer`` to ask (a pid, or ``(NAME, node)``).

    Returns:
        The app: ``/`` (the page), ``/static/*``, ``GET /api/node``,
        ``/api/tree``, ``/api/sessions``, ``/api/timeline``,
        ``/api/process?pid=...``, ``/api/events`` (server-sent events),
        ``POST /api/kill/prepare`` and ``POST /api/kill``.
    """

    async def ask(*request: Any) -> Any:
        return await otpy.call(target, request, _CALL_TIMEOUT)

    async def snapshot() -> dict[str, Any]:
        return {"node": await ask("node"), "tree": await ask("tree"),
                "sessions": await ask("sessions"), "timeline": list(hub.timeline),
                "connected": hub.connected}

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def api(request: Request) -> Response:
        what = request.url.path.rsplit("/", 1)[1]
        if what == "timeline":
            return JSONResponse(list(hub.timeline))
        try:
            return JSONResponse(await ask(what))
        except otpy.CallError as err:
            return JSONResponse({"error": f"the node did not answer: {err.reason!r}"},
                                status_code=503)

    async def process(request: Request) -> Response:
        info = await ask("process", request.query_params.get("pid", ""))
        if info is None:
            return JSONResponse({"error": "no such process"}, status_code=404)
        return JSONResponse(info)

    async def events(request: Request) -> Response:
        async def stream() -> AsyncGenerator[web.ServerSentEvent, None]:
            while True:
                changed = hub.changed
                try:
                    yield web.ServerSentEvent("snapshot", await snapshot())
                except otpy.CallError as err:
                    yield web.ServerSentEvent("failure", {"error": repr(err.reason)})
                with trio.move_on_after(REFRESH):
                    await changed.wait()
                await trio.sleep(0.1)  # a burst of events: one snapshot

        return web.EventStream(stream())

    async def body(request: Request) -> dict[str, Any] | None:
        try:
            data = json.loads(await request.body())
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    async def kill_prepare(request: Request) -> Response:
        data = await body(request)
        if data is None or not isinstance(data.get("pid"), str):
            return JSONResponse({"error": "send {\"pid\": ...}"}, status_code=400)
        info = await ask("process", data["pid"])
        if info is None:
            return JSONResponse({"error": "no such process"}, status_code=404)
        if info["system"]:
            return JSONResponse({"error": "a system process is not killed from here"},
                                status_code=403)
        now = trio.current_time()
        for key, (_, deadline) in list(hub.confirmations.items()):
            if deadline < now:
                del hub.confirmations[key]
        confirm = secrets.token_urlsafe(18)
        hub.confirmations[confirm] = (info["pid"], now + CONFIRM_TTL)
        return JSONResponse({"confirm": confirm, "process": {
            k: info[k] for k in ("pid", "name", "kind", "class")}})

    async def kill(request: Request) -> Response:
        data = await body(request)
        if data is None or not isinstance(data.get("pid"), str) or \
                not isinstance(data.get("confirm"), str):
            return JSONResponse({"error": "send {\"pid\": ..., \"confirm\": ...}"},
                                status_code=400)
        issued = hub.confirmations.pop(data["confirm"], None)
        if issued is None or issued[0] != data["pid"] or issued[1] < trio.current_time():
            return JSONResponse({"error": "no valid confirmation for this process"},
                                status_code=403)
        answer = await ask("kill", data["pid"])
        if answer == ("ok", data["pid"]) or answer == ["ok", data["pid"]]:
            return JSONResponse({"killed": data["pid"]})
        return JSONResponse({"error": repr(answer)}, status_code=409)

    return Starlette(routes=[
        Route("/", index),
        Route("/api/process", process),
        Route("/api/events", events),
        Route("/api/kill/prepare", kill_prepare, methods=["POST"]),
        Route("/api/kill", kill, methods=["POST"]),
        *(Route(f"/api/{what}", api) for what in ("node", "tree", "sessions", "timeline")),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ])


async def serve(host: str = "127.0.0.1", port: int = 8000, *, node: str | None = None,
                token: str | None = None,
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the observer page until cancelled; see `otpy.observer.serve`."""
    loopback = is_loopback(host)
    if not loopback and not token:
        raise ValueError(f"binding the observer to {host!r} (not loopback) requires a token")
    if node is None or node == otpy.node():
        target: Any = ensure_backend(current().node)
    else:
        target = (NAME, node)
    hub = Hub()
    feed = otpy.spawn(_feed, hub, target)
    try:
        await web.serve(Guard(app(hub, target), token, loopback), host, port,
                          task_status=task_status)
    finally:
        otpy.exit(feed, otpy.Kill())

