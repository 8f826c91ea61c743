"""A web chat: one supervised Claude Code session per user, answers streamed to the page.

Run it from the repository root (``pip install -e '.[web]'`` first)::

    python examples/web_chat/app.py            # http://127.0.0.1:8000
    python examples/web_chat/app.py --port 0   # any free port (printed)

and open the printed address in a browser or two. What runs:

    one trio program
    └── otpy.open_node()                the body is one otpy process, which runs
        ├── hypercorn (trio worker)     the HTTP server: every connection and every
        │                               request is a trio task of that process
        ├── web_chat.users              an otpy.Registry: user name -> session
        └── web_chat.sessions           a claudecode.Supervisor (one_for_one)
            ├── alice   a session named Via("web_chat.users", "alice")
            └── bob     ...             each owning its real Claude Code CLI

A user's session is started (``start_session``) when that user first sends a
message, and looked up by its name for every message after. The answer is
streamed with ``claudecode.stream(...).text_deltas()`` to the page as
server-sent events (``session``, ``delta``..., then ``done`` or ``error``).
If a session's CLI dies mid-answer, that page gets an ``error`` event, the
supervisor restarts the session under the same name (a fresh conversation),
and the user's next message is answered by it; other users notice nothing.
``GET /api/sessions`` lists the sessions with their CLI's OS pid.

Offline by default: the real CLI talks to ``claudecode.testing.FakeAnthropic``
(started here, on 127.0.0.1) and a small script answers: a greeting, a slowly
streamed story when asked for one (a very slow one when asked for a long
story), an API error for "simulate an error", an echo otherwise. With
``ANTHROPIC_API_KEY`` set (and no ``--offline``) the sessions use the real
API (``--model``, default ``claude-haiku-4-5``). SIGINT or SIGTERM stops the
server; the node then shuts the sessions and their CLIs down.

Anyone who can reach the page is untrusted: the threat model, and what is
refused how (cross-site posts and foreign ``Host`` names, oversized bodies,
too many users, CLIs or queued turns; sessions with no tools), is in this
directory's README and tested in ``tests/claudecode_tests/test_web_chat_attacks.py``.
The user name is claimed, not authenticated: put authentication in front.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import sys
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import trio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import claudecode
import otpy
from claudecode.testing import APIError, FakeAnthropic, RecordedRequest, Text, ToolUse, Turn
from otpy.web import EventStream, ServerSentEvent, serve, until_signalled

HERE = Path(__file__).resolve().parent
REGISTRY = "web_chat.users"
SUPERVISOR = "web_chat.sessions"
USER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
MAX_MESSAGE = 4000
MAX_BODY = 64 * 1024  # bytes of a POST /api/chat body (413 beyond)
SYSTEM_PROMPT = ("You are a friendly assistant chatting with {user} on a web page. "
                 "Answer in a few sentences of plain text.")


def session_name(user: str) -> otpy.Via:
    """The name a user's session is registered under."""
    return otpy.Via(REGISTRY, user)


# ------------------------------------------------------------------ the app


def refuse(status: int, error: str, message: str) -> JSONResponse:
    """A refused request: ``{"error", "message"}`` with an HTTP error status."""
    return JSONResponse({"error": error, "message": message}, status)


