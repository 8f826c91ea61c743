"""``examples/web_chat`` end to end: the server a user runs, two pages in a real chromium.

The server is the example's own entry point, ``python examples/web_chat/app.py
--port 0 --offline``, in its own OS process: one otpy node whose body serves
HTTP with hypercorn's trio worker, per-user sessions under a
``claudecode.Supervisor``, each running the real pinned CLI against the
example's FakeAnthropic script. The browser is Debian's ``chromium``
(``/usr/bin/chromium``, installed by ``scripts/bootstrap``; missing, the
test fails) driven by playwright, which never downloads a browser here.

Why playwright's sync API, from a plain (not trio) test function: the
server under test is another process, so this test needs no event loop of
its own. Playwright's async API needs asyncio, which cannot run inside trio
(pytest-trio runs async tests on trio); its sync API runs its own asyncio
loop on a greenlet of the calling thread, so a sync test drives the browser
directly from one thread, with nothing to bridge. Both pages are driven
from this thread: their fetch streams run concurrently inside the browser
while the test waits on DOM conditions (``expect`` polls); no sleeps.

The story: alice and bob chat at once; both ask for a slowly streamed story;
alice's CLI is killed (SIGKILL) mid-answer. Her page shows the error, her
next message is answered by the restarted session (a fresh conversation,
a new pid under the same name); bob's story finishes and his conversation
goes on in the same session, through a turn that fails with an API error
(shown as a ``ResultError``) and through a long story abandoned by reloading
the page (the session interrupts the turn: the next message is answered
within the test's 30 s wait, the story would take 100 s). Screenshots of
both pages land in the test's tmp dir. SIGTERM then stops the server
cleanly: no CLI is left behind.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from _session_env import alive, processes_using
from _web_chat_server import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, Server
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright


def open_chat(browser: Browser, url: str, user: str) -> Page:
    """A page of its own (a fresh browser context), the user's name typed in."""
    page = browser.new_context(viewport={"width": 900, "height": 900}).new_page()
    page.goto(url)
    page.fill("#user", user)
    return page


def send(page: Page, message: str) -> None:
    """Type a message and press Send (returns at once; the answer streams in)."""
    expect(page.locator("#send")).to_be_enabled(timeout=WAIT_MS)
    page.fill("#message", message)
    page.click("#send")


def answer(page: Page, n: int) -> Locator:
    """The n-th answer bubble of the page (0-based)."""
    return page.locator("#log .msg.answer").nth(n)


def finished(page: Page, n: int, outcome: str) -> str:
    """Wait until answer ``n`` ends with ``outcome`` ("done" or "error"); its text."""
    bubble = answer(page, n)
    expect(bubble).to_have_class(re.compile(rf"\b{outcome}\b"), timeout=WAIT_MS)
    return bubble.inner_text()


