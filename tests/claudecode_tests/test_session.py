"""Sessions over the real pinned CLI, against FakeAnthropic.

Every test starts a FakeAnthropic and gives the CLI a private HOME and cwd
(fixtures in ``_session_env``), and checks afterwards that no CLI process
was left behind. The echo reply makes the conversation visible: ``echo #N``
is the number of messages the CLI sent, so it grows by 2 per remembered
turn (see docs/testing-with-fake-anthropic.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from _session_env import CLI, cli_children, fake, no_orphans, opts

import claudecode
import otpy
from claudecode import CLIExited, StreamError
from claudecode.testing import FakeAnthropic, Text, ToolUse, Turn

__all__ = ["fake", "no_orphans", "opts"]  # fixtures used by name


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"


SLOW = Turn([Text("word " * 100, chunks=100)], chunk_delay=0.3)
"""A reply that streams for about 30 s."""

QUICK = 12.0
"""Seconds within which what should not wait for a slow reply is done (it takes
1-3 s on an idle machine; the slow replies take 30 s, so a loaded machine does
not make the difference ambiguous)."""


def _is(prompt: str) -> Any:
    """A script condition: the request's last user text is ``prompt``."""
    return lambda request: request.last_user_text == prompt


async def _ask(session: Any, prompt: str) -> str:
    return await claudecode.stream(session, prompt).final_text()


# ---------------------------------------------------------------- basics


