"""Hook matchers, hook output shapes, can_use_tool results; the shapes on the real CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from _callback_driver import callback_cli
from hypothesis import given
from hypothesis import strategies as st

from claudecode._hooks import (
    ADDITIONAL_CONTEXT_EVENTS,
    AbortSignal,
    Allow,
    Deny,
    HookMatcher,
    HookOutputError,
    HookResponse,
    PermissionContext,
    allow,
    ask,
    block,
    deny,
    halt,
    hook_output,
    ok,
    permission_result,
)
from claudecode._options import HOOK_EVENTS, Options, build_hooks_config
from claudecode._protocol_errors import InvalidOptionError
from claudecode.testing import FakeAnthropic, Text, ToolUse


def noop(hook_input: dict[str, Any], tool_use_id: str | None) -> None:
    return None


# -- HookMatcher ---------------------------------------------------------------------


def test_hook_matcher_fits_build_hooks_config() -> None:
    hooks = {
        "PreToolUse": [
            HookMatcher(matcher="Bash", hooks=[noop], timeout=5),
            HookMatcher("Write|Edit", [noop, noop], where="remote"),
        ],
        "Stop": [HookMatcher(hooks=noop)],  # a single callable is accepted
    }
    options = Options(hooks=hooks)
    config, specs = build_hooks_config(options.hooks)
    assert config == {
        "PreToolUse": [
            {"matcher": "Bash", "hookCallbackIds": ["hook_0"], "timeout": 5.0},
            {"matcher": "Write|Edit", "hookCallbackIds": ["hook_1", "hook_2"]},
        ],
        "Stop": [{"matcher": None, "hookCallbackIds": ["hook_3"]}],
    }
    assert [(s.event, s.matcher, s.timeout, s.where) for s in specs] == [
        ("PreToolUse", "Bash", 5.0, "local"),
        ("PreToolUse", "Write|Edit", None, "remote"),
        ("PreToolUse", "Write|Edit", None, "remote"),
        ("Stop", None, None, "local"),
    ]
    assert all(s.callback is noop for s in specs)


def test_hook_matcher_validation() -> None:
    with pytest.raises(TypeError):
        HookMatcher("Bash", ["not callable"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="timeout"):
        HookMatcher("Bash", [noop], timeout=0)
    with pytest.raises(ValueError, match="where"):
        HookMatcher("Bash", [noop], where="nowhere")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="matcher"):
        HookMatcher(3, [noop])  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match="unknown hook event"):
        Options(hooks={"PreToolUsed": [HookMatcher("Bash", [noop])]})


# -- hook outputs ---------------------------------------------------------------------


def test_pre_tool_use_shapes() -> None:
    assert allow("fine", updated_input={"command": "ls"}).to_wire("PreToolUse") == {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "allow",
            "permissionDecisionReason": "fine",
            "updatedInput": {"command": "ls"},
        }
    }
    assert deny("no").to_wire("PreToolUse")["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert ask("sure?").to_wire("PreToolUse") == {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "ask",
            "permissionDecisionReason": "sure?",
        }
    }
    # block on PreToolUse is a deny through the current field.
    assert block("stop").to_wire("PreToolUse") == deny("stop").to_wire("PreToolUse")
    with_ctx = deny("no", additional_context="see policy", system_message="blocked rm")
    assert with_ctx.to_wire("PreToolUse") == {
        "systemMessage": "blocked rm",
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": "no",
            "additionalContext": "see policy",
        },
    }


def test_permission_request_shapes() -> None:
    rules = [{"type": "addRules", "rules": [{"toolName": "Bash"}], "behavior": "allow"}]
    assert allow(updated_input={"a": 1}, updated_permissions=rules).to_wire(
        "PermissionRequest"
    ) == {
        "hookSpecificOutput": {
            "hookEventName": "PermissionRequest",
            "decision": {
                "behavior": "allow",
                "updatedInput": {"a": 1},
                "updatedPermissions": rules,
            },
        }
    }
    assert deny("no", interrupt=True).to_wire("PermissionRequest") == {
        "hookSpecificOutput": {
            "hookEventName": "PermissionRequest",
            "decision": {"behavior": "deny", "message": "no", "interrupt": True},
        }
    }
    with pytest.raises(HookOutputError, match="PreToolUse hooks only"):
        ask().to_wire("PermissionRequest")


def test_block_halt_and_context_shapes() -> None:
    assert block("again").to_wire("Stop") == {"decision": "block", "reason": "again"}
    assert block("bad prompt").to_wire("UserPromptSubmit") == {
        "decision": "block",
        "reason": "bad prompt",
    }
    assert block("look", additional_context="ctx").to_wire("PostToolUse") == {
        "decision": "block",
        "reason": "look",
        "hookSpecificOutput": {"hookEventName": "PostToolUse", "additionalContext": "ctx"},
    }
    assert halt("done").to_wire("PostToolUse") == {"continue": False, "stopReason": "done"}
    assert halt().to_wire("Stop") == {"continue": False}
    assert ok().to_wire("Notification") == {}
    assert ok(additional_context="hi", suppress_output=True).to_wire("SessionStart") == {
        "suppressOutput": True,
        "hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": "hi"},
    }
    with pytest.raises(HookOutputError, match="additional_context"):
        ok(additional_context="x").to_wire("Stop")


@pytest.mark.parametrize("event", ["Stop", "PostToolUse", "UserPromptSubmit", "SessionStart"])
def test_permission_actions_rejected_outside_permission_events(event: str) -> None:
    for response in (allow(), deny("x"), ask("y")):
        with pytest.raises(HookOutputError, match=event):
            response.to_wire(event)


@given(
    action=st.sampled_from(["ok", "allow", "deny", "ask", "block", "halt"]),
    event=st.sampled_from(HOOK_EVENTS),
    reason=st.none() | st.text(max_size=20),
    context=st.none() | st.text(max_size=20),
)
def test_every_wire_output_names_its_event(
    action: Any, event: str, reason: str | None, context: str | None
) -> None:
    """Whatever is produced carries the event it runs for (the CLI rejects a mismatch)."""
    response = HookResponse(action, reason, additional_context=context)
    try:
        wire = response.to_wire(event)
    except HookOutputError:
        assert action in ("allow", "deny", "ask") or context is not None
        return
    specific = wire.get("hookSpecificOutput")
    if specific is not None:
        assert specific["hookEventName"] == event
        assert len(specific) > 1
    if context is not None:
        assert event in ADDITIONAL_CONTEXT_EVENTS and specific is not None
        assert specific["additionalContext"] == context
    if action == "halt":
        assert wire["continue"] is False
    assert set(wire) <= {"continue", "stopReason", "decision", "reason", "hookSpecificOutput"}


def test_hook_output_coercion() -> None:
    assert hook_output(None, "Stop") == {}
    assert hook_output(block("x"), "Stop") == {"decision": "block", "reason": "x"}
    raw = {"continue_": False, "async_": True, "stopReason": "s"}
    assert hook_output(raw, "Stop") == {"continue": False, "async": True, "stopReason": "s"}
    with pytest.raises(HookOutputError, match="returned int"):
        hook_output(3, "Stop")
    with pytest.raises(HookOutputError, match="JSON"):
        hook_output({"x": object()}, "Stop")
    with pytest.raises(HookOutputError, match="keys"):
        hook_output({1: "x"}, "Stop")


# -- can_use_tool results ------------------------------------------------------------------


def test_allow_deny_wire() -> None:
    class Update:
        def to_dict(self) -> dict[str, Any]:
            return {"type": "setMode", "mode": "acceptEdits", "destination": "session"}

    assert Allow().to_wire({"a": 1}) == {"behavior": "allow", "updatedInput": {"a": 1}}
    assert Allow({"a": 2}, [Update()]).to_wire({"a": 1}) == {
        "behavior": "allow",
        "updatedInput": {"a": 2},
        "updatedPermissions": [
            {"type": "setMode", "mode": "acceptEdits", "destination": "session"}
        ],
    }
    assert Deny().to_wire() == {"behavior": "deny", "message": "", "interrupt": False}
    assert permission_result({"behavior": "allow"}, {"a": 1}) == {
        "behavior": "allow",
        "updatedInput": {"a": 1},
    }
    assert permission_result({"behavior": "deny"}, {})["message"] == ""
    with pytest.raises(HookOutputError):
        permission_result("yes", {})
    with pytest.raises(HookOutputError):
        permission_result({"behavior": "maybe"}, {})


def test_permission_context_from_request_ignores_bad_fields() -> None:
    ctx = PermissionContext.from_request(
        {"tool_use_id": 5, "permission_suggestions": ["junk", {"type": "x"}], "title": "T"}
    )
    assert ctx.tool_use_id is None and ctx.suggestions == [{"type": "x"}] and ctx.title == "T"
    assert PermissionContext.from_request({"permission_suggestions": "nope"}).suggestions == []


async def test_abort_signal(autojump_clock: Any) -> None:
    signal = AbortSignal()
    assert not signal.aborted and signal.reason is None
    signal.set_deadline(trio.current_time() + 3, "timed out after 3s")
    with trio.move_on_after(1):
        await signal.wait()
    assert not signal.aborted
    await signal.wait()
    assert signal.aborted and signal.reason == "timed out after 3s"
    signal.abort("later")
    assert signal.reason == "timed out after 3s"  # the first reason wins
    other = AbortSignal()
    other.abort("cancelled")
    other.abort("again")
    await other.wait()
    assert other.reason == "cancelled"


# -- the shapes on the real CLI ----------------------------------------------------------------


async def test_real_cli_post_tool_use_block_and_context_reach_the_model() -> None:
    def after(hook_input: dict[str, Any], tool_use_id: str | None) -> Any:
        return block("output looked odd", additional_context="CTX-after-bash")

    options = Options(hooks={"PostToolUse": [HookMatcher("Bash", [after])]}, allowed_tools=["Bash"])
    async with FakeAnthropic.serve(seed=21) as fake:
        fake.script(ToolUse("Bash", {"command": "echo hello"}), Text("noted"))
        async with callback_cli(fake, options) as cli:
            result = await cli.turn("run it")
    assert result.result == "noted"
    follow_up = fake.messages_requests[1]
    assert b"output looked odd" in follow_up.body and b"CTX-after-bash" in follow_up.body
    results = [  # the tool itself ran (PostToolUse cannot undo it)
        block
        for message in follow_up.messages
        if isinstance(message, dict) and isinstance(message.get("content"), list)
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]
    assert [(r["content"], r.get("is_error")) for r in results] == [("hello", False)]


async def test_real_cli_user_prompt_submit_block_and_context() -> None:
    def gate(hook_input: dict[str, Any], tool_use_id: str | None) -> Any:
        if "XYZZY" in hook_input["prompt"]:
            return block("no magic words")
        return ok(additional_context="CTX-from-prompt-hook")

    options = Options(hooks={"UserPromptSubmit": [gate]})
    async with FakeAnthropic.serve(seed=22) as fake:
        fake.script(Text("answered"))
        async with callback_cli(fake, options) as cli:
            blocked = await cli.turn("say XYZZY")
            answered = await cli.turn("tell me the time")
    assert "no magic words" in (blocked.result or "")
    [request] = fake.messages_requests  # the blocked prompt never reached the model
    assert request.last_user_text == "tell me the time" and b"XYZZY" not in request.body
    assert b"CTX-from-prompt-hook" in request.body
    assert answered.result == "answered"


async def test_real_cli_stop_block_keeps_going_and_halt_stops(tmp_path: Path) -> None:
    stops: list[bool] = []

    def not_yet(hook_input: dict[str, Any], tool_use_id: str | None) -> Any:
        stops.append(bool(hook_input.get("stop_hook_active")))
        return None if hook_input.get("stop_hook_active") else block("one more thing")

    marker = tmp_path / "marker"

    def stop_now(hook_input: dict[str, Any], tool_use_id: str | None) -> Any:
        return halt("enough tools")

    options = Options(
        hooks={"Stop": [not_yet], "PostToolUse": [HookMatcher("Bash", [stop_now])]},
        allowed_tools=["Bash"],
    )
    async with FakeAnthropic.serve(seed=23) as fake:
        fake.script(Text("first"), Text("second"))
        async with callback_cli(fake, options) as cli:
            kept = await cli.turn("go")
            fake.script(ToolUse("Bash", {"command": f"touch {marker}"}), Text("unreachable"))
            halted = await cli.turn("use a tool")
    assert stops == [False, True] and kept.result == "second"
    assert b"one more thing" in fake.messages_requests[1].body
    assert marker.exists()  # PostToolUse runs after the tool
    assert len(fake.messages_requests) == 3  # halted: no request after the tool result
    assert halted.subtype == "success" and "unreachable" not in (halted.result or "")


async def test_real_cli_ask_routes_to_can_use_tool_with_the_reason(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    asked: list[PermissionContext] = []

    def hook(hook_input: dict[str, Any], tool_use_id: str | None) -> Any:
        return ask("a human should look")

    def decide(name: str, tool_input: dict[str, Any], ctx: PermissionContext) -> Allow:
        asked.append(ctx)
        return Allow()

    options = Options(
        hooks={"PreToolUse": [HookMatcher("Bash", [hook])]},
        allowed_tools=["Bash"],
        can_use_tool=decide,
    )
    async with FakeAnthropic.serve(seed=24) as fake:
        fake.script(ToolUse("Bash", {"command": f"touch {marker}"}), Text("ok"))
        async with callback_cli(fake, options) as cli:
            await cli.turn("make a file")
    assert marker.exists()
    [ctx] = asked
    assert "a human should look" in str(ctx.decision_reason)


async def test_real_cli_pre_tool_use_allow_with_updated_input(tmp_path: Path) -> None:
    asked, ran = tmp_path / "asked", tmp_path / "ran"

    def rewrite(hook_input: dict[str, Any], tool_use_id: str | None) -> Any:
        return allow("rewritten", updated_input={"command": f"touch {ran}"})

    options = Options(
        hooks={"PreToolUse": [HookMatcher("Bash", [rewrite])]}, allowed_tools=["Bash"]
    )
    async with FakeAnthropic.serve(seed=25) as fake:
        fake.script(ToolUse("Bash", {"command": f"touch {asked}"}), Text("ok"))
        async with callback_cli(fake, options) as cli:
            await cli.turn("make a file")
    assert ran.exists() and not asked.exists()
