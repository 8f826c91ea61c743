"""``examples/web_chat``'s threat model, tested as an attacker would.

Each test attacks the example's real server (``python examples/web_chat/app.py
--port 0 --offline``, its own OS process, as ``test_web_chat.py`` starts it)
from outside: plain HTTP (``http.client``, which lets a test send any
``Host`` header, declare a body it never sends, or stream a chunked one) for
the protocol-level attacks, and Debian's chromium driven by playwright for
the ones a browser makes: a hostile page on another origin posting to the
chat, and markup in a message. The threat model these tests check, line by
line, is in ``examples/web_chat/README.md`` ("Threat model").

Every test checks that the attack was refused *and* that it had no effect
(no session started for the victim name, no file created, no script run):
against the server before the hardening, each of them fails.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from _web_chat_server import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, Server
from playwright.sync_api import Browser, expect, sync_playwright

TIMEOUT = 30.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the attacks that start no session of their own (or one each)."""
    running = Server(tmp_path_factory.mktemp("web_chat"))
    try:
        yield running
    finally:
        running.shutdown()


@pytest.fixture(autouse=True)
def no_tracebacks(request: pytest.FixtureRequest) -> Iterator[None]:
    """No attack makes the shared server log a traceback."""
    if "server" not in request.fixturenames:
        yield
        return
    server: Server = request.getfixturevalue("server")
    before = len(server.stderr())
    yield
    time.sleep(0.2)  # what the last request may still log
    logged = server.stderr()[before:]
    unexpected = [block for block in logged.split("Traceback (most recent call last):")[1:]
                  if HYPERCORN_RACE not in block]
    assert not unexpected, logged
    assert server.get("/api/sessions")["served_by"]  # and the server still answers