def test_two_pages_chat_one_cli_killed_mid_answer(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap installs Debian's chromium")
    server = Server(tmp_path)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=CHROMIUM_ARGS)
            alice = open_chat(browser, server.url, "alice")
            bob = open_chat(browser, server.url, "bob")

            # 1. Both pages chat at once; each user gets a session of their own.
            send(alice, "Hello")
            send(bob, "Hi there")
            assert "Hello alice!" in finished(alice, 0, "done")
            assert "Hello bob!" in finished(bob, 0, "done")
            for page in (alice, bob):
                assert "[message 1 of our conversation]" in answer(page, 0).inner_text()
                expect(page.locator("#status")).to_contain_text("served by otpy process",
                                                                timeout=WAIT_MS)
            alice_first = answer(alice, 0).get_attribute("data-session")
            bob_session = answer(bob, 0).get_attribute("data-session")
            assert alice_first and bob_session and alice_first != bob_session
            # Every request ran in the one otpy process of the node.
            served_by = set()
            for page in (alice, bob):
                found = re.search(r"served by otpy process (\S+)\.",
                                  page.locator("#status").inner_text())
                assert found is not None
                served_by.add(found.group(1))
            assert len(served_by) == 1
            listed = server.get("/api/sessions")
            assert {row["user"] for row in listed["sessions"]} == {"alice", "bob"}
            assert {listed["served_by"]} == served_by

            # 2. Both ask for a slow story; alice's CLI is killed in the middle of hers.
            send(alice, "Tell me a story")
            send(bob, "Tell me a story")
            expect(answer(alice, 1)).to_contain_text("Once upon", timeout=WAIT_MS)
            expect(answer(bob, 1)).to_contain_text("Once upon", timeout=WAIT_MS)
            info = server.get("/api/sessions/alice")
            assert info["session"] == alice_first and info["active"]
            cli_pids = {info["os_pid"], server.get("/api/sessions/bob")["os_pid"]}
            os.kill(info["os_pid"], signal.SIGKILL)

            failed = finished(alice, 1, "error")
            assert "StreamError" in failed and "killed by SIGKILL" in failed
            assert "The end." not in failed  # it was cut off mid-answer
            story = finished(bob, 1, "done")  # bob's stream is unaffected
            assert "The end." in story and "[message 2 of our conversation]" in story

            # 3. Alice's next message is answered by the restarted session.
            send(alice, "Are you back?")
            back = finished(alice, 2, "done")
            assert "You said: 'Are you back?'" in back
            assert "[message 1 of our conversation]" in back  # a fresh conversation
            alice_second = answer(alice, 2).get_attribute("data-session")
            assert alice_second not in (None, alice_first)

            # 4. A turn failing with an error result reaches bob's page as an error;
            #    his session lives on, conversation and all.
            send(bob, "Simulate an error, please")
            failed = finished(bob, 2, "error")
            assert "ResultError" in failed and "529 Overloaded" in failed
            send(bob, "Still there?")
            still = finished(bob, 3, "done")
            turn = re.search(r"\[message (\d+) of our conversation\]", still)
            assert turn is not None and int(turn.group(1)) >= 3, still  # not a fresh one
            for n in range(4):
                assert answer(bob, n).get_attribute("data-session") == bob_session

            for user in ("alice", "bob"):
                cli_pids.add(server.get(f"/api/sessions/{user}")["os_pid"])
            expect(alice.locator("#sessions li")).to_have_count(2, timeout=WAIT_MS)
            alice.screenshot(path=str(tmp_path / "alice.png"), full_page=True)
            bob.screenshot(path=str(tmp_path / "bob.png"), full_page=True)

            # 5. Bob reloads his page in the middle of a long story (about 100 s): the
            #    request's task is cancelled, the session interrupts the turn, and his
            #    next message is answered at once, by the same session and CLI.
            bob_cli = server.get("/api/sessions/bob")["os_pid"]
            assert bob_cli in cli_pids
            send(bob, "Tell me a long story")
            expect(answer(bob, 4)).to_contain_text("Once upon", timeout=WAIT_MS)
            assert server.get("/api/sessions/bob")["active"]
            bob.reload()
            bob.fill("#user", "bob")
            send(bob, "Still there?")
            assert "You said: 'Still there?'" in finished(bob, 0, "done")
            assert answer(bob, 0).get_attribute("data-session") == bob_session
            assert server.get("/api/sessions/bob")["os_pid"] == bob_cli

            browser.close()

        # 6. SIGTERM: the server stops, and the node takes every CLI down with it.
        server.proc.send_signal(signal.SIGTERM)
        server.expect_line(r"web_chat: stopped")
        assert server.proc.wait(timeout=30) == 0, server.stderr()
    finally:
        server.stop()
    assert len(cli_pids) == 3  # alice's first and second CLI, bob's
    assert not [pid for pid in cli_pids if alive(pid)]
    assert processes_using(server.fake_url) == []
    log = server.stderr()
    assert "child 'alice'" in log and "CLIExited(status=-9" in log  # the supervisor's report
    assert "Traceback" not in log, log
    assert (tmp_path / "alice.png").stat().st_size > 10_000