@attrs.define
class Chat:
    """The request handlers. They run as trio tasks of the node's body process.

    Attributes:
        options: session options shared by every user (the model backend).
        max_users: the most sessions (distinct user names) the server starts.
        max_turns_per_user: the most answers one user may have running or
            queued at once (429 beyond).
    """

    options: dict[str, Any]
    max_users: int = 100
    max_turns_per_user: int = 2
    in_flight: dict[str, int] = attrs.field(factory=dict)
    starting: trio.Lock = attrs.field(factory=trio.Lock)

    def session_config(self, user: str) -> dict[str, Any]:
        """The options of ``user``'s session."""
        return {**self.options, "name": session_name(user),
                "system_prompt": SYSTEM_PROMPT.format(user=user),
                "include_partial_messages": True}

    async def session_for(self, user: str) -> tuple[otpy.Pid, bool] | None:
        """The user's session, looked up by name; started under the supervisor if new.

        Args:
            user: the (validated) user name.

        Returns:
            ``(pid, started)``: the session and whether this call started it;
            ``None`` when the user is new and ``max_users`` sessions exist.

        Raises:
            otpy.SupervisorError: the session could not be started.
        """
        pid = otpy.whereis(session_name(user))
        if pid is not None:
            return pid, False
        async with self.starting:  # count and start as one step: no burst gets past the cap
            pid = otpy.whereis(session_name(user))
            if pid is not None:
                return pid, False
            if len(await claudecode.Supervisor.list_sessions(SUPERVISOR)) >= self.max_users:
                return None
            try:
                config = self.session_config(user)
                return (await claudecode.Supervisor.start_session(SUPERVISOR, config, id=user),
                        True)
            except otpy.SupervisorError as err:
                # The session exists, restarting under its supervisor.
                if isinstance(err.reason, tuple) and err.reason[0] == "already_started":
                    return err.reason[1], False
                raise

    async def answer(self, user: str, pid: otpy.Pid, started: bool,
                     message: str) -> AsyncGenerator[ServerSentEvent, None]:
        """The events of one answer: ``session``, ``delta``..., then ``done`` or ``error``."""
        yield ServerSentEvent("session", {"user": user, "session": str(pid), "started": started,
                                          "served_by": str(otpy.self())})
        stream = claudecode.stream(pid, message)
        try:
            async with stream:  # leaving it early (the page went away) interrupts the turn
                async for text in stream.text_deltas():
                    yield ServerSentEvent("delta", {"text": text})
        except claudecode.StreamError as err:
            # e.g. the CLI was killed: the session exits and its supervisor restarts it.
            yield ServerSentEvent("error", {"error": "StreamError", "message": str(err),
                                            "reason": type(err.reason).__name__})
            return
        result = stream.result
        if result is None or result.is_error:
            failed = claudecode.ResultError(result)
            yield ServerSentEvent("error", {"error": "ResultError", "message": str(failed)})
            return
        yield ServerSentEvent("done", {"session_id": result.session_id,
                                       "duration_ms": result.duration_ms,
                                       "cost_usd": result.total_cost_usd})

    async def chat(self, request: Request) -> Response:
        """``POST /api/chat`` with ``{"user", "message"}``: the answer as an event stream.

        Refused before any session is touched: a body that is not declared
        ``application/json`` (415: a cross-site form or ``text/plain`` fetch
        sends none, and a cross-site JSON fetch needs a CORS preflight this
        server never grants), an ``Origin`` other than this server's or a
        browser's ``Sec-Fetch-Site: cross-site`` (403),
        a body over ``MAX_BODY`` bytes (413), a bad user name or message
        (400), a new user when ``max_users`` sessions exist, or a user with
        ``max_turns_per_user`` answers already running or queued (429).
        """
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return refuse(415, "UnsupportedMediaType", "the body must be application/json")
        origin = request.headers.get("origin")
        if (origin is not None and urlsplit(origin).netloc.lower() != request.headers.get(
                "host", "").lower()) or request.headers.get("sec-fetch-site") == "cross-site":
            return refuse(403, "CrossOrigin", f"requests from {origin} are not accepted")
        body = await read_body(request, MAX_BODY)
        if body is None:
            return refuse(413, "TooLarge", f"the body must be at most {MAX_BODY} bytes")
        try:
            data = json.loads(body)
        except ValueError:
            return refuse(400, "BadRequest", "the body must be JSON")
        if not isinstance(data, dict):
            return refuse(400, "BadRequest", "the body must be a JSON object")
        user, message = data.get("user"), data.get("message")
        if not isinstance(user, str) or not USER_NAME.fullmatch(user):
            return refuse(400, "BadRequest", "user: 1 to 32 letters, digits, '.', '_' or '-'")
        if not isinstance(message, str) or not message.strip() or len(message) > MAX_MESSAGE:
            return refuse(400, "BadRequest",
                          f"message: a non-empty string of at most {MAX_MESSAGE} characters")
        if self.in_flight.get(user, 0) >= self.max_turns_per_user:
            return refuse(429, "TooManyTurns", f"{user} already has {self.max_turns_per_user} "
                          "answers running or queued; wait for one to finish")
        self.in_flight[user] = self.in_flight.get(user, 0) + 1
        answer: EventStream | None = None  # once it exists, it releases the slot
        try:
            found = await self.session_for(user)
            if found is None:
                return refuse(429, "TooManyUsers", f"this server already chats with "
                              f"{self.max_users} users; no session for a new name")
            pid, started = found
            answer = EventStream(self.answer(user, pid, started, message.strip()),
                                 on_close=functools.partial(self.release, user))
            return answer
        except otpy.SupervisorError as err:
            return refuse(503, "SupervisorError", str(err))
        finally:
            if answer is None:
                self.release(user)

    def release(self, user: str) -> None:
        """One of ``user``'s answers is over (sent, failed, or abandoned)."""
        left = self.in_flight.pop(user, 0) - 1
        if left > 0:
            self.in_flight[user] = left

    async def sessions(self, request: Request) -> Response:
        """``GET /api/sessions``: every user's session, with its CLI's OS pid."""
        described = []
        for row in await claudecode.Supervisor.list_sessions(SUPERVISOR):
            pid = row.pid if isinstance(row.pid, otpy.Pid) else None  # None: restarting
            described.append(await describe(row.id, pid))
        return JSONResponse({"served_by": str(otpy.self()), "sessions": described})

    async def session(self, request: Request) -> Response:
        """``GET /api/sessions/{user}``: one user's session (404 when there is none)."""
        user = request.path_params["user"]
        pid = otpy.whereis(session_name(user)) if USER_NAME.fullmatch(user) else None
        if pid is None:
            return JSONResponse({"error": f"no session for {user!r}"}, 404)
        return JSONResponse(await describe(user, pid))


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, read no further than ``limit`` bytes (``None`` beyond).

    A declared ``Content-Length`` over the limit is refused before reading
    anything; a chunked body is cut off as soon as it passes the limit.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        return None
    return b"".join(chunks)