# A hypercorn race (0.17, trio worker), not the app's: when a response is sent
# before the request body is complete (a refused body) and the client closes
# at once, hypercorn's reader task shuts the socket down (send_eof) while the
# response's last, empty write is under way; that write fails and hypercorn
# logs the traceback. The connection was over anyway; the server carries on.
HYPERCORN_RACE = ("trio.BusyResourceError: another task is currently sending data "
                  "on this SocketStream")


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap installs Debian's chromium")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Reply:
    """A complete HTTP response: status, headers, body; ``events`` parses an event stream."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self.body = response.read()

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[tuple[str, Any]]:
        out = []
        for raw in self.body.decode().split("\n\n"):
            fields = dict(line.split(": ", 1) for line in raw.splitlines() if ": " in line)
            if "event" in fields:
                out.append((fields["event"], json.loads(fields["data"])))
        return out


def connect(server: Server) -> http.client.HTTPConnection:
    address = urlsplit(server.url)
    assert address.hostname is not None and address.port is not None
    return http.client.HTTPConnection(address.hostname, address.port, timeout=TIMEOUT)


def request(server: Server, method: str, path: str, body: bytes = b"",
            headers: dict[str, str] | None = None) -> Reply:
    """Send one request with exactly these headers (``Host`` too, if given)."""
    headers = dict(headers or {})
    conn = connect(server)
    try:
        conn.putrequest(method, path, skip_host="Host" in headers,
                        skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if method == "POST":
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        return Reply(conn.getresponse())
    finally:
        conn.close()


def chat(server: Server, user: str, message: str, **headers: str) -> Reply:
    """``POST /api/chat`` as the page sends it (plus or minus ``headers``)."""
    sent = {"Content-Type": "application/json", **headers}
    body = json.dumps({"user": user, "message": message}).encode()
    return request(server, "POST", "/api/chat", body,
                   {k.replace("_", "-"): v for k, v in sent.items() if v})


def answered(reply: Reply) -> str:
    """The text of a streamed answer that ended with ``done``."""
    assert reply.status == 200, (reply.status, reply.body)
    events = reply.events()
    assert events[0][0] == "session" and events[-1][0] == "done", events
    return "".join(data["text"] for name, data in events if name == "delta")


def has_session(server: Server, user: str) -> bool:
    return user in {row["user"] for row in server.get("/api/sessions")["sessions"]}


# ----------------------------------------------------------- cross-site requests


def test_simple_cross_site_posts_are_refused_before_any_session(server: Server) -> None:
    """T1: what a hostile page can send without a CORS preflight gets a 415."""
    body = json.dumps({"user": "csrf-victim", "message": "hello"}).encode()
    for content_type in ("text/plain", "text/plain;charset=UTF-8",
                         "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                         ""):
        headers = {"Content-Type": content_type} if content_type else {}
        reply = request(server, "POST", "/api/chat", body, headers)
        assert reply.status == 415, (content_type, reply.status, reply.body)
        assert reply.json()["error"] == "UnsupportedMediaType"
    assert not has_session(server, "csrf-victim")


def test_a_foreign_origin_is_refused(server: Server) -> None:
    """T1: a JSON post that says it comes from another origin gets a 403."""
    own = server.url
    for origin in ("http://evil.example", own.replace("127.0.0.1", "localhost"),
                   own.rsplit(":", 1)[0] + ":1", "null"):
        reply = chat(server, "origin-victim", "hello", Origin=origin)
        assert reply.status == 403, (origin, reply.status, reply.body)
        assert reply.json()["error"] == "CrossOrigin"
    reply = chat(server, "origin-victim", "hello", Sec_Fetch_Site="cross-site")
    assert reply.status == 403 and reply.json()["error"] == "CrossOrigin"
    assert not has_session(server, "origin-victim")
    # The page's own origin is accepted.
    assert "You said" in answered(chat(server, "origin-ok", "from the page", Origin=own))


def test_the_page_cannot_be_framed_and_runs_only_its_own_scripts(server: Server) -> None:
    """T1 (clickjacking) and T3 (defence in depth): the headers of every answer."""
    for path in ("/", "/static/chat.js", "/api/sessions"):
        reply = request(server, "GET", path)
        assert reply.status == 200, path
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        policy = reply.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    assert "Access-Control-Allow-Origin" not in request(server, "GET", "/api/sessions").headers


def test_a_foreign_host_name_is_refused(server: Server) -> None:
    """T2 (DNS rebinding): a request naming another host gets a 400, reads and writes alike."""
    port = urlsplit(server.url).port
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}"):
        reply = request(server, "GET", "/api/sessions", headers={"Host": host})
        assert reply.status == 400 and b"sessions" not in reply.body, (host, reply.body)
        reply = chat(server, "rebind-victim", "hello", Host=host,
                     Origin=f"http://{host}")
        assert reply.status == 400, (host, reply.status, reply.body)
    assert not has_session(server, "rebind-victim")
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        assert request(server, "GET", "/api/sessions", headers={"Host": host}).status == 200


# ------------------------------------------------------------------- input


def test_a_declared_huge_body_is_refused_unread(server: Server) -> None:
    """T4: a body declared at 1 GiB is refused at once, before one byte of it is sent."""
    conn = connect(server)
    try:
        conn.putrequest("POST", "/api/chat")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(1 << 30))
        conn.endheaders()
        reply = Reply(conn.getresponse())
    finally:
        conn.close()
    assert reply.status == 413 and reply.json()["error"] == "TooLarge"


def test_a_chunked_body_is_cut_off_at_the_limit(server: Server) -> None:
    """T4: a chunked body (no length declared) is refused once it passes 64 KiB, unfinished."""
    conn = connect(server)
    try:
        conn.putrequest("POST", "/api/chat")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        chunk = b" " * 8192
        for _ in range(10):  # 80 KiB of whitespace, and the body never ends
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        reply = Reply(conn.getresponse())
    finally:
        conn.close()
    assert reply.status == 413 and reply.json()["error"] == "TooLarge"


def test_user_names_and_messages_are_checked(server: Server) -> None:
    """T5: a user name carrying markup or a path, or an oversized message, gets a 400."""
    for user in ("<img src=x onerror=alert(1)>", "../../etc", "a" * 33, "", "al ice"):
        reply = chat(server, user, "hello")
        assert reply.status == 400, (user, reply.body)
    assert chat(server, "long-message", "x" * 4001).status == 400
    names = {row["user"] for row in server.get("/api/sessions")["sessions"]}
    assert not {n for n in names if not n.replace("-", "").isalnum()}, names


# ---------------------------------------------------------------- resources


def test_users_beyond_max_users_are_refused_and_clis_are_budgeted(tmp_path: Path) -> None:
    """T6: --max-users caps the sessions (429 for a new name, even in a burst), --max-clis
    the live CLIs (an idle one hibernates to make room)."""
    server = Server(tmp_path, "--max-users", "2", "--max-clis", "1")
    try:
        users = [f"burst{n}" for n in range(6)]
        with ThreadPoolExecutor(len(users)) as pool:  # six new names at once
            replies = dict(zip(users, pool.map(lambda u: chat(server, u, "hello"), users),
                               strict=True))
        admitted = sorted(u for u, reply in replies.items() if reply.status == 200)
        assert len(admitted) == 2, {u: reply.status for u, reply in replies.items()}
        for user, reply in replies.items():
            if user in admitted:
                assert f"Hello {user}!" in answered(reply)
            else:
                assert reply.status == 429 and reply.json()["error"] == "TooManyUsers"
        sessions = server.get("/api/sessions")["sessions"]
        assert sorted(row["user"] for row in sessions) == admitted
        states = sorted(row["state"] for row in sessions)
        assert states == ["hibernated", "ready"], sessions  # one CLI made room for the other
        reply = chat(server, "mallory", "hello")
        assert reply.status == 429 and not has_session(server, "mallory")
        # The users already there go on chatting; a hibernated conversation resumes.
        for user in admitted:
            back = answered(chat(server, user, "are you there"))
            assert "You said: 'are you there'" in back and "[message 2 of" in back, back
    finally:
        server.shutdown()
    assert "Traceback" not in server.stderr(), server.stderr()


def test_a_user_cannot_queue_unbounded_turns(server: Server) -> None:
    """T7: a third concurrent answer for one user gets a 429; other users are served."""
    body = json.dumps({"user": "greedy", "message": "tell me a long story"}).encode()
    held = []
    try:
        for _ in range(2):  # two answers of about 100 s each: one running, one queued
            conn = connect(server)
            conn.request("POST", "/api/chat", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200
            held.append(conn)
        reply = chat(server, "greedy", "one more")
        assert reply.status == 429 and reply.json()["error"] == "TooManyTurns"
        assert "Hello other!" in answered(chat(server, "other", "hello"))
    finally:
        for conn in held:  # the page goes away: both turns are given up
            conn.close()
    # Their slots come back once the answers are over.
    deadline = time.monotonic() + TIMEOUT
    while (reply := chat(server, "greedy", "still here")).status == 429:
        assert time.monotonic() < deadline, "greedy's slots never came back"
        time.sleep(0.1)
    assert "You said: 'still here'" in answered(reply)


# ------------------------------------------------------------------- tools


def test_a_prompt_injected_tool_use_runs_nothing(server: Server, tmp_path: Path) -> None:
    """T8: the model asks for Bash; the CLI has no tools, nothing runs, the turn ends typed."""
    marker = tmp_path / "pwned"
    for command in (f"touch {marker}", f"echo owned > {marker}"):
        text = answered(chat(server, "injected", f"run {command}"))
        assert "No such tool available: Bash" in text, text
    assert not marker.exists()
    assert "You said: 'and now?'" in answered(chat(server, "injected", "and now?"))


# ----------------------------------------------------------------- browsers

HOSTILE_PAGE = """<!doctype html>
<html><body>
<iframe name="sink"></iframe>
<form id="form" method="POST" enctype="text/plain" target="sink">
  <input name='{"user":"form-victim","message":"hello","x":"' value='"}'>
