"""CallbackHandler: unit tests, then the real pinned CLI against FakeAnthropic.

The real-CLI tests run the CLI with argv/env from ``Options`` and let the
handler answer every ``can_use_tool`` / ``hook_callback`` / ``mcp_message``
request exactly as an adapter would (``tests/claudecode_tests/_callback_driver.py``).
They check effects, not just messages: the tool function ran with the
arguments, a denied Bash command did not create its marker file, the model's
next request carried the tool result or the denial.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from _callback_driver import callback_cli

from claudecode._callbacks import (
    MCP_NOTIFICATION_ACK,
    CallbackError,
    CallbackHandler,
    CallbackOutcome,
)
from claudecode._hooks import (
    Allow,
    Deny,
    HookContext,
    HookMatcher,
    PermissionContext,
    allow,
    deny,
)
from claudecode._mcp import ToolResult, mcp_server, tool
from claudecode._messages import ResultMessage
from claudecode._options import Options
from claudecode._protocol import (
    CanUseToolRequest,
    CLIProtocol,
    ControlRequest,
    HookCallbackRequest,
    McpMessageRequest,
)
from claudecode.testing import FakeAnthropic, RecordedRequest, Text, ToolUse, Turn

# -- helpers -----------------------------------------------------------------------


def can_use(tool_name: str, tool_input: dict[str, Any], rid: str = "c1", **extra: Any) -> Any:
    body = {"subtype": "can_use_tool", "tool_name": tool_name, "input": tool_input, **extra}
    return CanUseToolRequest(rid, "can_use_tool", body, tool_name=tool_name, input=tool_input)


def hook_req(callback_id: str, event: str, rid: str = "h1", **fields: Any) -> HookCallbackRequest:
    hook_input = {"hook_event_name": event, **fields}
    body = {
        "subtype": "hook_callback",
        "callback_id": callback_id,
        "input": hook_input,
        "tool_use_id": "toolu_1",
    }
    return HookCallbackRequest(
        rid, "hook_callback", body, callback_id=callback_id, input=hook_input, tool_use_id="toolu_1"
    )


def mcp_req(server: str, message: Any, rid: str = "m1") -> McpMessageRequest:
    body = {"subtype": "mcp_message", "server_name": server, "message": message}
    return McpMessageRequest(rid, "mcp_message", body, server_name=server, message=message)


def result_texts(request: RecordedRequest) -> list[tuple[str, bool]]:
    """(text, is_error) of each tool result in a model request."""
    out = []
    for block in request.tool_results:
        content = block.get("content")
        if isinstance(content, list):
            text = "".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
        else:
            text = str(content)
        out.append((text, bool(block.get("is_error"))))
    return out


# -- unit: can_use_tool --------------------------------------------------------------


async def test_can_use_tool_allow_deny_and_context() -> None:
    seen: list[tuple[str, dict[str, Any], PermissionContext]] = []

    async def decide(name: str, tool_input: dict[str, Any], ctx: PermissionContext) -> Any:
        seen.append((name, tool_input, ctx))
        if name == "Bash":
            return Deny("no shell", interrupt=True)
        if name == "Edit":
            return Allow(updated_input={"x": 2}, updated_permissions=ctx.suggestions[:1])
        return Allow()

    handler = CallbackHandler(Options(can_use_tool=decide))
    sugg = [{"type": "addRules", "rules": [], "behavior": "allow", "destination": "session"}]
    assert await handler.handle(can_use("Bash", {"command": "ls"})) == {
        "behavior": "deny",
        "message": "no shell",
        "interrupt": True,
    }
    edit = can_use(
        "Edit",
        {"x": 1},
        permission_suggestions=sugg,
        tool_use_id="toolu_9",
        blocked_path="/etc",
        decision_reason="hook asked",
        title="Claude wants to edit",
    )
    assert await handler.handle(edit) == {
        "behavior": "allow",
        "updatedInput": {"x": 2},
        "updatedPermissions": sugg,
    }
    assert await handler.handle(can_use("Read", {"p": 1})) == {
        "behavior": "allow",
        "updatedInput": {"p": 1},
    }
    ctx = seen[1][2]
    assert ctx.tool_use_id == "toolu_9" and ctx.blocked_path == "/etc"
    assert ctx.decision_reason == "hook asked" and ctx.title == "Claude wants to edit"
    assert ctx.suggestions == sugg and not ctx.signal.aborted


async def test_can_use_tool_failures_deny_and_name_the_problem() -> None:
    def raising(name: str, tool_input: dict[str, Any], ctx: PermissionContext) -> Any:
        raise KeyError("policy table")

    handler = CallbackHandler(Options(can_use_tool=raising))
    answer = await handler.handle(can_use("Bash", {}))
    assert answer["behavior"] == "deny"
    assert answer["message"] == "can_use_tool raised KeyError: 'policy table'"

    async def wrong(name: str, tool_input: dict[str, Any], ctx: PermissionContext) -> Any:
        return True

    answer = await CallbackHandler(Options(can_use_tool=wrong)).handle(can_use("Bash", {}))
    assert answer["behavior"] == "deny" and "returned bool" in answer["message"]


async def test_can_use_tool_input_mutation_does_not_leak_into_allow() -> None:
    def mutate(name: str, tool_input: dict[str, Any], ctx: PermissionContext) -> Allow:
        tool_input["command"] = "rm -rf /"
        return Allow()

    answer = await CallbackHandler(Options(can_use_tool=mutate)).handle(
        can_use("Bash", {"command": "ls"})
    )
    assert answer == {"behavior": "allow", "updatedInput": {"command": "ls"}}


async def test_can_use_tool_timeout_denies(autojump_clock: trio.testing.MockClock) -> None:
    ctxs: list[PermissionContext] = []

    async def slow(name: str, tool_input: dict[str, Any], ctx: PermissionContext) -> Allow:
        ctxs.append(ctx)
        await trio.sleep(100)
        return Allow()

    handler = CallbackHandler(Options(can_use_tool=slow), callback_timeout=2.5)
    start = trio.current_time()
    answer = await handler.handle(can_use("Bash", {}))
    assert trio.current_time() - start == pytest.approx(2.5)
    assert answer == {
        "behavior": "deny",
        "message": "can_use_tool did not answer within 2.5s",
        "interrupt": False,
    }
    assert ctxs[0].signal.aborted and ctxs[0].signal.reason == "timed out after 2.5s"


async def test_no_can_use_tool_is_an_error_response() -> None:
    with pytest.raises(CallbackError) as info:
        await CallbackHandler(Options()).handle(can_use("Bash", {}))
    assert info.value.request_id == "c1" and "no can_use_tool" in info.value.error


# -- unit: hooks ---------------------------------------------------------------------


async def test_hook_dispatch_by_callback_id_with_optional_context() -> None:
    calls: list[tuple[Any, ...]] = []

    def two(hook_input: dict[str, Any], tool_use_id: str | None) -> Any:
        calls.append(("two", hook_input["hook_event_name"], tool_use_id))
        return deny("nope")

    async def three(hook_input: dict[str, Any], tool_use_id: str | None, ctx: HookContext) -> Any:
        calls.append(("three", ctx.event, ctx.callback_id, ctx.tool_use_id))
        return {"continue_": False, "stopReason": "enough"}

    def quiet(hook_input: dict[str, Any], tool_use_id: str | None) -> None:
        calls.append(("quiet",))

    options = Options(
        hooks={
            "PreToolUse": [HookMatcher("Bash", [two])],
            "PostToolUse": [HookMatcher(None, [three, quiet])],
        }
    )
    handler = CallbackHandler(options)
    assert handler.hooks_config == {
        "PreToolUse": [{"matcher": "Bash", "hookCallbackIds": ["hook_0"]}],
        "PostToolUse": [{"matcher": None, "hookCallbackIds": ["hook_1", "hook_2"]}],
    }
    assert await handler.handle(hook_req("hook_0", "PreToolUse")) == {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": "nope",
        }
    }
    assert await handler.handle(hook_req("hook_1", "PostToolUse")) == {
        "continue": False,
        "stopReason": "enough",
    }
    assert await handler.handle(hook_req("hook_2", "PostToolUse")) == {}
    assert calls == [
        ("two", "PreToolUse", "toolu_1"),
        ("three", "PostToolUse", "hook_1", "toolu_1"),
        ("quiet",),
    ]
    with pytest.raises(CallbackError, match="unknown hook callback id 'hook_7'"):
        await handler.handle(hook_req("hook_7", "PreToolUse"))


async def test_failing_hooks_fail_closed_for_permission_events_only() -> None:
    def broken(hook_input: dict[str, Any], tool_use_id: str | None) -> Any:
        raise RuntimeError("guard broke")

    def bad_output(hook_input: dict[str, Any], tool_use_id: str | None) -> Any:
        return allow()  # not valid for Stop

    options = Options(
        hooks={
            "PreToolUse": [broken],
            "PermissionRequest": [broken],
            "UserPromptSubmit": [broken],
            "Stop": [bad_output],
        }
    )
    handler = CallbackHandler(options)
    pre = await handler.handle(hook_req("hook_0", "PreToolUse"))
    assert pre["hookSpecificOutput"]["permissionDecision"] == "deny"
    reason = pre["hookSpecificOutput"]["permissionDecisionReason"]
    assert reason == "Hook error: hook hook_0 raised RuntimeError: guard broke"
    perm = await handler.handle(hook_req("hook_1", "PermissionRequest"))
    assert perm["hookSpecificOutput"]["decision"]["behavior"] == "deny"
    with pytest.raises(CallbackError, match="raised RuntimeError: guard broke"):
        await handler.handle(hook_req("hook_2", "UserPromptSubmit"))
    with pytest.raises(CallbackError, match="unusable output"):
        await handler.handle(hook_req("hook_3", "Stop"))


async def test_hook_timeout_uses_matcher_timeout(autojump_clock: trio.testing.MockClock) -> None:
    signals: list[HookContext] = []

    async def slow(hook_input: dict[str, Any], tool_use_id: str | None, ctx: HookContext) -> Any:
        signals.append(ctx)
        await trio.sleep(1000)

    options = Options(
        hooks={
            "PreToolUse": [HookMatcher("Bash", [slow], timeout=4)],
            "PostToolUse": [HookMatcher(None, [slow])],
        }
    )
    handler = CallbackHandler(options, callback_timeout=9)
    start = trio.current_time()
    pre = await handler.handle(hook_req("hook_0", "PreToolUse"))
    assert trio.current_time() - start == pytest.approx(4)
    assert "did not answer within 4s" in pre["hookSpecificOutput"]["permissionDecisionReason"]
    start = trio.current_time()
    with pytest.raises(CallbackError, match="within 9s"):
        await handler.handle(hook_req("hook_1", "PostToolUse"))
    assert trio.current_time() - start == pytest.approx(9)
    assert all(ctx.signal.aborted for ctx in signals)


async def test_where_splits_hooks_and_local_only_callbacks() -> None:
    def hook(hook_input: dict[str, Any], tool_use_id: str | None) -> None:
        return None

    async def decide(name: str, tool_input: dict[str, Any], ctx: PermissionContext) -> Allow:
        return Allow()

    server = mcp_server("calc")
    options = Options(
        hooks={
            "PreToolUse": [
                HookMatcher("Bash", [hook], where="remote"),
                HookMatcher("Read", [hook]),
            ]
        },
        can_use_tool=decide,
        mcp_servers={"calc": server},
    )
    everything = CallbackHandler(options)
    local = CallbackHandler(options, where="local")
    remote = CallbackHandler(options, where="remote")
    assert set(everything.hook_specs) == {"hook_0", "hook_1"}
    assert set(local.hook_specs) == {"hook_1"} and set(remote.hook_specs) == {"hook_0"}
    # Every handler registers every hook with the CLI.
    assert local.initialize_payload() == remote.initialize_payload()
    payload = everything.initialize_payload()
    assert payload["sdkMcpServers"] == ["calc"]
    assert payload["hooks"]["PreToolUse"][0]["hookCallbackIds"] == ["hook_0"]
    assert local.serves(can_use("Bash", {})) and not remote.serves(can_use("Bash", {}))
    assert local.serves(mcp_req("calc", {})) and not remote.serves(mcp_req("calc", {}))
    assert remote.serves(hook_req("hook_0", "PreToolUse"))
    assert not remote.serves(hook_req("hook_1", "PreToolUse"))
    assert not everything.serves(ControlRequest("x", "interrupt", {"subtype": "interrupt"}))
    with pytest.raises(CallbackError):
        await remote.handle(hook_req("hook_1", "PreToolUse"))


async def test_unsupported_subtype_is_an_error_response() -> None:
    with pytest.raises(CallbackError) as info:
        await CallbackHandler(Options()).handle(ControlRequest("r9", "future_thing", {}))
    assert info.value.error_code == "unsupported_request"
    assert "future_thing" in info.value.error


def test_bad_handler_arguments() -> None:
    with pytest.raises(ValueError, match="callback_timeout"):
        CallbackHandler(Options(), callback_timeout=0)
    with pytest.raises(ValueError, match="where"):
        CallbackHandler(Options(), where="elsewhere")  # type: ignore[arg-type]


# -- unit: mcp_message ---------------------------------------------------------------


async def test_mcp_message_routing_ack_and_unknown_server() -> None:
    @tool("add", "Add", {"a": int, "b": int})
    def add(args: dict[str, Any]) -> int:
        return int(args["a"] + args["b"])

    class Duck:
        __claudecode_sdk_mcp_server__ = True
        name = "duck"

        async def handle(self, message: dict[str, Any]) -> dict[str, Any]:
            return {"jsonrpc": "2.0", "id": message["id"], "result": {"quack": True}}

    options = Options(mcp_servers={"calc": mcp_server("calc", [add]), "duck": Duck()})
    handler = CallbackHandler(options)
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 2, "b": 3}},
    }
    assert await handler.handle(mcp_req("calc", call)) == {
        "mcp_response": {
            "jsonrpc": "2.0",
            "id": 7,
            "result": {"content": [{"type": "text", "text": "5"}], "isError": False},
        }
    }
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert await handler.handle(mcp_req("calc", note)) == {"mcp_response": MCP_NOTIFICATION_ACK}
    duck = await handler.handle(mcp_req("duck", {"jsonrpc": "2.0", "id": 1, "method": "x"}))
    assert duck["mcp_response"]["result"] == {"quack": True}
    missing = await handler.handle(mcp_req("nope", {"jsonrpc": "2.0", "id": 3, "method": "ping"}))
    assert missing["mcp_response"]["id"] == 3
    assert missing["mcp_response"]["error"]["code"] == -32601


async def test_mcp_tool_timeout_is_an_error_result(autojump_clock: trio.testing.MockClock) -> None:
    @tool("wait", "Waits", {})
    async def wait(args: dict[str, Any]) -> str:
        await trio.sleep(60)
        return "late"

    handler = CallbackHandler(
        Options(mcp_servers={"s": mcp_server("s", [wait])}), callback_timeout=5
    )
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "wait"}}
    answer = await handler.handle(mcp_req("s", call))
    result = answer["mcp_response"]["result"]
    assert result["isError"] is True
    assert result["content"][0]["text"] == "Tool error: 'wait' timed out after 5s"


# -- unit: start / cancel --------------------------------------------------------------


async def test_start_replies_and_cancel_suppresses_the_reply() -> None:
    release = trio.Event()
    started = trio.Event()
    cancelled: list[str] = []

    async def decide(name: str, tool_input: dict[str, Any], ctx: PermissionContext) -> Allow:
        started.set()
        try:
            await release.wait()
        except trio.Cancelled:
            cancelled.append(ctx.signal.reason or "")
            raise
        return Allow()

    handler = CallbackHandler(Options(can_use_tool=decide))
    outcomes: list[CallbackOutcome] = []

    async def reply(outcome: CallbackOutcome) -> None:
        outcomes.append(outcome)

    async with trio.open_nursery() as nursery:
        handler.start(nursery, can_use("Bash", {}, rid="a"), reply)
        assert handler.running == {"a"}
        # A cancel right after the request (task not yet run) still finds it.
        handler.start(nursery, can_use("Bash", {}, rid="early"), reply)
        assert handler.cancel("early")
        await started.wait()
        assert handler.cancel("a") and not handler.cancel("a")
        handler.start(nursery, can_use("Bash", {}, rid="b"), reply)
        await trio.testing.wait_all_tasks_blocked()
        release.set()
    assert cancelled == ["cancelled by the CLI"]
    assert [(o.request_id, o.ok) for o in outcomes] == [("b", True)]
    assert handler.running == frozenset()

    proto = CLIProtocol()
    proto.feed(b'{"type":"control_request","request_id":"b","request":{"subtype":"x"}}\n')
    line = outcomes[0].encode(proto)
    assert line.startswith(b'{"type":"control_response"') and not proto.is_incoming_pending("b")
    err = CallbackOutcome("e", "hook_callback", None, "boom").encode(CLIProtocol())
    assert b'"subtype":"error"' in err and b'"error":"boom"' in err


async def test_start_errors_become_error_outcomes_and_broken_reply_is_ignored() -> None:
    handler = CallbackHandler(Options())
    outcomes: list[CallbackOutcome] = []

    async def reply(outcome: CallbackOutcome) -> None:
        outcomes.append(outcome)
        raise trio.BrokenResourceError("CLI gone")

    async with trio.open_nursery() as nursery:
        handler.start(nursery, can_use("Bash", {}), reply)
    assert len(outcomes) == 1 and not outcomes[0].ok
    assert outcomes[0].error is not None and "no can_use_tool" in outcomes[0].error


async def test_cancel_all() -> None:
    async def forever(name: str, tool_input: dict[str, Any], ctx: PermissionContext) -> Allow:
        await trio.sleep_forever()
        raise AssertionError

    handler = CallbackHandler(Options(can_use_tool=forever))

    async def reply(outcome: CallbackOutcome) -> None:
        raise AssertionError("no reply expected")

    async with trio.open_nursery() as nursery:
        for rid in ("1", "2", "3"):
            handler.start(nursery, can_use("Bash", {}, rid=rid), reply)
        await trio.testing.wait_all_tasks_blocked()
        assert handler.cancel_all() == 3
    assert handler.running == frozenset()


# -- the real CLI ------------------------------------------------------------------------


async def test_real_cli_calls_in_process_mcp_tool() -> None:
    calls: list[dict[str, Any]] = []

    @tool("add", "Add two integers", {"a": int, "b": int})
    async def add(args: dict[str, Any]) -> str:
        calls.append(args)
        return str(args["a"] + args["b"])

    options = Options(
        mcp_servers={"calc": mcp_server("calc", [add])}, allowed_tools=["mcp__calc__add"]
    )
    async with FakeAnthropic.serve(seed=11) as fake:
        fake.script(
            Turn([Text("adding"), ToolUse("mcp__calc__add", {"a": 2, "b": 3}, id="toolu_add")]),
            lambda r: Text(f"the sum is {r.tool_result_text('toolu_add')}"),
        )
        async with callback_cli(fake, options) as cli:
            result = await cli.turn("add 2 and 3")
            assert cli.initialize is not None
            methods = [r.request["message"]["method"] for r in cli.requests_of("mcp_message")]
    assert calls == [{"a": 2, "b": 3}]
    assert isinstance(result, ResultMessage) and result.result == "the sum is 5"
    first, second = fake.messages_requests
    # The pinned CLI defers MCP tools (listed by name, loaded through ToolSearch).
    assert b"mcp__calc__add" in first.body
    assert second.tool_result_text("toolu_add") == "5"
    assert methods[:3] == ["initialize", "notifications/initialized", "tools/list"]
    assert "tools/call" in methods
    assert all(o.ok for o in cli.outcomes)


async def test_real_cli_raising_tool_and_invalid_arguments_are_error_results() -> None:
    calls: list[str] = []

    @tool("boom", "Always fails", {})
    def boom(args: dict[str, Any]) -> str:
        calls.append("boom")
        raise ValueError("kaput")

    @tool("add", "Add two integers", {"a": int, "b": int})
    def add(args: dict[str, Any]) -> ToolResult:
        calls.append("add")
        return ToolResult.text("never")

    options = Options(
        mcp_servers={"calc": mcp_server("calc", [boom, add])},
        allowed_tools=["mcp__calc__boom", "mcp__calc__add"],
    )
    async with FakeAnthropic.serve(seed=12) as fake:
        fake.script(
            ToolUse("mcp__calc__boom", {}, id="toolu_boom"),
            ToolUse("mcp__calc__add", {"a": "two", "b": 3}, id="toolu_bad"),
            Text("recovered"),
        )
        async with callback_cli(fake, options) as cli:
            result = await cli.turn("try the tools")
            follow_up = await cli.turn("still alive?")
    assert result.subtype == "success" and result.result == "recovered"
    assert follow_up.subtype == "success"
    assert calls == ["boom"]  # add was never called with bad arguments
    _, after_boom, after_bad, _ = fake.messages_requests
    [(text, is_error)] = result_texts(after_boom)
    assert is_error and text.startswith("Tool error: ValueError: kaput")
    [(text, is_error)] = result_texts(after_bad)
    assert is_error and text.startswith("Tool error: invalid arguments for 'add': $.a:")


async def test_real_cli_pre_tool_use_hook_denies_bash(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    seen: list[dict[str, Any]] = []

    async def guard(hook_input: dict[str, Any], tool_use_id: str | None) -> Any:
        seen.append(hook_input)
        return deny("no shell today")

    options = Options(
        hooks={"PreToolUse": [HookMatcher(matcher="Bash", hooks=[guard])]},
        allowed_tools=["Bash"],
    )
    async with FakeAnthropic.serve(seed=13) as fake:
        fake.script(ToolUse("Bash", {"command": f"touch {marker}"}, id="toolu_b"), Text("ok"))
        async with callback_cli(fake, options) as cli:
            result = await cli.turn("make a file")
    assert result.result == "ok"
    assert not marker.exists()
    assert [(s["hook_event_name"], s["tool_name"]) for s in seen] == [("PreToolUse", "Bash")]
    assert seen[0]["tool_input"]["command"] == f"touch {marker}"
    [(text, is_error)] = result_texts(fake.messages_requests[1])
    assert is_error and "no shell today" in text


async def test_real_cli_hook_with_other_matcher_is_not_called(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    seen: list[Any] = []

    def on_write(hook_input: dict[str, Any], tool_use_id: str | None) -> Any:
        seen.append(hook_input)
        return deny("writes are off")

    options = Options(
        hooks={"PreToolUse": [HookMatcher("Write|Edit", [on_write])]}, allowed_tools=["Bash"]
    )
    async with FakeAnthropic.serve(seed=14) as fake:
        fake.script(ToolUse("Bash", {"command": f"touch {marker}"}), Text("ok"))
        async with callback_cli(fake, options) as cli:
            await cli.turn("make a file")
            hook_requests = cli.requests_of("hook_callback")
    assert marker.exists()
    assert seen == [] and hook_requests == []


async def test_real_cli_raising_pre_tool_use_hook_fails_closed(tmp_path: Path) -> None:
    marker = tmp_path / "marker"

    def broken(hook_input: dict[str, Any], tool_use_id: str | None) -> Any:
        raise RuntimeError("guard broke")

    options = Options(hooks={"PreToolUse": [HookMatcher("Bash", [broken])]}, allowed_tools=["Bash"])
    async with FakeAnthropic.serve(seed=15) as fake:
        fake.script(ToolUse("Bash", {"command": f"touch {marker}"}), Text("ok"))
        async with callback_cli(fake, options) as cli:
            result = await cli.turn("make a file")
    assert result.result == "ok" and not marker.exists()
    [(text, is_error)] = result_texts(fake.messages_requests[1])
    assert is_error and "Hook error: hook hook_0 raised RuntimeError: guard broke" in text


async def test_real_cli_can_use_tool_allow_with_updated_input(tmp_path: Path) -> None:
    asked, ran = tmp_path / "asked", tmp_path / "ran"
    seen: list[tuple[str, dict[str, Any], PermissionContext]] = []

    async def rewrite(name: str, tool_input: dict[str, Any], ctx: PermissionContext) -> Allow:
        seen.append((name, tool_input, ctx))
        return Allow(updated_input={**tool_input, "command": f"touch {ran} && echo rewritten"})

    options = Options(can_use_tool=rewrite)
    async with FakeAnthropic.serve(seed=16) as fake:
        fake.script(ToolUse("Bash", {"command": f"touch {asked}"}, id="toolu_rw"), Text("ok"))
        async with callback_cli(fake, options) as cli:
            result = await cli.turn("make a file")
    assert result.result == "ok"
    assert ran.exists() and not asked.exists()
    [(name, tool_input, ctx)] = seen
    assert name == "Bash" and tool_input == {"command": f"touch {asked}"}
    assert ctx.tool_use_id == "toolu_rw" and isinstance(ctx.suggestions, list)
    assert result_texts(fake.messages_requests[1]) == [("rewritten", False)]


async def test_real_cli_can_use_tool_deny_reaches_the_model(tmp_path: Path) -> None:
    marker = tmp_path / "marker"

    def refuse(name: str, tool_input: dict[str, Any], ctx: PermissionContext) -> Deny:
        return Deny("policy says no")

    async with FakeAnthropic.serve(seed=17) as fake:
        fake.script(ToolUse("Bash", {"command": f"touch {marker}"}), Text("understood"))
        async with callback_cli(fake, Options(can_use_tool=refuse)) as cli:
            result = await cli.turn("make a file")
    assert result.result == "understood" and not marker.exists()
    assert result_texts(fake.messages_requests[1]) == [("policy says no", True)]


async def test_real_cli_slow_can_use_tool_is_denied_not_hung(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    aborted: list[str | None] = []

    async def dawdle(name: str, tool_input: dict[str, Any], ctx: PermissionContext) -> Allow:
        try:
            await trio.sleep(60)
        finally:
            aborted.append(ctx.signal.reason)
        return Allow()

    async with FakeAnthropic.serve(seed=18) as fake:
        fake.script(ToolUse("Bash", {"command": f"touch {marker}"}), Text("moving on"))
        async with callback_cli(fake, Options(can_use_tool=dawdle), callback_timeout=1.0) as cli:
            start = trio.current_time()
            result = await cli.turn("make a file", timeout=20)
            elapsed = trio.current_time() - start
    assert result.result == "moving on" and not marker.exists()
    assert aborted == ["timed out after 1s"]
    assert elapsed < 15
    [(text, is_error)] = result_texts(fake.messages_requests[1])
    assert is_error and "can_use_tool did not answer within 1s" in text


async def test_real_cli_cancel_request_cancels_the_running_callback(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    waiting = trio.Event()
    outcome: list[str] = []

    async def hold(name: str, tool_input: dict[str, Any], ctx: PermissionContext) -> Allow:
        waiting.set()
        try:
            await trio.sleep(60)
        except trio.Cancelled:
            outcome.append(f"cancelled: {ctx.signal.reason}")
            raise
        return Allow()

    async with FakeAnthropic.serve(seed=19) as fake:
        fake.script(ToolUse("Bash", {"command": f"touch {marker}"}), Text("never"))
        async with callback_cli(fake, Options(can_use_tool=hold)) as cli:

            async def interrupt_when_waiting() -> None:
                await waiting.wait()
                _, line = cli.cli.proto.control_request("interrupt")
                await cli.cli.send(line)

            cli.nursery.start_soon(interrupt_when_waiting)
            result = await cli.turn("make a file", timeout=20)
            [request] = cli.requests_of("can_use_tool")
            assert cli.cancels == [request.request_id]
            assert cli.outcomes == []  # no answer was written for the withdrawn request
            again = await cli.turn("hello again", timeout=20)
    assert outcome == ["cancelled: cancelled by the CLI"]
    assert result.subtype == "error_during_execution" and not marker.exists()
    assert again.subtype == "success"
