"""The observer page in a real headless chromium, attached as a user attaches it.

Three OS processes, as a user runs them: the node to observe
(``tests/_observed_node.py``: a supervision tree with a worker and a session whose
real pinned CLI talks to FakeAnthropic), ``otpy observer --node ... --cookie-file
...`` (a hidden node serving the page on 127.0.0.1), and Debian's chromium driven
by playwright's sync API (why sync: see tests/claudecode_tests/test_web_chat.py).

The page shows the tree; killing the worker from the page asks first (dismissed:
nothing happens; accepted: it is killed); the tree then shows the restarted worker
under a new pid and the timeline the restart; after a turn on the session the
sessions table shows its token counts and cost. A screenshot lands in the test's
tmp dir.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _dist_erl import Epmd
from _observer_env import ObservedNode
from playwright.sync_api import Dialog, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [  # playwright adds --headless and a fresh --user-data-dir itself
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WAIT_MS = 30_000


@pytest.fixture
def epmd() -> Iterator[Epmd]:
    server = Epmd()
    yield server
    server.stop()


class Observer:
    """``otpy observer`` in its own OS process."""

    def __init__(self, node: ObservedNode, epmd_port: int) -> None:
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "otpy"), "observer", "--node", node.name,
             "--cookie-file", str(node.cookie_file), "--port", "0", "--epmd-port",
             str(epmd_port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.url = self._expect(r"observing \S+ at (http://\S+)")

    def _expect(self, pattern: str, timeout: float = 30.0) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        seen = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(deadline - time.monotonic()):
                    chunk = os.read(self.proc.stdout.fileno(), 65536)
                    if not chunk:
                        break
                    seen += chunk
                    found = re.search(pattern, seen.decode(errors="replace"))
                    if found:
                        return found.group(1)
        self.stop()
        raise AssertionError(f"no {pattern!r} from otpy observer: {seen!r}")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        assert self.proc.stderr is not None and self.proc.stdout is not None
        err = self.proc.stderr.read().decode(errors="replace")
        self.proc.stderr.close()
        self.proc.stdout.close()
        return err


def tree_item(page: Page, name: str) -> object:
    return page.locator("#tree li", has=page.locator(":scope > .label .name",
                                                     has_text=re.compile(f"^{name}$")))


def test_the_page_shows_the_tree_a_restart_and_a_turn(epmd: Epmd, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap installs Debian's chromium")
    node = ObservedNode(epmd.port, tmp_path)
    observer = None
    try:
        observer = Observer(node, epmd.port)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_context(viewport={"width": 1300, "height": 950}).new_page()
                page.goto(observer.url)
                expect(page.locator("#status")).to_have_text("live", timeout=WAIT_MS)
                expect(page.locator("#node")).to_contain_text(node.name)
                app = page.locator("#tree li.kind-supervisor[data-pid]").filter(
                    has=page.locator(":scope > .label .name", has_text="app_sup"))
                expect(app).to_have_count(1)
                worker = app.locator("li.kind-gen_server").filter(
                    has=page.locator(":scope > .label .name", has_text="worker_a"))
                expect(worker).to_have_count(1)
                session = app.locator("li.kind-session")
                expect(session.locator(":scope > .label .name")).to_have_text("assistant")
                row = page.locator("#sessions tbody tr[data-name='assistant']")
                expect(row.locator(".cli")).to_have_text("none")
                expect(row.locator(".input-tokens")).to_have_text("0")
                old_pid = worker.get_attribute("data-pid")
                assert old_pid and old_pid.startswith("<")

                # the worker's details, then a kill that is first declined, then accepted
                worker.locator(":scope > .label").click()
                expect(page.locator("#process-fields [data-field='pid']")).to_have_text(old_pid)
                expect(page.locator("#process-fields [data-field='mailbox']")).to_have_text("0")
                expect(page.locator("#process-state")).to_contain_text('"label": "a"')
                asked: list[str] = []

                def decline(dialog: Dialog) -> None:
                    asked.append(dialog.message)
                    dialog.dismiss()

                page.once("dialog", decline)
                page.click("#kill")
                expect(page.locator("#kill-result")).to_have_text("Not killed.")
                assert asked and old_pid in asked[0] and "worker_a" in asked[0]
                assert worker.get_attribute("data-pid") == old_pid

                page.once("dialog", lambda dialog: dialog.accept())
                page.click("#kill")
                expect(page.locator("#kill-result")).to_have_text(f"Killed {old_pid}.")
                expect(worker).not_to_have_attribute("data-pid", old_pid, timeout=WAIT_MS)
                new_pid = worker.get_attribute("data-pid")
                assert new_pid and new_pid != old_pid
                restart = page.locator("#timeline li[data-event='otpy.supervisor.restart']")
                expect(restart).to_have_count(1, timeout=WAIT_MS)
                expect(restart).to_contain_text(f"restart of child worker_a ({old_pid})")
                expect(restart).to_contain_text("Killed()")

                # a turn on the session: its row shows the tokens and the cost
                assert node.command("turn") == "@@TURN hello from the fake"
                expect(row.locator(".input-tokens")).to_have_text("1234", timeout=WAIT_MS)
                expect(row.locator(".output-tokens")).to_have_text("56")
                expect(row.locator(".turns")).to_have_text("1")
                expect(row.locator(".cli")).to_have_text("ready")
                expect(row.locator(".cost")).to_have_text(f"{(1234 * 1 + 56 * 5) / 1e6:.6f}")
                turn = page.locator("#timeline li[data-event='claudecode.turn.stop']")
                expect(turn).to_contain_text("1234 in, 56 out")
                page.screenshot(path=str(tmp_path / "observer.png"), full_page=True)
            finally:
                browser.close()
    finally:
        if observer is not None:
            observer.stop()
        node.stop()
    assert (tmp_path / "observer.png").stat().st_size > 10_000