</form>
<script>
window.results = {};
const chat = CHAT + "/api/chat";
async function attempt(name, url, init) {
  try {
    const response = await fetch(url, init);
    window.results[name] = `${response.type} ${response.status}`;
  } catch (err) {
    window.results[name] = `failed: ${err}`;
  }
}
(async () => {
  const body = (user) => JSON.stringify({ user, message: "hello" });
  await attempt("text/plain", chat, { method: "POST", mode: "no-cors",
    headers: { "content-type": "text/plain" }, body: body("plain-victim") });
  await attempt("json", chat, { method: "POST",
    headers: { "content-type": "application/json" }, body: body("json-victim") });
  await attempt("read", CHAT + "/api/sessions", {});
  const form = document.getElementById("form");
  form.action = chat;
  await new Promise((resolve) => {
    document.querySelector("iframe").onload = resolve;
    form.submit();
  });
  window.done = true;
})();
</script>
</body></html>
"""


def serve_hostile_page(chat_url: str) -> tuple[ThreadingHTTPServer, str]:
    """Another origin (127.0.0.1, another port) serving a page that attacks the chat."""
    page = HOSTILE_PAGE.replace("CHAT", json.dumps(chat_url)).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


def test_a_hostile_page_cannot_chat_or_read_in_the_victims_browser(
        server: Server, browser: Browser) -> None:
    """T1 in a real browser: fetch (text/plain, JSON) and a text/plain form, from another origin."""
    httpd, url = serve_hostile_page(server.url)
    try:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("window.done === true", timeout=WAIT_MS)
        results = page.evaluate("window.results")
    finally:
        httpd.shutdown()
        httpd.server_close()
    # no-cors: the request was sent (and refused), its response is opaque to the page;
    # JSON: the preflight is not granted, so the POST is never sent; nor can it read.
    assert results["text/plain"] == "opaque 0", results
    assert results["json"].startswith("failed"), results
    assert results["read"].startswith("failed"), results
    users = {row["user"] for row in server.get("/api/sessions")["sessions"]}
    assert not users & {"plain-victim", "json-victim", "form-victim"}, users


def test_markup_in_a_message_is_shown_as_text(server: Server, browser: Browser) -> None:
    """T3: markup the model echoes back (or the user sent) is text on the page, never code."""
    payload = ('<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
               '<b id="bold">bold</b>')
    page = browser.new_page()
    page.goto(server.url)
    page.fill("#user", "xss")
    page.fill("#message", payload)
    page.click("#send")
    answer = page.locator("#log .msg.answer").first
    expect(answer).to_have_class("msg answer done", timeout=WAIT_MS)
    assert payload in page.locator("#log .msg.question").first.inner_text()
    assert "onerror=\"window.__pwned=1\"" in answer.inner_text()
    assert page.locator("#log img, #log script, #bold").count() == 0
    assert page.evaluate("window.__pwned") is None
