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
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import sys
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from web import EventStream, ServerSentEvent, serve, until_signalled

import claudecode
import otpy
from claudecode.testing import APIError, FakeAnthropic, RecordedRequest, Text, Turn

HERE = Path(__file__).resolve().parent
REGISTRY = "web_chat.users"
SUPERVISOR = "web_chat.sessions"
USER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
MAX_MESSAGE = 4000
SYSTEM_PROMPT = ("You are a friendly assistant chatting with {user} on a web page. "
                 "Answer in a few sentences of plain text.")


def session_name(user: str) -> otpy.Via:
    """The name a user's session is registered under."""
    return otpy.Via(REGISTRY, user)


# ------------------------------------------------------------------ the app


@attrs.frozen
class Chat:
    """The request handlers. They run as trio tasks of the node's body process.

    Attributes:
        options: session options shared by every user (the model backend).
    """

    options: dict[str, Any]

    def session_config(self, user: str) -> dict[str, Any]:
        """The options of ``user``'s session."""
        return {**self.options, "name": session_name(user),
                "system_prompt": SYSTEM_PROMPT.format(user=user),
                "include_partial_messages": True}

    async def session_for(self, user: str) -> tuple[otpy.Pid, bool]:
        """The user's session, looked up by name; started under the supervisor if new.

        Args:
            user: the (validated) user name.

        Returns:
            ``(pid, started)``: the session and whether this call started it.

        Raises:
            otpy.SupervisorError: the session could not be started.
        """
        pid = otpy.whereis(session_name(user))
        if pid is not None:
            return pid, False
        try:
            config = self.session_config(user)
            return await claudecode.Supervisor.start_session(SUPERVISOR, config, id=user), True
        except otpy.SupervisorError as err:
            # Another request of this user (another tab) started it a moment ago.
            if isinstance(err.reason, tuple) and err.reason[0] == "already_started":
                return err.reason[1], False
            raise

    async def answer(self, user: str, message: str) -> AsyncGenerator[ServerSentEvent, None]:
        """The events of one answer: ``session``, ``delta``..., then ``done`` or ``error``."""
        try:
            pid, started = await self.session_for(user)
        except otpy.SupervisorError as err:
            yield ServerSentEvent("error", {"error": "SupervisorError", "message": str(err)})
            return
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
        """``POST /api/chat`` with ``{"user", "message"}``: the answer as an event stream."""
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, 400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, 400)
        user, message = body.get("user"), body.get("message")
        if not isinstance(user, str) or not USER_NAME.fullmatch(user):
            return JSONResponse(
                {"error": "user: 1 to 32 letters, digits, '.', '_' or '-'"}, 400)
        if not isinstance(message, str) or not message.strip() or len(message) > MAX_MESSAGE:
            return JSONResponse(
                {"error": f"message: a non-empty string of at most {MAX_MESSAGE} characters"},
                400)
        return EventStream(self.answer(user, message.strip()))

    async def sessions(self, request: Request) -> Response:
        """``GET /api/sessions``: every user's session, with its CLI's OS pid."""
        rows = await claudecode.Supervisor.list_sessions(SUPERVISOR)
        return JSONResponse({"served_by": str(otpy.self()),
                             "sessions": [await describe(row.id, row.pid) for row in rows]})

    async def session(self, request: Request) -> Response:
        """``GET /api/sessions/{user}``: one user's session (404 when there is none)."""
        user = request.path_params["user"]
        pid = otpy.whereis(session_name(user))
        if pid is None:
            return JSONResponse({"error": f"no session for {user!r}"}, 404)
        return JSONResponse(await describe(user, pid))


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


def build_app(chat: Chat) -> Starlette:
    """The Starlette application: the page, its static files and the JSON/SSE API."""
    return Starlette(routes=[
        Route("/", index),
        Route("/api/chat", chat.chat, methods=["POST"]),
        Route("/api/sessions", chat.sessions),
        Route("/api/sessions/{user}", chat.session),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ])


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
        the session stays).
    """
    prompt = request.last_user_text.strip()
    named = re.search(r"chatting with (\S+) on a web page", request.system_text)
    user = named.group(1) if named else "there"
    turn = max(1, len(request.messages) // 2)  # the CLI sends 2 messages per exchange
    words = prompt.lower().strip("!?. ").split()
    chunk_delay = 0.01
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
async def model_backend(offline: bool, model: str) -> AsyncIterator[dict[str, Any]]:
    """Session options: the offline fake, or the real API when a key is set."""
    with tempfile.TemporaryDirectory(prefix="web-chat-") as home:
        env = {"HOME": home, "CLAUDE_CONFIG_DIR": os.path.join(home, ".claude")}
        if not offline and os.environ.get("ANTHROPIC_API_KEY"):
            print(f"web_chat: the real Anthropic API (model {model})", flush=True)
            yield {"model": model, "env": env, "cwd": home, "max_turns": 1, "tools": []}
            return
        async with FakeAnthropic.serve(log_requests=False, default=offline_reply) as fake:
            print(f"web_chat: offline, FakeAnthropic at {fake.base_url}", flush=True)
            yield {"env": {**env, **fake.env(max_retries=0)}, "cwd": home, "tools": []}


# ------------------------------------------------------------------- main


async def main(args: argparse.Namespace) -> None:
    """Run the node, the supervisor and the web server until SIGINT / SIGTERM."""
    async with model_backend(args.offline, args.model) as options, otpy.open_node():
        await otpy.Registry.start_link(REGISTRY)
        await claudecode.Supervisor.start_link([], name=SUPERVISOR, max_restarts=5,
                                               max_seconds=10)
        app = build_app(Chat(options))
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
    return parser.parse_args(argv)


if __name__ == "__main__":
    trio.run(main, parse_args())
    sys.exit(0)