async def describe(user: str, pid: otpy.Pid | None) -> dict[str, Any]:
    """What the page and the operator see of one session."""
    row: dict[str, Any] = {"user": user, "session": None if pid is None else str(pid)}
    if pid is None:
        return row
    try:
        info = await claudecode.adapter_info(pid)
    except otpy.CallError:  # it exited a moment ago
        return {"user": user, "session": None}
    row.update(os_pid=info["os_pid"], state=info["state"], turns=info["turns"],
               active=info["active"], queued=info["queued"])
    return row


async def index(request: Request) -> Response:
    """The page."""
    return FileResponse(HERE / "static" / "index.html")


SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """ASGI middleware: every response says: no framing, scripts of this origin only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def build_app(chat: Chat, allowed_hosts: list[str]) -> Starlette:
    """The Starlette application: the page, its static files and the JSON/SSE API.

    A request whose ``Host`` header names none of ``allowed_hosts`` gets a 400
    (DNS rebinding: a hostile name that resolves to this server's address).
    """
    return Starlette(routes=[
        Route("/", index),
        Route("/api/chat", chat.chat, methods=["POST"]),
        Route("/api/sessions", chat.sessions),
        Route("/api/sessions/{user}", chat.session),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ], middleware=[Middleware(SecurityHeaders),
                   Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts,
                              www_redirect=False)])


def allowed_hosts(host: str, extra: list[str]) -> list[str]:
    """The host names the server answers to: ``--host``, its loopback forms, ``--allowed-host``."""
    names = [name.strip("[]").lower() for name in (host, *extra)]
    if names[0] in ("127.0.0.1", "localhost", "::1"):
        names += ["127.0.0.1", "localhost", "::1"]
    names += [f"[{name}]" for name in names if ":" in name]  # an IPv6 Host header: [::1]:8000
    return list(dict.fromkeys(names))


# ------------------------------------------------------------- the model


STORY = (
    "Once upon a time, in a node far away, there lived a small process named Pid. "
    "Every morning Pid opened its mailbox, took the oldest letter it understood and "
    "left the others for later. One day its link to a friend broke, and an exit "
    "signal arrived. Pid did not panic: a supervisor had been watching all along, "
    "and a brand-new Pid was started under the very same name, with a fresh mailbox "
    "and no memory of the trouble. The other processes never even noticed. The end."
)


def offline_reply(request: RecordedRequest) -> Turn | APIError:
    """The offline model: a few canned answers, streamed word by word.

    Args:
        request: the CLI's request to the Messages API.

    Returns:
        The scripted answer. A story is streamed slowly (about 6 s), so a
        stream can be watched, or interrupted, mid-answer; a *long* story
        takes about 100 s (time to close the page and see the turn
        interrupted); "simulate an error" gets an API error (the turn fails,
        the session stays); "run <command>" plays a prompt-injected model:
        it answers with a ``Bash`` tool_use of ``<command>`` (which the
        session's CLI, started with no tools, must refuse), then reports
        what the CLI sent back.
    """
    prompt = request.last_user_text.strip()
    named = re.search(r"chatting with (\S+) on a web page", request.system_text)
    user = named.group(1) if named else "there"
    turn = max(1, len(request.messages) // 2)  # the CLI sends 2 messages per exchange
    words = prompt.lower().strip("!?. ").split()
    chunk_delay = 0.01
    if request.tool_results:  # what the CLI sent back for the tool_use below
        text = f"The tool answered: {request.tool_result_text()!r}"
        return Turn([Text(text, chunks=max(1, len(text.split(" "))))], chunk_delay=chunk_delay)
    if prompt.lower().startswith("run "):  # a prompt-injected model: it asks for a shell
        return Turn([Text("Running it. "), ToolUse("Bash", {"command": prompt[4:]})])
    if prompt.lower().startswith("simulate an error"):
        return APIError(529, "Overloaded (a scripted error of the offline model)",
                        should_retry=False)
    if "story" in words and "long" in words:  # close the page mid-way: the turn is interrupted
        text, chunk_delay = f"{STORY} And because it was a long story, it began again. {STORY}", 0.5
    elif "story" in words:
        text, chunk_delay = STORY, 0.07
    elif words[:1] in (["hi"], ["hello"], ["hey"]):
        text = (f"Hello {user}! I am a Claude Code session of your own, "
                "supervised and streaming. Ask me for a story to watch one arrive.")
    else:
        text = f"You said: {prompt!r}. (An offline answer, but it came through your own CLI.)"
    text += f" [message {turn} of our conversation]"
    return Turn([Text(text, chunks=max(1, len(text.split(" "))))], chunk_delay=chunk_delay)


@contextlib.asynccontextmanager
async def model_backend(offline: bool, model: str,
                        cli_idle_timeout: float) -> AsyncIterator[dict[str, Any]]:
    """Session options: the offline fake, or the real API when a key is set.

    Either way the sessions get no tools (``tools=[]``), and a session whose
    CLI has had no turn for ``cli_idle_timeout`` seconds stops it (it comes
    back, resuming the conversation, with the user's next message).
    """
    with tempfile.TemporaryDirectory(prefix="web-chat-") as home:
        env = {"HOME": home, "CLAUDE_CONFIG_DIR": os.path.join(home, ".claude")}
        common = {"cwd": home, "tools": [], "cli_idle_timeout": cli_idle_timeout}
        if not offline and os.environ.get("ANTHROPIC_API_KEY"):
            print(f"web_chat: the real Anthropic API (model {model})", flush=True)
            yield {**common, "model": model, "env": env, "max_turns": 1}
            return
        async with FakeAnthropic.serve(log_requests=False, default=offline_reply) as fake:
            print(f"web_chat: offline, FakeAnthropic at {fake.base_url}", flush=True)
            yield {**common, "env": {**env, **fake.env(max_retries=0)}}


# ------------------------------------------------------------------- main


async def main(args: argparse.Namespace) -> None:
    """Run the node, the supervisor and the web server until SIGINT / SIGTERM."""
    async with (model_backend(args.offline, args.model, args.cli_idle_timeout) as options,
                otpy.open_node()):
        await otpy.Registry.start_link(REGISTRY)
        await claudecode.Supervisor.start_link([], name=SUPERVISOR, max_restarts=5,
                                               max_seconds=10, max_live_clis=args.max_clis)
        chat = Chat(options, max_users=args.max_users,
                    max_turns_per_user=args.max_turns_per_user)
        app = build_app(chat, allowed_hosts(args.host, args.allowed_host))
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(functools.partial(
                serve, app, args.host, args.port, shutdown_trigger=until_signalled))
            print(f"web_chat: serving on {urls[0]} (process {otpy.self()})", flush=True)
    print("web_chat: stopped", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    parser.add_argument("--offline", action="store_true",
                        help="use FakeAnthropic even when ANTHROPIC_API_KEY is set")
    parser.add_argument("--model", default="claude-haiku-4-5",
                        help="the model, with the real API")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="another host name the page is reached by (repeatable); "
                             "requests naming any other host get a 400")
    parser.add_argument("--max-users", type=int, default=100,
                        help="the most sessions (distinct user names); a new name beyond "
                             "gets a 429")
    parser.add_argument("--max-clis", type=int, default=8,
                        help="the most CLIs alive at once (idle ones hibernate to make room)")
    parser.add_argument("--cli-idle-timeout", type=float, default=300.0, metavar="SECONDS",
                        help="a session stops its CLI after this long without a turn")
    parser.add_argument("--max-turns-per-user", type=int, default=2,
                        help="answers one user may have running or queued (429 beyond)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    trio.run(main, parse_args())
    sys.exit(0)
