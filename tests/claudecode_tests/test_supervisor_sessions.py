"""``claudecode.Supervisor``: named sessions that come back after their CLI dies."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
import trio
from _session_env import fake, no_orphans, opts

import claudecode
import otpy
from claudecode import CLIExited, StreamError, Supervisor
from claudecode.testing import FakeAnthropic, Text, Turn

__all__ = ["fake", "no_orphans", "opts"]  # fixtures used by name

SLOW = Turn([Text("word " * 100, chunks=100)], chunk_delay=0.05)


async def _ask(session: Any, prompt: str) -> str:
    return await claudecode.stream(session, prompt).final_text()


async def _restarted(name: Any, old: otpy.Pid | None) -> otpy.Pid:
    """Wait until ``name`` is held by a new process."""
    with trio.fail_after(5):
        while True:
            pid = otpy.whereis(name)
            if pid is not None and pid != old:
                return pid
            await trio.sleep(0.02)


async def test_kill_9_mid_stream_restarts_the_session_under_its_name(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    fake.script(SLOW, when=lambda r: r.last_user_text == "talk")
    async with otpy.open_node():
        sup = await Supervisor.start_link([
            {**opts, "name": "writer", "include_partial_messages": True},
            {**opts, "name": "reviewer"},
            {**opts, "name": "helper"},
        ])
        assert await _ask("writer", "one") == "echo #2: one"
        assert await _ask("writer", "two") == "echo #4: two"
        assert await _ask("reviewer", "hi") == "echo #2: hi"
        before = {n: otpy.whereis(n) for n in ("writer", "reviewer", "helper")}
        cli = (await claudecode.adapter_info("writer"))["os_pid"]

        t0 = time.monotonic()
        deltas = 0
        with pytest.raises(StreamError) as info:
            async for _delta in claudecode.stream("writer", "talk").text_deltas():
                deltas += 1
                if deltas == 3:
                    os.kill(cli, signal.SIGKILL)
        assert time.monotonic() - t0 < 4
        assert info.value.reason == CLIExited(-9, "")
        assert "SIGKILL" in str(info.value)

        writer = await _restarted("writer", before["writer"])
        assert otpy.whereis("reviewer") == before["reviewer"]  # siblings untouched
        assert otpy.whereis("helper") == before["helper"]
        # fresh state: a new conversation
        assert await claudecode.get_session_id(writer) is None
        assert await _ask("writer", "back?") == "echo #2: back?"
        assert await _ask("reviewer", "still here") == "echo #4: still here"
        rows = await Supervisor.list_sessions(sup)
        assert [(r.id, r.pid) for r in rows] == [
            ("writer", writer), ("reviewer", before["reviewer"]), ("helper", before["helper"])]
        assert await Supervisor.count_sessions(sup) == 3


async def test_via_and_global_names(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        await otpy.Registry.start_link("agents")
        helper = otpy.Via("agents", "helper")
        main = otpy.Global("main_assistant")
        await Supervisor.start_link([{**opts, "name": helper}, {**opts, "name": main}])
        assert await _ask(helper, "via") == "echo #2: via"
        assert await _ask(main, "global") == "echo #2: global"

        old = otpy.whereis(helper)
        assert old is not None
        await claudecode.prewarm(helper)
        os.kill((await claudecode.adapter_info(helper))["os_pid"], signal.SIGKILL)
        new = await _restarted(helper, old)
        assert await claudecode.alive(helper) and new != old
        assert await _ask(helper, "again") == "echo #2: again"


async def test_restart_session_works_on_a_running_session(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        sup = await Supervisor.start_link([{**opts, "name": "a"}, {**opts, "name": "b"}])
        await _ask("a", "one")
        assert await _ask("a", "two") == "echo #4: two"
        old = otpy.whereis("a")
        old_cli = (await claudecode.adapter_info("a"))["os_pid"]
        b = otpy.whereis("b")

        new = await Supervisor.restart_session(sup, "a")
        assert new != old and otpy.whereis("a") == new and otpy.whereis("b") == b
        assert not os.path.exists(f"/proc/{old_cli}") or _zombie_or_gone(old_cli)
        assert await _ask("a", "fresh") == "echo #2: fresh"
        # a stopped one can be restarted too
        await otpy.Supervisor.terminate_child(sup, "a")
        assert otpy.whereis("a") is None
        assert await Supervisor.restart_session(sup, "a") == otpy.whereis("a")


def _zombie_or_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True


async def test_dynamic_sessions(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        sup = await Supervisor.start_link([], name="claude_sup")
        assert await Supervisor.count_sessions("claude_sup") == 0
        pid = await Supervisor.start_session(sup, {**opts, "name": "temp"})
        assert otpy.whereis("temp") == pid
        other = await Supervisor.start_session(sup, {**opts, "name": "x2"}, id="custom-id")
        anonymous = await Supervisor.start_session(sup, dict(opts))
        rows = await Supervisor.list_sessions(sup)
        ids = [r.id for r in rows]
        assert ids[:2] == ["temp", "custom-id"] and str(ids[2]).startswith("session_")
        assert [r.pid for r in rows] == [pid, other, anonymous]
        assert rows[0].modules == ["claudecode.Session"]
        assert await _ask(anonymous, "anon") == "echo #2: anon"

        with pytest.raises(otpy.SupervisorError) as dup:
            await Supervisor.start_session(sup, {**opts, "name": "temp"})
        assert dup.value.reason == ("already_started", pid)

        await _ask("temp", "hi")
        cli = (await claudecode.adapter_info("temp"))["os_pid"]
        await Supervisor.terminate_session(sup, "temp")
        assert otpy.whereis("temp") is None and _zombie_or_gone(cli)
        assert await Supervisor.count_sessions(sup) == 2
        assert [r.id for r in await Supervisor.list_sessions(sup)] == ["custom-id", ids[2]]
        with pytest.raises(otpy.SupervisorError) as missing:
            await Supervisor.terminate_session(sup, "temp")
        assert missing.value.reason == "not_found"


async def test_invalid_config_fails_before_anything_starts(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        with pytest.raises(claudecode.UnknownOptionError, match="system_promt"):
            await Supervisor.start_link([{**opts, "name": "ok"},
                                         {**opts, "name": "bad", "system_promt": "x"}])
        assert otpy.whereis("ok") is None
        sup = await Supervisor.start_link([])
        with pytest.raises(claudecode.InvalidOptionError):
            await Supervisor.start_session(sup, {**opts, "name": "bad", "max_turns": -1})


async def test_nested_in_an_application_tree(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        app = await otpy.Supervisor.start_link([
            Supervisor.child_spec([{**opts, "name": "assistant"}], name="claude"),
        ])
        assert await _ask("assistant", "hello") == "echo #2: hello"
        rows = await otpy.Supervisor.which_children(app)
        assert rows[0].id == "claude" and rows[0].type == "supervisor"
        otpy.unlink(app)
        await otpy.stop(app, otpy.Shutdown())
        assert otpy.whereis("assistant") is None