async def test_lazy_start_and_multi_turn_memory(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        session = await claudecode.start_link(**opts)
        info = await claudecode.adapter_info(session)
        assert info["state"] == "none" and info["os_pid"] is None  # lazy: no CLI yet
        assert await claudecode.get_session_id(session) is None
        assert await claudecode.health(session) == "healthy"

        assert await _ask(session, "one") == "echo #2: one"
        first = await claudecode.adapter_info(session)
        assert first["state"] == "ready" and _running(first["os_pid"])
        assert await _ask(session, "two") == "echo #4: two"
        assert await _ask(session, "three") == "echo #6: three"
        # the same warm CLI answered every turn
        assert (await claudecode.adapter_info(session))["os_pid"] == first["os_pid"]
        sid = await claudecode.get_session_id(session)
        assert isinstance(sid, str) and len(sid) == 36
        assert await claudecode.alive(session)

        await claudecode.stop(session)
        assert not await claudecode.alive(session)
        assert not _running(first["os_pid"])


async def test_queries_queue_fifo_one_turn_at_a_time(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    fake.default = lambda req: Turn([Text(f"echo #{len(req.messages)}: {req.last_user_text}")],
                                    delay=0.2)
    async with otpy.open_node():
        session = await claudecode.start_link(**opts)
        me = otpy.self()

        async def consumer(prompt: str) -> None:
            text = await _ask(session, prompt)
            otpy.send(me, ("done", prompt, text, trio.current_time()))

        for prompt in ("a", "b", "c"):
            otpy.spawn(consumer, prompt)
            await trio.sleep(0.01)  # submission order a, b, c
        done = [await otpy.receive(timeout=20) for _ in range(3)]
        assert [d[1] for d in done] == ["a", "b", "c"]
        assert [d[2] for d in done] == ["echo #2: a", "echo #4: b", "echo #6: c"]
        # one at a time: the API never saw two requests in flight
        assert len(fake.messages_requests) == 3


async def test_stop_with_queued_and_active_streams_fails_them(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    fake.default = Turn([Text("slow")], delay=30)
    async with otpy.open_node():
        session = await claudecode.start(**opts)
        me = otpy.self()

        async def consumer() -> None:
            try:
                await _ask(session, "x")
            except StreamError as err:
                otpy.send(me, ("failed", err.reason))

        otpy.spawn(consumer)
        otpy.spawn(consumer)
        await fake.wait_for_requests(1, lambda r: r.is_messages)
        t0 = time.monotonic()
        await claudecode.stop(session)
        assert time.monotonic() - t0 < QUICK
        reasons = [(await otpy.receive(timeout=5))[1] for _ in range(2)]
        assert reasons == [otpy.Normal(), otpy.Normal()]


# ---------------------------------------------------------------- resume / fork / clear


async def test_resume_sees_the_history(opts: dict[str, Any], fake: FakeAnthropic) -> None:
    async with otpy.open_node():
        first = await claudecode.start_link(**opts)
        assert await _ask(first, "remember banana") == "echo #2: remember banana"
        assert await _ask(first, "and cherry") == "echo #4: and cherry"
        sid = await claudecode.get_session_id(first)
        await claudecode.stop(first)

        second = await claudecode.start_link(resume=sid, **opts)
        assert await claudecode.get_session_id(second) == sid  # known before the first turn
        text = await _ask(second, "what fruit?")
        assert text.endswith(": what fruit?")
        count = int(text.split("#")[1].split(":")[0])
        assert count >= 6  # the two earlier turns came along
        assert "remember banana" in fake.messages_requests[-1].body.decode()
        assert await claudecode.get_session_id(second) == sid  # resume keeps the id


async def test_fork_gets_a_new_id_and_keeps_the_history(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    async with otpy.open_node():
        original = await claudecode.start_link(**opts)
        await _ask(original, "my name is Mike")
        sid = await claudecode.get_session_id(original)

        forked = await claudecode.start_link(resume=sid, fork_session=True, **opts)
        assert await claudecode.get_session_id(forked) is None  # new id only after a turn
        result = await claudecode.stream(forked, "what is my name?").final_result()
        new_id = await claudecode.get_session_id(forked)
        assert new_id is not None and new_id != sid and result.session_id == new_id
        assert "my name is Mike" in fake.messages_requests[-1].body.decode()
        assert await claudecode.get_session_id(original) == sid  # original unchanged
        assert await _ask(original, "still me") == "echo #4: still me"


async def test_clear_really_starts_a_fresh_conversation(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        session = await claudecode.start_link(**opts)
        assert await _ask(session, "one") == "echo #2: one"
        assert await _ask(session, "two") == "echo #4: two"
        old_id = await claudecode.get_session_id(session)
        old_cli = (await claudecode.adapter_info(session))["os_pid"]

        await claudecode.clear(session)
        assert await claudecode.get_session_id(session) is None
        assert not _running(old_cli)  # the old CLI is gone, not just forgotten

        assert await _ask(session, "three") == "echo #2: three"  # count back to the start
        assert await claudecode.get_session_id(session) not in (None, old_id)


async def test_clear_after_resume_does_not_resume_again(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        first = await claudecode.start_link(**opts)
        await _ask(first, "a")
        await _ask(first, "b")
        sid = await claudecode.get_session_id(first)
        await claudecode.stop(first)

        second = await claudecode.start_link(resume=sid, **opts)
        assert await _ask(second, "c") != "echo #2: c"
        await claudecode.clear(second)
        assert await _ask(second, "d") == "echo #2: d"


# ---------------------------------------------------------------- runtime control


async def test_set_model_reaches_the_api(opts: dict[str, Any], fake: FakeAnthropic) -> None:
    async with otpy.open_node():
        session = await claudecode.start_link(model="claude-haiku-4-5", **opts)
        await claudecode.set_model(session, "model-before-start")  # stored for the start
        await _ask(session, "a")
        assert fake.messages_requests[-1].model == "model-before-start"
        await claudecode.set_model(session, "my-test-model")  # sent to the running CLI
        await _ask(session, "b")
        assert fake.messages_requests[-1].model == "my-test-model"
        assert (await claudecode.adapter_info(session))["model"] == "my-test-model"


async def test_set_permission_mode(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        session = await claudecode.start_link(**opts)
        await _ask(session, "a")
        await claudecode.set_permission_mode(session, "accept_edits")
        messages = [m async for m in claudecode.stream(session, "b")]
        init = next(m for m in messages if isinstance(m, claudecode.SystemMessage) and m.is_init)
        assert init.permission_mode == "acceptEdits"
        with pytest.raises(claudecode.InvalidOptionError, match="permission_mode"):
            await claudecode.set_permission_mode(session, "yolo")


async def test_generic_control_request(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        session = await claudecode.start_link(**opts)
        # starts the CLI on demand, then asks it
        usage = await claudecode.send_control_request(session, "mcp_status")
        assert isinstance(usage, dict)
        with pytest.raises(claudecode.SessionError, match="no_such_request"):
            await claudecode.send_control_request(session, "no_such_request")


async def test_interrupt_mid_stream(opts: dict[str, Any], fake: FakeAnthropic) -> None:
    fake.script(SLOW, when=_is("talk"))
    async with otpy.open_node():
        session = await claudecode.start_link(include_partial_messages=True, **opts)
        assert await claudecode.interrupt(session) is None  # nothing running: no-op
        t0 = time.monotonic()
        deltas: list[str] = []
        result = None
        async for message in claudecode.stream(session, "talk"):
            if isinstance(message, claudecode.PartialAssistantMessage) and message.text_delta:
                deltas.append(message.text_delta)
                if len(deltas) == 2:
                    answer = await claudecode.interrupt(session)
                    assert answer == {"still_queued": []}
            if isinstance(message, claudecode.ResultMessage):
                result = message
        assert result is not None and result.subtype == "error_during_execution"
        assert time.monotonic() - t0 < QUICK
        assert 2 <= len(deltas) < 100
        assert (await _ask(session, "again")).endswith(": again")  # the CLI stays usable


# ---------------------------------------------------------------- failures


async def test_invalid_options_fail_at_once(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        with pytest.raises(claudecode.UnknownOptionError, match="modle") as info:
            await claudecode.start_link(modle="sonnet")
        assert info.value.suggestions == ("model",)
        with pytest.raises(claudecode.InvalidOptionError) as bad:
            await claudecode.start_link(max_turns=0)
        assert bad.value.option == "max_turns"
        with pytest.raises(claudecode.InvalidOptionTypeError, match="adapter"):
            await claudecode.start_link(adapter="port")


async def test_cli_not_found_raises_from_start_link(tmp_path: Path) -> None:
    async with otpy.open_node():
        with pytest.raises(claudecode.CLINotFoundError, match="claudecode install-cli"):
            await claudecode.start_link(cli_path=str(tmp_path / "no" / "claude"))
        with pytest.raises(claudecode.CLINotFoundError, match="claudecode install-cli"):
            await claudecode.start_link(cli_path="global", env={"PATH": str(tmp_path)})
        with pytest.raises(claudecode.CLINotFoundError):
            await claudecode.Supervisor.start_link([{"name": "x", "cli_path": "/nope/claude"}])
        assert otpy.whereis("x") is None


async def test_cli_crash_at_start_reports_stderr_at_once(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        session = await claudecode.start_link(extra_args={"--no-such-flag": None}, **opts)
        t0 = time.monotonic()
        with pytest.raises(StreamError) as info:
            await _ask(session, "hi")
        assert time.monotonic() - t0 < QUICK  # not an initialize timeout
        reason = info.value.reason
        assert isinstance(reason, CLIExited) and reason.status == 1
        assert "unknown option" in reason.stderr_tail
        assert "unknown option" in str(info.value)
        # the session survives a failed start, and says why
        assert await claudecode.alive(session)
        status = await claudecode.health(session)
        assert status == ("unhealthy", reason)
        with pytest.raises(claudecode.SessionError) as warm:
            await claudecode.prewarm(session)
        assert isinstance(warm.value.reason, CLIExited)


async def test_cli_script_crash_keeps_stderr_tail(opts: dict[str, Any], tmp_path: Path) -> None:
    script = tmp_path / "fake-claude"
    script.write_text("#!/bin/sh\nhead -c 20000 /dev/zero | tr '\\0' 'x' >&2\n"
                      "echo 'fatal: config is broken' >&2\nexit 3\n")
    script.chmod(0o755)
    async with otpy.open_node():
        session = await claudecode.start_link(**{**opts, "cli_path": str(script)})
        with pytest.raises(StreamError) as info:
            await _ask(session, "hi")
        reason = info.value.reason
        assert isinstance(reason, CLIExited) and reason.status == 3
        assert reason.stderr_tail.endswith("fatal: config is broken\n")
        assert 8000 <= len(reason.stderr_tail) <= 8192  # the tail, bounded


async def test_oversized_line_fails_the_request_and_the_next_query_works(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    fake.script(Text("y" * 200_000), when=_is("big"))
    async with otpy.open_node():
        session = await claudecode.start_link(max_buffer_size=64 * 1024, **opts)
        with pytest.raises(StreamError) as info:
            await _ask(session, "big")
        reason = info.value.reason
        assert isinstance(reason, claudecode.LineTooLong)
        assert reason.limit == 64 * 1024 and reason.size > 200_000
        assert await claudecode.health(session) == "degraded"
        assert (await _ask(session, "small")).endswith(": small")
        assert await claudecode.health(session) == "healthy"


async def test_oversized_message_mid_turn_fails_at_once_and_the_turn_is_ended(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    # A huge tool call (the assistant line is over the limit) and then, much
    # later, a small final answer: the caller fails at the huge line, not at
    # the end, and the abandoned turn is interrupted.
    fake.script(ToolUse("NoSuchTool", {"pad": "x" * 150_000}), when=_is("big"))
    fake.script(Turn([Text("done")], delay=30))
    async with otpy.open_node():
        session = await claudecode.start_link(max_buffer_size=64 * 1024, **opts)
        await claudecode.prewarm(session)
        t0 = time.monotonic()
        with pytest.raises(StreamError) as info:
            await _ask(session, "big")
        assert time.monotonic() - t0 < QUICK
        reason = info.value.reason
        assert isinstance(reason, claudecode.LineTooLong) and reason.size > 150_000
        assert b'"type":"assistant"' in reason.head
        fake.clear_script()
        assert (await _ask(session, "small")).endswith(": small")
        assert time.monotonic() - t0 < QUICK  # the 30 s answer was never waited for


async def test_stream_timeout_interrupts_the_turn(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    fake.script(Turn([Text("late")], delay=30), when=_is("slow"))
    async with otpy.open_node():
        session = await claudecode.start_link(**opts)
        await claudecode.prewarm(session)
        t0 = time.monotonic()
        with pytest.raises(StreamError) as info:
            async for _ in claudecode.stream(session, "slow", timeout=0.5):
                pass
        assert isinstance(info.value.reason, otpy.Timeout)
        assert time.monotonic() - t0 < QUICK
        t1 = time.monotonic()
        assert (await _ask(session, "next")).endswith(": next")
        assert time.monotonic() - t1 < QUICK  # the slow turn was interrupted, not waited for


async def test_abandoned_stream_interrupts_the_cli(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    fake.script(SLOW, when=_is("talk"))
    async with otpy.open_node():
        session = await claudecode.start_link(include_partial_messages=True, **opts)
        t0 = time.monotonic()
        async with claudecode.stream(session, "talk") as s:
            async for _delta in s.text_deltas():
                break  # leave early
        t1 = time.monotonic()
        assert (await _ask(session, "next")).endswith(": next")
        assert time.monotonic() - t0 < QUICK  # not the ~30 s the first turn would take
        assert time.monotonic() - t1 < QUICK
        assert "[Request interrupted by user]" in fake.messages_requests[-1].body.decode()


async def test_consumer_death_abandons_its_stream(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    fake.script(SLOW, when=_is("talk"))
    async with otpy.open_node():
        session = await claudecode.start_link(include_partial_messages=True, **opts)

        async def consumer() -> None:
            async for _delta in claudecode.stream(session, "talk").text_deltas():
                raise RuntimeError("consumer crashed")

        _pid, ref = otpy.spawn_monitor(consumer)
        down = await otpy.receive(lambda m: isinstance(m, otpy.Down) and m.ref == ref, timeout=10)
        assert isinstance(down.reason, otpy.Crash)
        t0 = time.monotonic()
        assert (await _ask(session, "next")).endswith(": next")
        assert time.monotonic() - t0 < QUICK
        assert "[Request interrupted by user]" in fake.messages_requests[-1].body.decode()


async def test_garbage_collected_stream_abandons(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    fake.script(SLOW, when=_is("talk"))
    async with otpy.open_node():
        session = await claudecode.start_link(include_partial_messages=True, **opts)
        s = claudecode.stream(session, "talk")
        await s.__anext__()  # started, then dropped without closing
        del s
        t0 = time.monotonic()
        assert (await _ask(session, "next")).endswith(": next")
        assert time.monotonic() - t0 < QUICK


async def test_session_crash_leaves_no_cli(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        session = await claudecode.start(**opts)
        await _ask(session, "a")
        cli = (await claudecode.adapter_info(session))["os_pid"]
        ref = otpy.monitor(session)
        otpy.exit(session, otpy.Kill())  # no terminate: the adapter's link takes the CLI down
        await otpy.receive(lambda m: isinstance(m, otpy.Down) and m.ref == ref, timeout=5)
        with trio.fail_after(5):
            while _running(cli):
                await trio.sleep(0.05)


async def test_adapter_killed_leaves_no_cli(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        otpy.trap_exits(True)
        session = await claudecode.start_link(**opts)
        await _ask(session, "a")
        info = await claudecode.adapter_info(session)
        otpy.exit(info["adapter_pid"], otpy.Kill())
        exit_msg = await otpy.receive(otpy.Exit, timeout=5)
        assert exit_msg.pid == session and exit_msg.reason == otpy.Killed()
        with trio.fail_after(5):
            while _running(info["os_pid"]):
                await trio.sleep(0.05)


async def test_cancelled_test_body_leaves_no_cli(opts: dict[str, Any], fake: FakeAnthropic) -> None:
    fake.default = Turn([Text("never")], delay=30)
    with trio.move_on_after(3) as scope:
        async with otpy.open_node():
            session = await claudecode.start_link(**opts)
            await _ask(session, "hang")
    assert scope.cancelled_caught
    assert cli_children() == []


async def test_kill_9_of_the_cli_mid_stream_fails_the_caller_and_exits_the_session(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    fake.script(SLOW, when=_is("talk"))
    async with otpy.open_node():
        otpy.trap_exits(True)
        session = await claudecode.start_link(include_partial_messages=True, **opts)
        t0 = time.monotonic()
        with pytest.raises(StreamError) as info:
            async for _delta in claudecode.stream(session, "talk").text_deltas():
                os.kill((await claudecode.adapter_info(session))["os_pid"], signal.SIGKILL)
        assert time.monotonic() - t0 < QUICK
        reason = info.value.reason
        assert reason == CLIExited(-signal.SIGKILL, "") and reason.signal == signal.SIGKILL
        exit_msg = await otpy.receive(otpy.Exit, timeout=5)
        assert exit_msg.pid == session and exit_msg.reason == reason


def test_cli_path_is_the_pinned_cli() -> None:
    assert os.access(CLI, os.X_OK)


# ---------------------------------------------------------------- callbacks through the adapter


async def test_in_process_mcp_tool_and_can_use_tool(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    me_holder: list[otpy.Pid] = []

    @claudecode.tool("add", "Add two numbers", {"a": int, "b": int})
    async def add(args: dict[str, Any]) -> str:
        # a tool may use otpy freely: it runs in its own process
        total = await otpy.call(me_holder[0], ("add", args["a"], args["b"]))
        return str(total)

    async def can_use_tool(name: str, tool_input: dict[str, Any], context: Any) -> Any:
        seen.append((name, tool_input))
        return claudecode.Allow()

    class Adder(otpy.GenServer):
        async def handle_call(self, request: Any, caller: Any) -> Any:
            return request[1] + request[2]

    fake.script(ToolUse("mcp__calc__add", {"a": 2, "b": 40}),
                lambda req: Text(f"the sum is {req.tool_result_text()}"))
    async with otpy.open_node():
        me_holder.append(await Adder.start_link())
        session = await claudecode.start_link(
            mcp_servers={"calc": claudecode.mcp_server("calc", tools=[add])},
            can_use_tool=can_use_tool, **opts)
        got = await claudecode.stream(session, "add 2 and 40").collect()
        assert got.text == "the sum is 42"
        assert [u.name for u, _ in got.tool_calls] == ["mcp__calc__add"]
        assert seen == [("mcp__calc__add", {"a": 2, "b": 40})]


async def test_hook_callbacks_run_on_the_host(opts: dict[str, Any], fake: FakeAnthropic) -> None:
    calls: list[str] = []

    async def guard(hook_input: dict[str, Any], tool_use_id: str | None) -> Any:
        calls.append(hook_input["tool_name"])
        return claudecode.deny("not today")

    fake.script(ToolUse("Bash", {"command": "echo hi"}),
                lambda req: Text(f"tool said: {req.tool_result_text()}"))
    async with otpy.open_node():
        session = await claudecode.start_link(
            hooks={"PreToolUse": [claudecode.HookMatcher(matcher="Bash", hooks=[guard])]},
            allowed_tools=["Bash"], **opts)
        text = await _ask(session, "run it")
        assert calls == ["Bash"]
        assert "not today" in text


async def test_cancel_request_from_the_cli_cancels_the_callback(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    # A permission prompt that never answers; interrupting the turn makes the
    # CLI withdraw it (control_cancel_request), which cancels the callback.
    events: list[Any] = []

    async def stuck(name: str, tool_input: dict[str, Any], context: Any) -> Any:
        events.append("asked")
        try:
            await trio.sleep_forever()
        finally:  # the signal is set before the cancellation arrives
            events.append(("cancelled", context.signal.aborted, context.signal.reason))

    fake.script(ToolUse("Bash", {"command": "touch should-not-exist"}), Text("done"))
    async with otpy.open_node():
        session = await claudecode.start_link(can_use_tool=stuck, **opts)
        messages = []
        async for message in claudecode.stream(session, "run"):
            messages.append(message)
            if isinstance(message, claudecode.AssistantMessage) and message.tool_uses:
                with trio.fail_after(5):
                    while not events:
                        await trio.sleep(0.02)
                await claudecode.interrupt(session)
        assert events == ["asked", ("cancelled", True, "cancelled by the CLI")]
        result = messages[-1]
        assert isinstance(result, claudecode.ResultMessage)
        assert result.subtype == "error_during_execution"
        assert not (Path(opts["cwd"]) / "should-not-exist").exists()


async def test_a_bad_request_does_not_crash_the_session(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        session = await claudecode.start_link(**opts)
        assert (await otpy.call(session, ("no_such_op",)))[0] == "error"
        assert (await otpy.call(session, "garbage"))[0] == "error"
        assert await claudecode.alive(session)
        assert await _ask(session, "still fine") == "echo #2: still fine"


HOST_PROGRAM = """
import math, sys, tempfile, trio, otpy, claudecode
from claudecode.testing import FakeAnthropic, Text, Turn

async def main():
    hang = Turn([Text("never")], delay=math.inf)
    async with FakeAnthropic.serve(log_requests=False, default=hang) as fake:
        home = tempfile.mkdtemp()
        async with otpy.open_node():
            env = {"HOME": home, "CLAUDE_CONFIG_DIR": home + "/.claude", **fake.env()}
            session = await claudecode.start_link(env=env, cwd=home, cli_path=sys.argv[1])

            async def ask():
                await claudecode.stream(session, "hang").collect()

            otpy.spawn(ask)
            await fake.wait_for_requests(1, lambda r: r.is_messages)
            print((await claudecode.adapter_info(session))["os_pid"], flush=True)
            await trio.sleep_forever()

trio.run(main)
"""


async def test_killing_the_host_process_kills_its_cli(tmp_path: Path) -> None:
    # The parent-death signal: even a SIGKILLed Python leaves no CLI behind.
    # Mid-turn, with its API request hanging, a CLI does not exit on stdin EOF
    # (without the signal it lives on, retrying the vanished API).
    script = tmp_path / "host.py"
    script.write_text(HOST_PROGRAM)
    async with trio.open_nursery() as nursery:
        proc = await nursery.start(partial(trio.run_process, [sys.executable, str(script), CLI],
                                           stdout=subprocess.PIPE, check=False))
        assert proc.stdout is not None
        with trio.fail_after(20):
            line = b""
            while not line.endswith(b"\n"):
                line += await proc.stdout.receive_some(100)
        cli = int(line)
        assert _running(cli)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    with trio.fail_after(1.5):
        while _running(cli):
            await trio.sleep(0.02)
