"""Remote sessions: the Node and Pool adapters across real OS processes.

The test process is the app node; sandboxes are ``claudecode sandbox``
processes; each runs the real pinned CLI against FakeAnthropic (which runs
here, on loopback). All nodes use a private epmd on a free port.
"""

from __future__ import annotations

import gc
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from _session_env import fake, no_orphans, opts

import claudecode
import otpy
from claudecode.adapters import Node, Pool
from claudecode.testing import FakeAnthropic, Text, ToolUse, Turn
from otpy.testing import make_test_certificates

__all__ = ["fake", "no_orphans", "opts"]  # fixtures used by name

HERE = Path(__file__).resolve().parent
COOKIE = "sandbox-test-cookie"
TICK = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def epmd_port() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(["epmd", "-port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    yield port
    proc.kill()
    proc.wait(5)


def claude_children(ppid: int) -> list[int]:
    """Live ``claude`` processes whose parent is ``ppid`` (zombies excluded)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        comm = stat[stat.index(b"(") + 1:stat.rindex(b")")]
        fields = stat[stat.rindex(b")") + 2:].split()
        if int(fields[1]) == ppid and comm == b"claude" and fields[0] != b"Z":
            found.append(int(entry))
    return found


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return int(stat[stat.rindex(b")") + 2:].split()[1])


class Sandbox:
    """``claudecode sandbox`` in its own OS process."""

    def __init__(self, epmd_port: int, tmp: Path, env: dict[str, str] | None = None,
                 tls: otpy.TLSConfig | None = None, extra: list[str] | None = None,
                 no_base_url: bool = False) -> None:
        self.name = f"{unique('sbx')}@localhost"
        cookie_file = tmp / f"{self.name}.cookie"
        cookie_file.write_text(COOKIE)
        cookie_file.chmod(0o400)
        tls_args = [] if tls is None else ["--tls-cert", tls.certfile, "--tls-key", tls.keyfile,
                                           "--tls-ca", tls.cafile]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "claudecode._cli", "sandbox", "--name", self.name,
             "--cookie-file", str(cookie_file), "--epmd-port", str(epmd_port),
             "--workspace-root", str(tmp),
             *([] if no_base_url else ["--allow-env", "ANTHROPIC_BASE_URL"]),
             "--allow-hook", "_remote_hooks:*", *(extra or []),
             "--net-ticktime", str(TICK), "--log-level", "WARNING", *tls_args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(HERE), **(env or {})},
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(b"@@READY"):
                return
        raise RuntimeError("the sandbox did not start")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def sandbox(epmd_port: int, tmp_path: Path) -> Iterator[Sandbox]:
    # --debug-to-stderr (an extra_args flag, not a session option) makes the CLI
    # write stderr lines for the live-stderr test: the operator allows it.
    box = Sandbox(epmd_port, tmp_path, {"REMOTE_HOOK_LOG": str(tmp_path / "remote-hooks.log")},
                  extra=["--allow-cli-flag=--debug-to-stderr"])
    yield box
    box.stop()
    assert box.proc.returncode == 0 or box.proc.returncode == -signal.SIGKILL


def app_node(epmd_port: int, **kw: Any) -> Any:
    return otpy.open_node(node=f"{unique('app')}@localhost", cookie=COOKIE,
                          epmd_port=epmd_port, net_ticktime=TICK, **kw)


async def wait_until(pred: Any, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not pred():
            await trio.sleep(0.05)


# ------------------------------------------------------------------ tests


async def test_remote_session_multi_turn_runs_the_cli_on_the_sandbox(
        epmd_port: int, sandbox: Sandbox, opts: dict[str, Any]) -> None:
    lines: list[str] = []
    async with app_node(epmd_port):
        session = await claudecode.start_link(adapter=Node(sandbox.name), stderr=lines.append,
                                              extra_args={"debug-to-stderr": None}, **opts)
        first = await claudecode.stream(session, "hello").final_text()
        second = await claudecode.stream(session, "again").final_text()
        assert first.startswith("echo #2") and second.startswith("echo #4")  # it remembers
        # the CLI's stderr lines came home, live; the transcript is read on the sandbox
        assert any("[API REQUEST] /v1/messages" in line for line in lines)
        stored = await claudecode.get_messages(session)
        assert [m.text for m in stored] == ["hello", first, "again", second]
        listed = await claudecode.list_sessions(session)
        assert [s.session_id for s in listed] == [await claudecode.get_session_id(session)]
        assert await claudecode.list_session_subagents(session) == []  # read there, too
        info = await claudecode.adapter_info(session)
        assert info["adapter_pid"].node.name == sandbox.name  # the adapter lives there
        assert parent_of(info["os_pid"]) == sandbox.pid  # and so does the CLI
        assert await claudecode.get_session_id(session)
        await claudecode.stop(session)
        await wait_until(lambda: not claude_children(sandbox.pid))


async def test_callbacks_come_home_and_remote_hooks_run_on_the_sandbox(
        epmd_port: int, sandbox: Sandbox, opts: dict[str, Any], fake: FakeAnthropic,
        tmp_path: Path) -> None:
    from _remote_hooks import record_where

    ran_at: list[tuple[str, int]] = []
    local_hooks: list[int] = []
    asked: list[str] = []

    @claudecode.tool("add", "Add two integers", {"a": int, "b": int})
    async def add(args: dict[str, Any]) -> dict[str, Any]:
        ran_at.append((otpy.node(), os.getpid()))
        # claude-agent-sdk's result shape: the model reads the text, remotely too
        return {"content": [{"type": "text", "text": str(args["a"] + args["b"])}]}

    async def local_hook(input: dict[str, Any], tool_use_id: str | None) -> dict[str, Any]:
        local_hooks.append(os.getpid())
        return {}

    async def can_use_tool(name: str, input: dict[str, Any], ctx: Any) -> Any:
        asked.append(name)
        if name == "Bash":
            return claudecode.Deny("no shell on this sandbox")
        return claudecode.Allow()

    marker = tmp_path / "work" / "bash-ran"
    fake.script(
        Turn([ToolUse("mcp__calc__add", {"a": 2, "b": 3}, id="t_add")]),
        lambda r: Text(f"the sum is {r.tool_result_text('t_add')}"),
        Turn([ToolUse("Bash", {"command": f"touch {marker}"}, id="t_bash")]),
        lambda r: Text(f"bash said: {r.tool_result_text('t_bash')}"),
    )
    async with app_node(epmd_port):
        session = await claudecode.start_link(
            adapter=Node(sandbox.name), mcp_servers={"calc": claudecode.mcp_server("calc", [add])},
            allowed_tools=["mcp__calc__add"], can_use_tool=can_use_tool,
            hooks={"PreToolUse": [
                claudecode.HookMatcher(matcher="Bash", hooks=[local_hook]),
                claudecode.HookMatcher(matcher="Bash", hooks=[record_where], where="remote"),
            ]},
            **opts)
        assert await claudecode.stream(session, "add 2 and 3").final_text() == "the sum is 5"
        assert ran_at == [(otpy.node(), os.getpid())]  # the tool ran here, on the app node
        text = await claudecode.stream(session, "run bash").final_text()
        assert "no shell on this sandbox" in text  # the denial reached the model
        assert not marker.exists()  # and the command never ran
        assert asked == ["Bash"] and local_hooks == [os.getpid()]
        remote = [json.loads(ln) for ln in (tmp_path / "remote-hooks.log").read_text().splitlines()]
        assert remote == [{"pid": sandbox.pid, "tool": "Bash"}]  # ran on the sandbox
        await claudecode.stop(session)


async def test_cli_cancel_reaches_the_callback_on_the_app_node(
        epmd_port: int, sandbox: Sandbox, opts: dict[str, Any], fake: FakeAnthropic,
        tmp_path: Path) -> None:
    """The CLI withdraws a permission prompt (the turn is interrupted): the
    callback, which runs here and not on the sandbox, is cancelled with its
    signal set."""
    events: list[Any] = []

    async def stuck(name: str, tool_input: dict[str, Any], context: Any) -> Any:
        events.append("asked")
        try:
            await trio.sleep_forever()
        finally:
            events.append(("cancelled", context.signal.aborted, context.signal.reason))

    marker = tmp_path / "work" / "should-not-exist"
    fake.script(ToolUse("Bash", {"command": f"touch {marker}"}), Text("done"))
    async with app_node(epmd_port):
        session = await claudecode.start_link(adapter=Node(sandbox.name), can_use_tool=stuck,
                                              **opts)
        async for message in claudecode.stream(session, "run"):
            if isinstance(message, claudecode.AssistantMessage) and message.tool_uses:
                await wait_until(lambda: bool(events))
                await claudecode.interrupt(session)
        await wait_until(lambda: len(events) == 2)
        assert events == ["asked", ("cancelled", True, "cancelled by the CLI")]
        assert not marker.exists()
        await claudecode.stop(session)


async def test_sandbox_killed_mid_stream_gives_noconnection_and_pool_moves_the_session(
        epmd_port: int, tmp_path: Path, opts: dict[str, Any], fake: FakeAnthropic) -> None:
    boxes = [Sandbox(epmd_port, tmp_path), Sandbox(epmd_port, tmp_path)]
    try:
        async with app_node(epmd_port):
            otpy.trap_exits(True)
            pool = Pool([b.name for b in boxes])
            await claudecode.Supervisor.start_link(
                [dict(name="roaming", adapter=pool, include_partial_messages=True, **opts)],
                name="sessions")
            assert (await claudecode.stream("roaming", "one").final_text()).startswith("echo #2")
            old_info = await claudecode.adapter_info("roaming")
            host = next(b for b in boxes if b.pid == parent_of(old_info["os_pid"]))
            other = next(b for b in boxes if b is not host)
            old_session = otpy.whereis("roaming")
            # a slow answer, then the host sandbox dies mid-stream (kill -9)
            fake.script(Turn([Text("word " * 40, chunks=40)], chunk_delay=0.25))
            stream = claudecode.stream("roaming", "two")
            t0 = 0.0
            with pytest.raises(claudecode.StreamError) as info:
                async for msg in stream:
                    if t0 == 0.0 and isinstance(msg, claudecode.PartialAssistantMessage):
                        host.proc.send_signal(signal.SIGKILL)
                        t0 = time.monotonic()
            assert isinstance(info.value.reason, otpy.NoConnection)
            assert time.monotonic() - t0 < TICK * 1.5
            # the supervisor restarts the session under its name, on the other sandbox,
            # and it resumes the conversation there (shared cwd + history dir)
            await wait_until(lambda: otpy.whereis("roaming") not in (None, old_session))
            reply = await claudecode.stream("roaming", "three").final_text()
            assert reply.startswith("echo #") and not reply.startswith("echo #2:")
            new_info = await claudecode.adapter_info("roaming")
            assert parent_of(new_info["os_pid"]) == other.pid
    finally:
        for b in boxes:
            b.stop()


async def test_sandbox_sigterm_ends_its_clis_and_history_is_read_there(
        epmd_port: int, tmp_path: Path, opts: dict[str, Any]) -> None:
    box = Sandbox(epmd_port, tmp_path)
    try:
        async with app_node(epmd_port):
            otpy.trap_exits(True)
            session = await claudecode.start_link(adapter=Node(box.name), **opts)
            await claudecode.stream(session, "remember me").final_text()
            sid = await claudecode.get_session_id(session)
            # the transcript lives on the sandbox; read it there
            listed = await otpy.rpc.call(box.name, "claudecode.sandbox", "history",
                                         ["list_sessions", [opts["cwd"]],
                                          {"config_dir": opts["env"]["CLAUDE_CONFIG_DIR"]}])
            assert sid in [entry["session_id"] for entry in listed]
            cli = claude_children(box.pid)
            assert len(cli) == 1
            box.proc.send_signal(signal.SIGTERM)  # an orderly stop of the sandbox...
            exit_msg = await otpy.receive(otpy.Exit, timeout=10)
            assert exit_msg.pid == session  # ...ends the remote CLI, so the session exits
            await trio.to_thread.run_sync(box.proc.wait, 10)
            assert box.proc.returncode == 0
            assert not Path(f"/proc/{cli[0]}").exists()
    finally:
        box.stop()


async def test_pool_spreads_new_sessions_and_inherit_env_applies_on_the_sandbox(
        epmd_port: int, tmp_path: Path, opts: dict[str, Any]) -> None:
    secret = {"SANDBOX_SECRET": "do-not-leak"}
    boxes = [Sandbox(epmd_port, tmp_path, secret), Sandbox(epmd_port, tmp_path, secret)]
    try:
        async with app_node(epmd_port):
            pool = Pool([b.name for b in boxes])
            me = otpy.self()

            async def start() -> None:
                otpy.send(me, await claudecode.start(adapter=pool, inherit_env=["PATH"], **opts))

            otpy.spawn(start)  # a burst: two sessions placed concurrently
            otpy.spawn(start)
            a, b = await otpy.receive(timeout=20), await otpy.receive(timeout=20)
            for s in (a, b):  # CLIs start lazily, after both sessions were placed
                await claudecode.stream(s, "hi").final_text()
            hosts = {parent_of((await claudecode.adapter_info(s))["os_pid"]) for s in (a, b)}
            assert hosts == {boxes[0].pid, boxes[1].pid}
            environ = Path(f"/proc/{(await claudecode.adapter_info(a))['os_pid']}/environ")
            assert b"SANDBOX_SECRET" not in environ.read_bytes()  # only PATH was inherited
            for s in (a, b):
                await claudecode.stop(s)
    finally:
        for box in boxes:
            box.stop()


async def test_pool_gives_back_the_placement_of_a_session_that_never_queried(
        epmd_port: int, tmp_path: Path, opts: dict[str, Any]) -> None:
    """A placed session counts as load on its sandbox until its CLI starts; one
    stopped, or killed, before its first query stops counting."""
    boxes = [Sandbox(epmd_port, tmp_path), Sandbox(epmd_port, tmp_path)]
    try:
        async with app_node(epmd_port):
            pool = Pool([b.name for b in boxes])

            async def host(session: otpy.Pid) -> int:
                await claudecode.stream(session, "hi").final_text()
                return parent_of((await claudecode.adapter_info(session))["os_pid"])

            idle = await claudecode.start(adapter=pool, **opts)  # boxes[0]; never queried
            await claudecode.stop(idle)
            first = await claudecode.start(adapter=pool, **opts)
            assert await host(first) == boxes[0].pid  # 0 + 0 again: the tie goes to the first
            doomed = await claudecode.start(adapter=pool, **opts)  # boxes[1]: 0 + 0 < 1 + 0
            ref = otpy.monitor(doomed)
            otpy.exit(doomed, otpy.Kill())  # no terminate: its state, placement included, goes
            assert (await otpy.receive(lambda m: isinstance(m, otpy.Down) and m.ref == ref,
                                       timeout=5)).reason == otpy.Killed()
            gc.collect()  # the killed process's state may sit in a reference cycle
            second = await claudecode.start(adapter=pool, **opts)
            assert await host(second) == boxes[1].pid  # 1 + 0 vs 0 + 0
            for s in (first, second):
                await claudecode.stop(s)
    finally:
        for box in boxes:
            box.stop()


def test_pool_release_gives_a_placement_back_once() -> None:
    from claudecode.adapters import _node

    pool = Pool(["x@nowhere"])
    placement = _node._reserve("x@nowhere")
    other = _node._reserve("x@nowhere")
    assert _node._reserved("x@nowhere") == 2
    pool.release(placement)
    pool.release(placement)  # idempotent: the other session's placement stays
    assert _node._reserved("x@nowhere") == 1
    pool.release(None)  # what a session that never got a placement holds
    pool.release(other)
    assert _node._reserved("x@nowhere") == 0


async def test_app_node_killed_leaves_no_cli_on_the_sandbox(
        epmd_port: int, sandbox: Sandbox, opts: dict[str, Any]) -> None:
    app = subprocess.Popen(
        [sys.executable, str(HERE / "_app_node.py"), f"{unique('app')}@localhost", COOKIE,
         str(epmd_port), sandbox.name, json.dumps(opts)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert app.stdout is not None
        cli_pid = 0
        with trio.fail_after(30):
            while not cli_pid:
                line = await trio.to_thread.run_sync(app.stdout.readline)
                assert line, "the app node exited early"
                if line.startswith(b"@@CLI "):
                    cli_pid = int(line.split()[1])
        assert claude_children(sandbox.pid) == [cli_pid]
        app.send_signal(signal.SIGKILL)
        await wait_until(lambda: not claude_children(sandbox.pid), timeout=TICK * 5)
    finally:
        app.kill()
        app.wait(5)


async def test_remote_session_over_tls_end_to_end(
        epmd_port: int, tmp_path: Path, opts: dict[str, Any]) -> None:
    tls = make_test_certificates(tmp_path / "certs")
    box = Sandbox(epmd_port, tmp_path, tls=tls)
    try:
        async with app_node(epmd_port):  # a plain node cannot reach the TLS sandbox
            with pytest.raises(claudecode.NodeConnectFailedError):
                await claudecode.start_link(adapter=Node(box.name, connect_timeout=3), **opts)
        async with app_node(epmd_port, tls=tls):
            session = await claudecode.start_link(adapter=Node(box.name), **opts)
            assert (await claudecode.stream(session, "hi").final_text()).startswith("echo #2")
            await claudecode.stop(session)
    finally:
        box.stop()


async def test_missing_sandbox_errors_are_typed_and_quick(epmd_port: int,
                                                          opts: dict[str, Any]) -> None:
    async with app_node(epmd_port):
        t0 = time.monotonic()
        with pytest.raises(claudecode.NodeConnectFailedError):
            await claudecode.start_link(adapter=Node("nobody@localhost", connect_timeout=2),
                                        **opts)
        assert time.monotonic() - t0 < 2.5
        # a node that is registered but never answers the handshake: a timeout
        from otpy.dist._epmd_io import register

        async with trio.open_nursery() as nursery:
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

            async def swallow(stream: trio.SocketStream) -> None:
                await trio.sleep_forever()

            nursery.start_soon(trio.serve_listeners, swallow, listeners)
            port = listeners[0].socket.getsockname()[1]
            reg = await register("blackhole", port, epmd_port=epmd_port)
            t0 = time.monotonic()
            with pytest.raises(claudecode.ConnectTimeoutError):
                await claudecode.start_link(
                    adapter=Node("blackhole@localhost", connect_timeout=1.0), **opts)
            assert 0.9 < time.monotonic() - t0 < 2.0
            await reg.aclose()
            nursery.cancel_scope.cancel()


async def test_missing_cli_on_the_sandbox_is_clinotfound(
        epmd_port: int, tmp_path: Path, opts: dict[str, Any]) -> None:
    """The sandbox runs the CLI it was started with (--cli-path); when that file is
    gone, a session gets CLINotFoundError naming the sandbox. The session's own
    cli_path plays no part (it names a file on the app node)."""
    from _session_env import CLI

    wrapper = tmp_path / "claude-wrapper"
    wrapper.write_text(f'#!/bin/sh\nexec {CLI} "$@"\n')
    wrapper.chmod(0o755)
    box = Sandbox(epmd_port, tmp_path, extra=["--cli-path", str(wrapper)])
    try:
        async with app_node(epmd_port):
            session = await claudecode.start_link(
                adapter=Node(box.name), **{**opts, "cli_path": "/nonexistent/claude"})
            assert (await claudecode.stream(session, "hi").final_text()).startswith("echo")
            await claudecode.stop(session)
            wrapper.unlink()
            with pytest.raises(claudecode.CLINotFoundError) as info:
                await claudecode.start_link(adapter=Node(box.name), **opts)
            assert box.name in str(info.value) and "claude-wrapper" in str(info.value)
    finally:
        box.stop()


async def test_node_adapter_needs_cwd_and_a_distributed_node(opts: dict[str, Any]) -> None:
    with pytest.raises(claudecode.InvalidOptionError):
        await _start_without_cwd(opts)
    async with otpy.open_node():
        with pytest.raises(claudecode.NodeConnectFailedError):
            await claudecode.start_link(adapter=Node("x@localhost"), **opts)


async def _start_without_cwd(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        await claudecode.start_link(adapter=Node("x@localhost"),
                                    **{k: v for k, v in opts.items() if k != "cwd"})



async def test_remote_sessions_from_many_tasks_of_one_process(
        epmd_port: int, sandbox: Sandbox, opts: dict[str, Any], fake: FakeAnthropic) -> None:
    """Streams to remote sessions from tasks of one process: two sessions in
    parallel, two streams on one session FIFO, one task cancelled mid-stream."""
    import math

    fake.script(Turn([Text("never")], delay=math.inf), when=lambda r: r.last_user_text == "hold")
    async with app_node(epmd_port):
        a = await claudecode.start_link(adapter=Node(sandbox.name), **opts)
        b = await claudecode.start_link(adapter=Node(sandbox.name), **opts)
        got: dict[str, Any] = {}
        holding = trio.Event()
        doomed = trio.CancelScope()

        async def hold() -> None:
            with doomed:
                async for message in claudecode.stream(a, "hold"):
                    if isinstance(message, claudecode.SystemMessage):
                        holding.set()
            got["hold"] = "cancelled" if doomed.cancelled_caught else "finished"

        async def ask(key: str, session: Any) -> None:
            got[key] = await claudecode.stream(session, key).final_text()

        async with trio.open_nursery() as n:
            n.start_soon(hold)
            with trio.fail_after(60):
                await holding.wait()
            n.start_soon(ask, "a-next", a)  # queued behind "hold" on session a
            n.start_soon(ask, "b-1", b)
            with trio.fail_after(60):
                while "b-1" not in got:  # b answers while a is held
                    await trio.sleep(0.05)
            assert "a-next" not in got
            doomed.cancel()  # abandoning "hold" interrupts it; a-next runs
        assert got["hold"] == "cancelled"
        assert got["b-1"] == "echo #2: b-1"
        assert got["a-next"].endswith(": a-next")
        await claudecode.stop(a)
        await claudecode.stop(b)
