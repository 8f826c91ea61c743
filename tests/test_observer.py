"""otpy.observer: the page's data and its guard, tested as an attacker would; the
``otpy_observer`` process answering another node (a hidden one) over distribution; the
``otpy observer`` command. The page in a real chromium: tests/test_observer_browser.py.

Each line of the threat model in docs/otpy/observer.md has a test here:
a non-loopback binding needs a token (no token 401, a wrong one 403); a loopback
binding answers only loopback Host names (DNS rebinding); a POST needs its own
Origin and a JSON body (CSRF); there are no CORS headers; a kill needs a
confirmation issued for that very process, used once, before it expires; system
processes are not killed; the node answers only its fixed list of requests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from _dist_erl import Epmd, unique
from _http import first_event, request
from _observer_env import COOKIE, ObservedNode

import otpy
import otpy.observer
from otpy.observer._backend import NAME

ROOT = Path(__file__).resolve().parent.parent


class Worker(otpy.GenServer):
    async def init(self, label: str) -> None:
        self.label = label
        self.secret_count = 7

    async def handle_call(self, request: Any, caller: Any) -> Any:
        return request


async def start_tree() -> otpy.Pid:
    return await otpy.Supervisor.start_link([
        Worker.child_spec("a", id="a", name="worker_a"),
        Worker.child_spec("b", id="b"),
        otpy.DynamicSupervisor.child_spec(name="pool"),
    ], name="top")


async def serve(nursery: trio.Nursery, host: str = "127.0.0.1", token: str | None = None
                ) -> int:
    urls = await nursery.start(_serve, host, token)
    return int(urls[0].rsplit(":", 1)[1])


async def _serve(host: str, token: str | None,
                 task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    await otpy.observer.serve(host, 0, token=token, task_status=task_status)


def json_post(port: int, path: str, data: Any, **headers: str) -> Any:
    sent = {"content-type": "application/json", "origin": f"http://127.0.0.1:{port}"}
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return request(port, "POST", path, headers=sent, body=json.dumps(data).encode())


def find(entry: dict[str, Any], name: str) -> dict[str, Any] | None:
    if entry["name"] == name:
        return entry
    for child in entry["children"]:
        found = find(child, name)
        if found is not None:
            return found
    return None


# ---------------------------------------------------------------- the data


async def test_api_tree_draws_the_supervision_trees() -> None:
    async with otpy.open_node(), trio.open_nursery() as nursery:
        sup = await start_tree()
        pool = otpy.whereis("pool")
        assert pool is not None
        child = await otpy.DynamicSupervisor.start_child(pool, Worker.child_spec("c"))
        port = await serve(nursery)
        tree = (await request(port, "GET", "/api/tree")).json()
        assert tree["kind"] == "node" and tree["pid"] is None
        top = tree["children"][0]
        assert (top["name"], top["pid"], top["kind"]) == ("top", repr(sup), "supervisor")
        assert [(c["name"], c["kind"], c["id"]) for c in top["children"]] == [
            ("worker_a", "gen_server", "a"), ("b", "gen_server", "b"), ("pool", "supervisor",
                                                                       "pool")]
        (dyn,) = top["children"][2]["children"]
        assert dyn["pid"] == repr(child) and dyn["name"] == "Worker" and dyn["id"] is None
        assert all(set(e) >= {"name", "pid", "kind", "children"} for e in top["children"])
        # the processes outside the trees follow, the observer's own among them
        loose = {c["name"] for c in tree["children"][1:]}
        assert NAME in loose
        info = (await request(port, "GET", f"/api/process?pid={otpy.whereis('worker_a')}"
                              .replace("<", "%3C").replace(">", "%3E"))).json()
        assert info["class"] == "Worker" and info["name"] == "worker_a"
        assert info["links"] == [repr(sup)] and info["mailbox"] == 0
        assert info["state"] == {"label": "a", "secret_count": 7}
        assert info["trap_exit"] is False and info["system"] is False
        assert (await request(port, "GET", "/api/process?pid=%3C0.999.0%3E")).status == 404
        nursery.cancel_scope.cancel()


async def test_the_event_stream_sends_snapshots_and_the_timeline_restarts() -> None:
    async with otpy.open_node(), trio.open_nursery() as nursery:
        await start_tree()
        port = await serve(nursery)
        name, snapshot = await first_event(port)
        assert name == "snapshot"
        assert set(snapshot) == {"node", "tree", "sessions", "timeline", "connected"}
        assert find(snapshot["tree"], "worker_a") is not None
        with trio.fail_after(5):  # the feed subscribes right after the server starts
            while not (await first_event(port))[1]["connected"]:
                await trio.sleep(0.02)
        old = otpy.whereis("worker_a")
        assert old is not None
        otpy.exit(old, otpy.Kill())
        with trio.fail_after(5):
            while True:
                timeline = (await request(port, "GET", "/api/timeline")).json()
                if timeline:
                    break
                await trio.sleep(0.02)
        (restart,) = timeline
        assert restart["event"] == "otpy.supervisor.restart"
        assert restart["metadata"]["id"] == "a" and restart["metadata"]["pid"] == repr(old)
        assert restart["metadata"]["reason"] == "Killed()"
        nursery.cancel_scope.cancel()


async def test_kill_from_the_page_asks_for_a_confirmation_of_that_process(
        mock_clock: trio.testing.MockClock) -> None:
    async with otpy.open_node(), trio.open_nursery() as nursery:
        await start_tree()
        port = await serve(nursery)
        a, b = repr(otpy.whereis("worker_a")), repr(await _child(otpy.whereis("top"), "b"))
        # no confirmation, a made-up one, one for another process: refused
        assert (await json_post(port, "/api/kill", {"pid": a})).status == 400
        assert (await json_post(port, "/api/kill", {"pid": a, "confirm": "guess"})).status == 403
        prepared = await json_post(port, "/api/kill/prepare", {"pid": b})
        assert prepared.status == 200
        assert prepared.json()["process"] == {"pid": b, "name": None, "kind": "gen_server",
                                              "class": "Worker"}
        confirm_b = prepared.json()["confirm"]
        assert (await json_post(port, "/api/kill", {"pid": a, "confirm": confirm_b})
                ).status == 403
        assert repr(otpy.whereis("worker_a")) == a
        # the right one: killed (and restarted by its supervisor); used once only
        confirm_a = (await json_post(port, "/api/kill/prepare", {"pid": a})).json()["confirm"]
        done = await json_post(port, "/api/kill", {"pid": a, "confirm": confirm_a})
        assert done.status == 200 and done.json() == {"killed": a}
        assert (await json_post(port, "/api/kill", {"pid": a, "confirm": confirm_a})
                ).status == 403
        await otpy.Supervisor.which_children(otpy.whereis("top"))  # answered once restarted
        assert repr(otpy.whereis("worker_a")) not in ("None", a)
        # a confirmation expires
        confirm = (await json_post(port, "/api/kill/prepare", {"pid": b})).json()["confirm"]
        mock_clock.jump(61)
        assert (await json_post(port, "/api/kill", {"pid": b, "confirm": confirm})).status == 403
        assert repr(await _child(otpy.whereis("top"), "b")) == b
        # system processes are not killed from the page
        for name in (NAME,):
            pid = repr(otpy.whereis(name))
            refused = await json_post(port, "/api/kill/prepare", {"pid": pid})
            assert refused.status == 403
        nursery.cancel_scope.cancel()


async def _child(sup: Any, child_id: str) -> Any:
    rows = await otpy.Supervisor.which_children(sup)
    return next(r.pid for r in rows if r.id == child_id)


async def test_csrf_cross_origin_and_cors_are_refused() -> None:
    async with otpy.open_node(), trio.open_nursery() as nursery:
        await start_tree()
        port = await serve(nursery)
        a = repr(otpy.whereis("worker_a"))
        body = json.dumps({"pid": a}).encode()
        # a page on another origin POSTing (a form, or fetch in no-cors mode)
        for headers in (
            {"content-type": "application/json", "origin": "http://evil.example"},
            {"content-type": "application/json"},  # no Origin at all
            {"content-type": "application/json", "origin": "null"},
            {"content-type": "application/json", "origin": f"http://127.0.0.1:{port}",
             "sec-fetch-site": "cross-site"},
        ):
            answer = await request(port, "POST", "/api/kill/prepare", headers=headers, body=body)
            assert answer.status == 403, headers
        form = await request(port, "POST", "/api/kill/prepare", body=b"pid=x", headers={
            "content-type": "application/x-www-form-urlencoded",
            "origin": f"http://127.0.0.1:{port}"})
        assert form.status == 415
        assert (await request(port, "GET", "/api/kill")).status == 405
        assert (await request(port, "PUT", "/api/kill", headers={
            "origin": f"http://127.0.0.1:{port}"})).status == 405
        # a CORS preflight gets no Access-Control-Allow-* header: browsers refuse
        preflight = await request(port, "OPTIONS", "/api/kill", headers={
            "origin": "http://evil.example", "access-control-request-method": "POST"})
        assert not any(k.startswith("access-control-") for k in preflight.headers)
        page = await request(port, "GET", "/", headers={"origin": "http://evil.example"})
        assert page.status == 200 and b"otpy observer" in page.body
        assert not any(k.startswith("access-control-") for k in page.headers)
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert repr(otpy.whereis("worker_a")) == a
        nursery.cancel_scope.cancel()


async def test_dns_rebinding_a_foreign_host_name_is_refused_on_loopback() -> None:
    async with otpy.open_node(), trio.open_nursery() as nursery:
        port = await serve(nursery)
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            assert (await request(port, "GET", "/api/node", host=host)).status == 200
        for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", ""):
            answer = await request(port, "GET", "/api/tree", host=host)
            assert answer.status == 403, host
            assert b"children" not in answer.body
        nursery.cancel_scope.cancel()


async def test_off_loopback_a_token_is_required() -> None:
    async with otpy.open_node():
        with pytest.raises(ValueError, match="requires a token"):
            await otpy.observer.serve("0.0.0.0", 0)
        with pytest.raises(ValueError, match="requires a token"):
            await otpy.observer.serve("192.0.2.1", 0, token="")
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, "0.0.0.0", token="s3cret-token")
            missing = await request(port, "GET", "/api/tree")
            assert missing.status == 401 and missing.headers["www-authenticate"] == "Bearer"
            assert b"children" not in missing.body
            for bad in ({"authorization": "Bearer wrong"}, {"cookie": "otpy_observer_token=x"}):
                assert (await request(port, "GET", "/api/tree", headers=bad)).status == 403
            assert (await request(port, "GET", "/api/tree?token=nope")).status == 403
            assert (await request(port, "GET", "/static/app.js")).status == 401
            good = await request(port, "GET", "/api/tree",
                                 headers={"authorization": "Bearer s3cret-token"})
            assert good.status == 200 and good.json()["kind"] == "node"
            page = await request(port, "GET", "/?token=s3cret-token")
            assert page.status == 200
            cookie = page.headers["set-cookie"]
            assert cookie.startswith("otpy_observer_token=s3cret-token")
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            by_cookie = await request(port, "GET", "/api/node", headers={
                "cookie": "otpy_observer_token=s3cret-token"})
            assert by_cookie.status == 200
            # with the token, a kill still needs its own origin and a confirmation
            no_origin = await request(port, "POST", "/api/kill/prepare", headers={
                "authorization": "Bearer s3cret-token", "content-type": "application/json"},
                body=b'{"pid": "<0.1.0>"}')
            assert no_origin.status == 403
            nursery.cancel_scope.cancel()


async def test_loopback_with_a_token_requires_it_too() -> None:
    async with otpy.open_node(), trio.open_nursery() as nursery:
        port = await serve(nursery, token="tok")
        assert (await request(port, "GET", "/api/node")).status == 401
        assert (await request(port, "GET", "/api/node?token=tok")).status == 200
        nursery.cancel_scope.cancel()


# ---------------------------------------------------------------- the node's side, remote


@pytest.fixture(scope="module")
def epmd() -> Iterator[Epmd]:
    server = Epmd()
    yield server
    server.stop()


@pytest.fixture
def observed(epmd: Epmd, tmp_path: Path) -> Iterator[ObservedNode]:
    node = ObservedNode(epmd.port, tmp_path)
    yield node
    node.stop()


async def test_a_hidden_node_asks_the_otpy_observer_of_another_os_process(
        observed: ObservedNode, epmd: Epmd) -> None:
    async with otpy.open_node(f"{unique('watcher')}@localhost", COOKIE, epmd_port=epmd.port,
                              hidden=True, observer=False):
        assert otpy.whereis(NAME) is None  # observer=False: none here
        target = (NAME, observed.name)
        node = await otpy.call(target, ("node",))
        assert node["name"] == observed.name and node["distributed"] is True
        assert otpy.node() not in node["connected"] and otpy.node() in node["hidden"]
        tree = await otpy.call(target, ("tree",))
        app = find(tree, "app_sup")
        assert app is not None and app["kind"] == "supervisor"
        assert [c["name"] for c in app["children"]] == ["worker_a", "sessions"]
        sessions_sup = find(tree, "sessions")
        assert sessions_sup is not None
        (session,) = sessions_sup["children"]
        assert session["kind"] == "session" and session["name"] == "assistant"
        (row,) = await otpy.call(target, ("sessions",))
        assert row["pid"] == session["pid"] and row["name"] == "assistant"
        assert row["cli"] == "none" and row["turns"] == 0 and row["input_tokens"] == 0
        assert row["model"] == "claude-haiku-4-5"
        assert "env" not in row and "api_key" not in json.dumps(row)
        worker = find(tree, "worker_a")
        assert worker is not None
        info = await otpy.call(target, ("process", worker["pid"]))
        assert info["state"] == {"label": "a", "served": 0} and info["class"] == "Worker"
        # only the fixed list of requests
        for bad in (("eval", "os.system('x')"), ("tree", 1), "tree", ("process",), ()):
            assert await otpy.call(target, bad) == ("error", "unknown_request")
        assert await otpy.call(target, ("kill", "<nope>")) == ("error", "not_found")
        assert await otpy.call(target, ("process", "x")) is None
        # subscribe, run a turn over there, see its events; kill the worker, see the restart
        assert await otpy.call(target, ("subscribe", otpy.self())) == "ok"
        assert (await trio.to_thread.run_sync(observed.command, "turn")).startswith("@@TURN")
        seen: list[tuple[str, Any, Any]] = []
        with trio.fail_after(20):
            while "claudecode.turn.stop" not in [s[0] for s in seen]:
                msg = await otpy.receive()
                seen.append(msg[1:])
        stop = next(s for s in seen if s[0] == "claudecode.turn.stop")
        assert stop[1]["input_tokens"] == 1234 and stop[1]["output_tokens"] == 56
        assert stop[2]["name"] == "assistant" and stop[2]["session"] == session["pid"]
        (row,) = await otpy.call(target, ("sessions",))
        assert row["cli"] == "ready" and row["turns"] == 1
        assert row["input_tokens"] == 1234 and row["output_tokens"] == 56
        assert row["cost_usd"] == pytest.approx((1234 * 1 + 56 * 5) / 1e6)
        assert await otpy.call(target, ("kill", worker["pid"])) == ("ok", worker["pid"])
        with trio.fail_after(10):
            while True:
                msg = await otpy.receive()
                if msg[1] == "otpy.supervisor.restart":
                    break
        assert msg[3]["pid"] == worker["pid"] and msg[3]["id"] == "worker_a"
        assert msg[3]["reason"] == "Killed()"


async def test_system_processes_are_not_killed(observed: ObservedNode, epmd: Epmd) -> None:
    async with otpy.open_node(f"{unique('watcher')}@localhost", COOKIE, epmd_port=epmd.port,
                              hidden=True, observer=False):
        tree = await otpy.call((NAME, observed.name), ("tree",))
        system = [c for c in tree["children"] if c["name"] in (
            "rex", "net_kernel", "otpy_global", NAME)]
        assert len(system) == 4
        for entry in system:
            answer = await otpy.call((NAME, observed.name), ("kill", entry["pid"]))
            assert answer == ("error", "system_process")


async def test_a_node_started_without_the_observer_does_not_answer(epmd: Epmd,
                                                                   tmp_path: Path) -> None:
    node = ObservedNode(epmd.port, tmp_path, "--observer")
    try:
        async with otpy.open_node(f"{unique('watcher')}@localhost", COOKIE,
                                  epmd_port=epmd.port, hidden=True):
            with pytest.raises(otpy.CallError) as err:
                await otpy.call((NAME, node.name), ("tree",), 5)
            assert err.value.reason == otpy.NoProc()
    finally:
        node.stop()


# ---------------------------------------------------------------- the command


def otpy_command(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "otpy"), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_the_command_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    cookie = tmp_path / "cookie"
    cookie.write_text("c")
    done = otpy_command("observer", "--node", "a@localhost", "--cookie-file", str(cookie),
                        "--host", "0.0.0.0")
    assert done.returncode != 0 and "requires a token" in done.stderr
    done = otpy_command("observer", "--node", "a@localhost", "--cookie-file",
                        str(tmp_path / "missing"))
    assert done.returncode != 0 and "cannot read the cookie file" in done.stderr


def test_the_command_with_a_wrong_cookie_cannot_attach(observed: ObservedNode, epmd: Epmd,
                                                       tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not_the_cookie")
    done = otpy_command("observer", "--node", observed.name, "--cookie-file", str(wrong),
                        "--port", "0", "--epmd-port", str(epmd.port))
    assert done.returncode == 2 and f"cannot connect to {observed.name}" in done.stderr



# ---------------------------------------------------------------- the docs' snippets


@pytest.mark.parametrize("page", ["otpy/observer.md", "otpy/telemetry.md"])
def test_the_docs_python_blocks_compile(page: str) -> None:
    import ast
    import re

    text = (ROOT / "docs" / page).read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)
    assert blocks
    for block in blocks:
        ast.parse(block)
