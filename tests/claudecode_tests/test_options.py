"""Options: validation, CLI flag mapping option by option, env, initialize, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import attrs
import pytest
from _proto_driver import cli_path, open_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from claudecode._messages import ResultMessage, SystemMessage
from claudecode._options import (
    BASE_ARGS,
    HOOK_EVENTS,
    PERMISSION_MODES,
    HookCallbackSpec,
    Options,
    build_hooks_config,
    initialize_payload,
    is_sdk_mcp_server,
    normalize_permission_mode,
    sdk_mcp_servers,
    to_cli_args,
    to_cli_env,
)
from claudecode._protocol import DEFAULT_MAX_BUFFER_SIZE
from claudecode._protocol_errors import (
    InvalidOptionError,
    InvalidOptionTypeError,
    OptionError,
    UnknownOptionError,
)
from claudecode.testing import FakeAnthropic, Text

UUID = "0b9c1f1e-6a57-4a1e-9a3c-0f3a3c1b2d4e"


class SdkServer:
    """Stands in for an in-process MCP server object (duck-typed marker + name)."""

    __claudecode_sdk_mcp_server__ = True

    def __init__(self, name: str) -> None:
        self.name = name


def hook_fn(*args: Any) -> None:  # pragma: no cover - never called
    pass


def flags(**kwargs: Any) -> list[str]:
    """The option-dependent part of the argv (without the default --setting-sources=)."""
    args = to_cli_args(Options.from_kwargs(**kwargs))
    assert tuple(args[:5]) == BASE_ARGS
    rest = args[5:]
    if "setting_sources" not in kwargs and "--setting-sources=" in rest:
        rest.remove("--setting-sources=")
    return rest


SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}}

FLAG_CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({}, []),
    ({"model": "opus"}, ["--model=opus"]),
    ({"fallback_model": "sonnet"}, ["--fallback-model=sonnet"]),
    ({"fallback_model": ["sonnet", "haiku"]}, ["--fallback-model=sonnet,haiku"]),
    ({"system_prompt": "-be terse"}, ["--system-prompt=-be terse"]),
    ({"system_prompt": ""}, ["--system-prompt="]),
    ({"append_system_prompt": "also"}, ["--append-system-prompt=also"]),
    ({"agent": "reviewer"}, ["--agent=reviewer"]),
    ({"thinking": "adaptive"}, ["--thinking=adaptive"]),
    ({"thinking": "disabled"}, ["--thinking=disabled"]),
    ({"thinking": {"type": "enabled", "budget_tokens": 5000}}, ["--max-thinking-tokens=5000"]),
    ({"thinking": ("enabled", 64)}, ["--max-thinking-tokens=64"]),
    ({"thinking": {"type": "adaptive"}, "max_thinking_tokens": 9}, ["--thinking=adaptive"]),
    ({"max_thinking_tokens": 100}, ["--max-thinking-tokens=100"]),
    ({"effort": "xhigh"}, ["--effort=xhigh"]),
    ({"betas": ["a", "b"]}, ["--betas=a", "--betas=b"]),
    ({"betas": []}, []),
    ({"max_turns": 3}, ["--max-turns=3"]),
    ({"max_budget_usd": 0.25}, ["--max-budget-usd=0.25"]),
    ({"max_budget_usd": 2}, ["--max-budget-usd=2.0"]),
    ({"tools": "default"}, ["--tools=default"]),
    ({"tools": []}, ["--tools="]),
    ({"tools": ["Read", "Edit"]}, ["--tools=Read,Edit"]),
    ({"allowed_tools": ["Read", "Bash(git log:*)"]}, ["--allowedTools=Read,Bash(git log:*)"]),
    ({"allowed_tools": []}, []),
    ({"disallowed_tools": ("Write",)}, ["--disallowedTools=Write"]),
    ({"add_dir": ["/a", Path("/b c")]}, ["--add-dir=/a", "--add-dir=/b c"]),
    ({"permission_mode": "accept_edits"}, ["--permission-mode=acceptEdits"]),
    ({"permission_mode": "dontAsk"}, ["--permission-mode=dontAsk"]),
    ({"permission_mode": "bypass_permissions"}, ["--permission-mode=bypassPermissions"]),
    ({"permission_prompt_tool": "mcp__p__ask"}, ["--permission-prompt-tool=mcp__p__ask"]),
    ({"can_use_tool": hook_fn}, ["--permission-prompt-tool=stdio"]),
    ({"allow_dangerously_skip_permissions": True}, ["--allow-dangerously-skip-permissions"]),
    ({"dangerously_skip_permissions": True}, ["--dangerously-skip-permissions"]),
    (
        {"sandbox": {"enabled": True, "filesystem": {"allow_write": ["/tmp"]}}},
        ['--settings={"sandbox": {"enabled": true, "filesystem": {"allowWrite": ["/tmp"]}}}'],
    ),
    ({"settings": {"a": 1}}, ['--settings={"a": 1}']),
    ({"settings": "/etc/claude.json"}, ["--settings=/etc/claude.json"]),
    ({"settings": Path("/s.json")}, ["--settings=/s.json"]),
    (
        {"settings": '{"a": 1}', "sandbox": {"enabled": False}},
        ['--settings={"a": 1, "sandbox": {"enabled": false}}'],
    ),
    ({"mcp_config": "/m.json"}, ["--mcp-config=/m.json"]),
    (
        {"mcp_servers": {"calc": SdkServer("whatever"), "web": {"type": "http", "url": "u"}}},
        [
            '--mcp-config={"mcpServers":{"calc":{"type":"sdk","name":"calc"},'
            '"web":{"type":"http","url":"u"}}}'
        ],
    ),
    ({"strict_mcp_config": True}, ["--strict-mcp-config"]),
    ({"resume": "-odd-id"}, ["--resume=-odd-id"]),
    (
        {"resume": UUID, "resume_session_at": "u-1", "fork_session": True},
        [f"--resume={UUID}", "--resume-session-at=u-1", "--fork-session"],
    ),
    ({"continue": True}, ["--continue"]),
    ({"continue_": True, "fork_session": True}, ["--continue", "--fork-session"]),
    ({"from_pr": 12}, ["--from-pr=12"]),
    ({"no_session_persistence": True}, ["--no-session-persistence"]),
    ({"session_id": UUID}, [f"--session-id={UUID}"]),
    ({"worktree": True}, ["--worktree"]),
    ({"worktree": "feature-x"}, ["--worktree=feature-x"]),
    ({"worktree": False}, []),
    (
        {"output_format": {"type": "json_schema", "schema": SCHEMA}},
        [f"--json-schema={json.dumps(SCHEMA, separators=(',', ':'))}"],
    ),
    ({"output_format": SCHEMA}, [f"--json-schema={json.dumps(SCHEMA, separators=(',', ':'))}"]),
    ({"include_partial_messages": True}, ["--include-partial-messages"]),
    ({"include_hook_events": True}, ["--include-hook-events"]),
    ({"replay_user_messages": True}, ["--replay-user-messages"]),
    ({"setting_sources": ["user", "project"]}, ["--setting-sources=user,project"]),
    ({"setting_sources": []}, ["--setting-sources="]),
    ({"plugins": ["/p", {"type": "local", "path": "/q"}]}, ["--plugin-dir=/p", "--plugin-dir=/q"]),
    ({"disable_slash_commands": True}, ["--disable-slash-commands"]),
    ({"file": ["file_1:a.txt"]}, ["--file=file_1:a.txt"]),
    (
        {"extra_args": {"new-flag": None, "--other": "v", "neg": "-5", "on": True, "off": False}},
        ["--new-flag", "--other=v", "--neg=-5", "--on"],
    ),
    ({"debug": True}, ["--debug"]),
    ({"debug": "api,hooks"}, ["--debug=api,hooks"]),
    ({"debug": False}, []),
    ({"debug_file": "/tmp/d.log"}, ["--debug-file=/tmp/d.log"]),
    # SDK-side options: no flag at all.
    ({"name": "assistant"}, []),
    ({"adapter": object()}, []),
    ({"api_key": "sk-secret"}, []),
    ({"cli_path": "/usr/bin/claude"}, []),
    ({"timeout": 30}, []),
    ({"control_timeout": 5}, []),
    ({"cli_idle_timeout": 30}, []),
    ({"cli_budget": "budget"}, []),
    ({"max_buffer_size": 4096}, []),
    ({"env": {"A": "1"}}, []),
    ({"inherit_env": ["PATH"]}, []),
    ({"hooks": {"Stop": [hook_fn]}}, []),
    ({"cwd": "/tmp"}, []),
    ({"enable_file_checkpointing": True}, []),
    ({"agents": {"r": {"description": "d", "prompt": "p"}}}, []),
    ({"tool_config": {"askUserQuestion": {"previewFormat": "html"}}}, []),
    ({"prompt_suggestions": True}, []),
    # claude-agent-sdk parity
    ({"system_prompt": {"type": "file", "path": "/p/prompt.md"}},
     ["--system-prompt-file=/p/prompt.md"]),
    ({"system_prompt": {"type": "preset", "preset": "claude_code"}}, []),
    ({"system_prompt": {"type": "preset", "preset": "claude_code", "append": "-x"}},
     ["--append-system-prompt=-x"]),
    ({"thinking": {"type": "enabled", "budget_tokens": 8, "display": "omitted"}},
     ["--max-thinking-tokens=8", "--thinking-display=omitted"]),
    ({"task_budget": 20000}, ["--task-budget=20000"]),
    ({"task_budget": {"total": 7}}, ["--task-budget=7"]),
    ({"skills": "all"}, ["--allowedTools=Skill", "--setting-sources=user,project"]),
    ({"skills": ["greeter", "pdf:fill"], "allowed_tools": ["Read", "Skill(greeter)"]},
     ["--allowedTools=Read,Skill(greeter),Skill(pdf:fill)", "--setting-sources=user,project"]),
    ({"skills": [], "setting_sources": ["project"]}, ["--setting-sources=project"]),
    ({"resume": UUID, "resume_session_at": "u-1", "resume_drops_turn": "u-2"},
     [f"--resume={UUID}", "--resume-session-at=u-1", "--resume-drops-turn=u-2"]),
    ({"tools": {"type": "preset", "preset": "claude_code"}}, ["--tools=default"]),
    ({"add_dirs": ["/d"]}, ["--add-dir=/d"]),
    ({"permission_prompt_tool_name": "mcp__p__ask"}, ["--permission-prompt-tool=mcp__p__ask"]),
    ({"forward_subagent_text": True}, []),
    ({"user": "nobody"}, []),
    ({"stderr": print}, []),
    ({"debug_stderr": sys.stderr}, []),
]


@pytest.mark.parametrize(("kwargs", "expected"), FLAG_CASES)
def test_flag_mapping(kwargs: dict[str, Any], expected: list[str]) -> None:
    assert flags(**kwargs) == expected


def test_every_option_has_a_flag_case() -> None:
    covered = {name for kwargs, _ in FLAG_CASES for name in kwargs}
    aliases = {"continue": "continue_conversation", "continue_": "continue_conversation",
               "add_dirs": "add_dir", "permission_prompt_tool_name": "permission_prompt_tool"}
    covered = {aliases.get(n, n) for n in covered}
    assert covered == set(Options.field_names())


def test_values_are_never_separate_argv_tokens() -> None:
    """Every valued flag is one ``--flag=value`` token, so no value can become a flag."""
    options = Options(
        model="-m",
        system_prompt="--dangerously-skip-permissions",
        resume="--x",
        allowed_tools=["-a"],
        add_dir=["-d"],
        extra_args={"k": "--v"},
    )
    args = to_cli_args(options)
    assert "--dangerously-skip-permissions" not in args
    for token in args[5:]:
        assert token.startswith("--")
    assert "--system-prompt=--dangerously-skip-permissions" in args


# -- validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "option"),
    [
        ({"model": 3}, InvalidOptionTypeError, "model"),
        ({"api_key": b"k"}, InvalidOptionTypeError, "api_key"),
        ({"allowed_tools": "Read"}, InvalidOptionTypeError, "allowed_tools"),
        ({"allowed_tools": ["Read", 1]}, InvalidOptionTypeError, "allowed_tools"),
        ({"disallowed_tools": 5}, InvalidOptionTypeError, "disallowed_tools"),
        ({"betas": "x"}, InvalidOptionTypeError, "betas"),
        ({"tools": "Read"}, InvalidOptionError, "tools"),
        ({"permission_mode": "delegate"}, InvalidOptionError, "permission_mode"),
        ({"permission_mode": "yolo"}, InvalidOptionError, "permission_mode"),
        ({"permission_mode": 1}, InvalidOptionTypeError, "permission_mode"),
        ({"max_turns": 0}, InvalidOptionError, "max_turns"),
        ({"max_turns": 1.5}, InvalidOptionTypeError, "max_turns"),
        ({"max_turns": True}, InvalidOptionTypeError, "max_turns"),
        ({"max_budget_usd": 0}, InvalidOptionError, "max_budget_usd"),
        ({"max_budget_usd": float("nan")}, InvalidOptionError, "max_budget_usd"),
        ({"max_budget_usd": "1"}, InvalidOptionTypeError, "max_budget_usd"),
        ({"timeout": -1}, InvalidOptionError, "timeout"),
        ({"timeout": "soon"}, InvalidOptionTypeError, "timeout"),
        ({"control_timeout": None}, InvalidOptionTypeError, "control_timeout"),
        ({"control_timeout": 0}, InvalidOptionError, "control_timeout"),
        ({"max_buffer_size": 10}, InvalidOptionError, "max_buffer_size"),
        ({"max_buffer_size": 1e9}, InvalidOptionTypeError, "max_buffer_size"),
        ({"effort": "extreme"}, InvalidOptionError, "effort"),
        ({"thinking": "on"}, InvalidOptionError, "thinking"),
        ({"thinking": {"type": "enabled", "budget_tokens": 0}}, InvalidOptionError, "thinking"),
        ({"session_id": "not-a-uuid"}, InvalidOptionError, "session_id"),
        ({"setting_sources": ["global"]}, InvalidOptionError, "setting_sources"),
        ({"env": {"A": 1}}, InvalidOptionTypeError, "env"),
        ({"env": {"A=B": "x"}}, InvalidOptionError, "env"),
        ({"env": ["A"]}, InvalidOptionTypeError, "env"),
        ({"inherit_env": "PATH"}, InvalidOptionError, "inherit_env"),
        ({"inherit_env": [("suffix", "X")]}, InvalidOptionError, "inherit_env"),
        ({"extra_args": {"bad flag": "x"}}, InvalidOptionError, "extra_args"),
        ({"extra_args": {"f": ["x"]}}, InvalidOptionTypeError, "extra_args"),
        ({"mcp_servers": {"x": object()}}, InvalidOptionTypeError, "mcp_servers"),
        ({"mcp_servers": {"x": {"cmd": object()}}}, InvalidOptionTypeError, "mcp_servers"),
        ({"mcp_servers": ["x"]}, InvalidOptionTypeError, "mcp_servers"),
        ({"agents": {"r": {"prompt": "p"}}}, InvalidOptionError, "agents"),
        ({"agents": {"r": "p"}}, InvalidOptionTypeError, "agents"),
        ({"hooks": {"PreToolUSe": [hook_fn]}}, InvalidOptionError, "hooks"),
        ({"hooks": {"Stop": [42]}}, InvalidOptionTypeError, "hooks"),
        ({"hooks": {"Stop": [{"hooks": [1]}]}}, InvalidOptionTypeError, "hooks"),
        ({"hooks": {"Stop": [{"hooks": [hook_fn], "where": "mars"}]}}, InvalidOptionError, "hooks"),
        ({"hooks": {"Stop": [{"hooks": [hook_fn], "timeout": -1}]}}, InvalidOptionError, "hooks"),
        ({"hooks": {"Stop": [{"matcher": 1, "hooks": []}]}}, InvalidOptionTypeError, "hooks"),
        ({"hooks": [hook_fn]}, InvalidOptionTypeError, "hooks"),
        ({"can_use_tool": "allow"}, InvalidOptionTypeError, "can_use_tool"),
        (
            {"can_use_tool": hook_fn, "permission_prompt_tool": "x"},
            InvalidOptionError,
            "can_use_tool",
        ),
        ({"resume": UUID, "continue": True}, InvalidOptionError, "continue_conversation"),
        ({"fork_session": True}, InvalidOptionError, "fork_session"),
        ({"resume_session_at": "u"}, InvalidOptionError, "resume_session_at"),
        ({"session_id": UUID, "resume": UUID}, InvalidOptionError, "session_id"),
        ({"sandbox": {"enabled": True}, "settings": "/file.json"}, InvalidOptionError, "sandbox"),
        ({"output_format": {"type": "json_schema"}}, InvalidOptionError, "output_format"),
        ({"output_format": "json"}, InvalidOptionTypeError, "output_format"),
        ({"plugins": [{"type": "remote", "url": "u"}]}, InvalidOptionError, "plugins"),
        ({"plugins": "/p"}, InvalidOptionTypeError, "plugins"),
        ({"debug": 1}, InvalidOptionTypeError, "debug"),
        ({"worktree": 1}, InvalidOptionTypeError, "worktree"),
        ({"from_pr": 1.5}, InvalidOptionTypeError, "from_pr"),
        ({"fork_session": "yes"}, InvalidOptionTypeError, "fork_session"),
        ({"cwd": 5}, InvalidOptionTypeError, "cwd"),
        ({"tool_config": {1: {}}}, InvalidOptionTypeError, "tool_config"),
        ({"system_prompt": {"type": "preset", "preset": "other"}}, InvalidOptionError,
         "system_prompt"),
        ({"system_prompt": {"type": "file"}}, InvalidOptionError, "system_prompt"),
        ({"system_prompt": {"type": "preset", "preset": "claude_code", "x": 1}},
         InvalidOptionError, "system_prompt"),
        ({"system_prompt": {"type": "preset", "preset": "claude_code", "append": 3}},
         InvalidOptionTypeError, "system_prompt"),
        ({"system_prompt": 3}, InvalidOptionTypeError, "system_prompt"),
        ({"system_prompt": {"type": "preset", "preset": "claude_code", "append": "a"},
          "append_system_prompt": "b"}, InvalidOptionError, "append_system_prompt"),
        ({"skills": "greeter"}, InvalidOptionError, "skills"),
        ({"skills": ["a,b"]}, InvalidOptionError, "skills"),
        ({"skills": ["*"]}, InvalidOptionError, "skills"),
        ({"skills": [" a"]}, InvalidOptionError, "skills"),
        ({"skills": ["/cmd"]}, InvalidOptionError, "skills"),
        ({"skills": [3]}, InvalidOptionTypeError, "skills"),
        ({"task_budget": 0}, InvalidOptionError, "task_budget"),
        ({"task_budget": {"tot": 1}}, InvalidOptionError, "task_budget"),
        ({"task_budget": "1"}, InvalidOptionTypeError, "task_budget"),
        ({"resume": UUID, "resume_drops_turn": "u"}, InvalidOptionError, "resume_drops_turn"),
        ({"thinking": {"type": "adaptive", "display": "loud"}}, InvalidOptionError, "thinking"),
        ({"tools": {"type": "preset", "preset": "x"}}, InvalidOptionError, "tools"),
        ({"user": ""}, InvalidOptionTypeError, "user"),
        ({"user": -1}, InvalidOptionTypeError, "user"),
        ({"stderr": "log.txt"}, InvalidOptionTypeError, "stderr"),
        ({"debug_stderr": "log.txt"}, InvalidOptionTypeError, "debug_stderr"),
        ({"forward_subagent_text": 1}, InvalidOptionTypeError, "forward_subagent_text"),
    ],
)
def test_invalid_options_name_the_option(
    kwargs: dict[str, Any], error: type[OptionError], option: str
) -> None:
    with pytest.raises(error) as info:
        Options.from_kwargs(**kwargs)
    assert info.value.option == option
    assert repr(option) in str(info.value)
    # The built-in families are preserved for callers that catch those.
    builtin = TypeError if issubclass(error, InvalidOptionTypeError) else ValueError
    assert isinstance(info.value, builtin)


def test_unknown_option_suggests() -> None:
    with pytest.raises(UnknownOptionError) as info:
        Options.from_kwargs(allowed_tool=["Read"])
    assert info.value.option == "allowed_tool"
    assert info.value.suggestions[0] == "allowed_tools"
    assert "did you mean 'allowed_tools'" in str(info.value)
    assert isinstance(info.value, TypeError)
    with pytest.raises(UnknownOptionError) as info2:
        Options.from_kwargs(zzzz=1)
    assert info2.value.suggestions == ()
    with pytest.raises(UnknownOptionError):
        Options().merge(modle="x")


def test_permission_modes_normalise() -> None:
    for given_value, cli_value in PERMISSION_MODES.items():
        assert Options(permission_mode=given_value).permission_mode == cli_value
        assert normalize_permission_mode(given_value) == cli_value
    assert set(PERMISSION_MODES.values()) == {
        "default",
        "acceptEdits",
        "auto",
        "bypassPermissions",
        "manual",
        "dontAsk",
        "plan",
    }


def test_defaults_and_normalised_storage() -> None:
    options = Options.from_kwargs(allowed_tools=["a"], env={"X": False, "Y": None, "Z": "1"})
    assert options.allowed_tools == ("a",)
    assert options.env == {"X": None, "Y": None, "Z": "1"}
    assert options.max_buffer_size == DEFAULT_MAX_BUFFER_SIZE
    assert options.control_timeout == 60.0 and options.timeout is None
    assert options.inherit_env == "all" and options.permission_mode is None
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        options.model = "x"  # type: ignore[misc]


def test_merge_validates() -> None:
    base = Options(model="a")
    assert base.merge(model="b").model == "b"
    assert base.merge(**{"continue": True}).continue_conversation
    with pytest.raises(InvalidOptionError):
        base.merge(max_turns=-3)


def _no_nul(size: int) -> st.SearchStrategy[str]:
    # NUL cannot appear in an environment value or an argv entry (rejected by design).
    return st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=size)


option_values = st.fixed_dictionaries(
    {},
    optional={
        "model": st.text(max_size=10),
        "allowed_tools": st.lists(st.text(max_size=5), max_size=3),
        "permission_mode": st.sampled_from(sorted(PERMISSION_MODES)),
        "thinking": st.sampled_from(["adaptive", "disabled", ("enabled", 10)]),
        "env": st.dictionaries(
            st.from_regex(r"[A-Z]{1,5}", fullmatch=True), _no_nul(3) | st.none()
        ),
        "extra_args": st.dictionaries(
            st.from_regex(r"[a-z]{1,6}", fullmatch=True), _no_nul(4) | st.none()
        ),
        "output_format": st.just({"type": "json_schema", "schema": {"type": "object"}}),
        "mcp_servers": st.just({"s": SdkServer("s"), "t": {"command": "x"}}),
        "hooks": st.just({"Stop": [hook_fn], "PreToolUse": [{"matcher": "B", "hooks": [hook_fn]}]}),
        "inherit_env": st.lists(st.text(max_size=3) | st.tuples(st.just("prefix"), st.text())),
        "max_budget_usd": st.floats(0.01, 100),
        "plugins": st.lists(st.text(min_size=1, max_size=4), max_size=2),
    },
)


@settings(max_examples=200, deadline=None)
@given(option_values)
def test_conversion_is_idempotent(kwargs: dict[str, Any]) -> None:
    options = Options.from_kwargs(**kwargs)
    again = attrs.evolve(options)
    assert again == options
    assert to_cli_args(again) == to_cli_args(options)


# -- environment ---------------------------------------------------------------------


def test_cli_env() -> None:
    base = {"PATH": "/bin", "HOME": "/h", "CLAUDECODE": "1", "SECRET": "s", "CLAUDE_X": "x"}
    env = to_cli_env(Options(), base)
    assert env["PATH"] == "/bin" and env["SECRET"] == "s" and "CLAUDECODE" not in env
    assert env["CLAUDE_CODE_ENTRYPOINT"] == "sdk-py" and env["CLAUDE_AGENT_SDK_VERSION"]

    env = to_cli_env(
        Options(
            inherit_env=["PATH", ("prefix", "CLAUDE")],
            env={"EXTRA": "e", "CLAUDE_X": None, "CLAUDE_CODE_ENTRYPOINT": "mine"},
            api_key="sk-1",
            enable_file_checkpointing=True,
            cwd="/work/dir",
        ),
        base,
    )
    assert env == {
        "PATH": "/bin",
        "CLAUDECODE": "1",  # an explicit list keeps whatever it matches
        "CLAUDE_CODE_ENTRYPOINT": "mine",
        "CLAUDE_AGENT_SDK_VERSION": env["CLAUDE_AGENT_SDK_VERSION"],
        "EXTRA": "e",
        "ANTHROPIC_API_KEY": "sk-1",
        "CLAUDE_CODE_ENABLE_SDK_FILE_CHECKPOINTING": "true",
        "PWD": "/work/dir",
    }
    assert to_cli_env(Options(inherit_env=[]), base).keys() == {
        "CLAUDE_CODE_ENTRYPOINT",
        "CLAUDE_AGENT_SDK_VERSION",
    }
    assert "ANTHROPIC_API_KEY" not in to_cli_args(Options(api_key="sk-secret"))
    assert not any("sk-secret" in a for a in to_cli_args(Options(api_key="sk-secret")))
    assert "sk-secret" not in repr(Options(api_key="sk-secret"))
    assert to_cli_env(Options(), None)["PATH"] == os.environ["PATH"]


# -- hooks / initialize ------------------------------------------------------------------


class Matcher:
    """Attribute-style matcher (like the later claudecode.HookMatcher)."""

    def __init__(self, matcher: str | None, hooks: list[Any], where: str = "local") -> None:
        self.matcher = matcher
        self.hooks = hooks
        self.timeout = 7
        self.where = where


def test_build_hooks_config() -> None:
    def a() -> None: ...  # pragma: no cover
    def b() -> None: ...  # pragma: no cover
    def c() -> None: ...  # pragma: no cover

    options = Options(
        hooks={
            "PreToolUse": [Matcher("Bash", [a, b], where="remote"), c],
            "Stop": [{"hooks": [c], "timeout": 2.5}],
            "SessionEnd": [],
        }
    )
    config, specs = build_hooks_config(options.hooks)
    assert config == {
        "PreToolUse": [
            {"matcher": "Bash", "hookCallbackIds": ["hook_0", "hook_1"], "timeout": 7.0},
            {"matcher": None, "hookCallbackIds": ["hook_2"]},
        ],
        "Stop": [{"matcher": None, "hookCallbackIds": ["hook_3"], "timeout": 2.5}],
    }
    assert specs == [
        HookCallbackSpec("hook_0", "PreToolUse", "Bash", a, 7.0, "remote"),
        HookCallbackSpec("hook_1", "PreToolUse", "Bash", b, 7.0, "remote"),
        HookCallbackSpec("hook_2", "PreToolUse", None, c, None, "local"),
        HookCallbackSpec("hook_3", "Stop", None, c, 2.5, "local"),
    ]
    assert build_hooks_config(None) == (None, [])
    assert set(HOOK_EVENTS) >= {"PreToolUse", "PostToolUse", "Stop", "SubagentStop"}


def test_initialize_payload() -> None:
    server = SdkServer("calc")
    assert is_sdk_mcp_server(server) and not is_sdk_mcp_server({"type": "sdk"})
    options = Options(
        agents={"r": {"description": "d", "prompt": "p", "tools": ["Read"]}},
        mcp_servers={"calc": server, "web": {"type": "http", "url": "u"}},
        prompt_suggestions=True,
        tool_config={"askUserQuestion": {"previewFormat": "html"}},
    )
    assert sdk_mcp_servers(options) == {"calc": server}
    config = {"Stop": [{"matcher": None, "hookCallbackIds": ["hook_0"]}]}
    assert initialize_payload(options, config) == {
        "hooks": config,
        "agents": {"r": {"description": "d", "prompt": "p", "tools": ["Read"]}},
        "sdkMcpServers": ["calc"],
        "promptSuggestions": True,
        "toolConfig": {"askUserQuestion": {"previewFormat": "html"}},
    }
    assert initialize_payload(Options()) == {"hooks": None}
    parity = Options(
        system_prompt={"type": "preset", "preset": "claude_code",
                       "exclude_dynamic_sections": True},
        skills=["greeter"], forward_subagent_text=True)
    assert initialize_payload(parity) == {"hooks": None, "excludeDynamicSections": True,
                                          "skills": ["greeter"], "forwardSubagentText": True}
    assert "skills" not in initialize_payload(Options(skills="all"))  # "all": no filter


def test_sdk_agent_definitions_are_accepted() -> None:
    import dataclasses

    @dataclasses.dataclass
    class AgentDefinition:  # the shape of claude-agent-sdk's
        description: str
        prompt: str
        tools: list[str] | None = None
        model: str | None = None

    options = Options(agents={"r": AgentDefinition("reviews", "be strict", ["Read"])})
    assert options.agents == {"r": {"description": "reviews", "prompt": "be strict",
                                    "tools": ["Read"]}}


# -- the real CLI ------------------------------------------------------------------------


def test_real_cli_accepts_every_flag_we_generate() -> None:
    """The pinned CLI parses the argv of (nearly) every option without complaint."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "extra").mkdir()
        (home / "plugin").mkdir()
        options = Options(
            model="sonnet",
            fallback_model=["opus"],
            system_prompt="-be brief",
            append_system_prompt="-- and kind",
            thinking={"type": "enabled", "budget_tokens": 2048},
            effort="high",
            betas=["context-1m-2025-08-07"],
            max_turns=4,
            max_budget_usd=1.5,
            tools=["Read", "Bash"],
            allowed_tools=["Read", "Bash(git log:*)"],
            disallowed_tools=["Write"],
            add_dir=[home / "extra"],
            permission_mode="accept_edits",
            can_use_tool=hook_fn,
            sandbox={"enabled": False, "auto_allow_bash_if_sandboxed": True},
            settings={"cleanupPeriodDays": 30},
            mcp_servers={"s": SdkServer("s"), "ext": {"command": "true", "args": []}},
            strict_mcp_config=True,
            include_partial_messages=True,
            include_hook_events=True,
            replay_user_messages=True,
            output_format={"type": "json_schema", "schema": SCHEMA},
            setting_sources=["project", "local"],
            plugins=[home / "plugin"],
            disable_slash_commands=True,
            no_session_persistence=True,
            session_id=UUID,
            debug="api,hooks",
            debug_file=str(home / "debug.log"),
            extra_args={"exclude-dynamic-system-prompt-sections": None},
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,
            "CLAUDE_CONFIG_DIR": f"{tmp}/.claude",
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
            "ANTHROPIC_API_KEY": "x",
        }
        done = subprocess.run(
            [cli_path(), *to_cli_args(options)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=to_cli_env(options, env),
            cwd=tmp,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == b""
        (home / "prompt.md").write_text("be brief")
        parity = Options(
            system_prompt={"type": "file", "path": str(home / "prompt.md")},
            thinking={"type": "adaptive", "display": "summarized"},
            task_budget={"total": 5000},
            skills=["greeter"],
            tools={"type": "preset", "preset": "claude_code"},
        )
        done = subprocess.run(
            [cli_path(), *to_cli_args(parity)], stdin=subprocess.DEVNULL, capture_output=True,
            env=to_cli_env(parity, env), cwd=tmp, timeout=60)
        assert done.returncode == 0 and done.stderr == b"", done.stderr
        for bad in (["--permission-mode=delegate"], ["--no-such-flag"]):
            rejected = subprocess.run(
                [cli_path(), *BASE_ARGS, *bad],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=env,
                cwd=tmp,
                timeout=60,
            )
            assert rejected.returncode == 1 and b"error" in rejected.stderr.lower()


async def test_real_cli_receives_option_values() -> None:
    """Values reach the CLI intact, including ones that start with a dash."""
    with tempfile.TemporaryDirectory() as tmp:
        options = Options(
            model="claude-test-model-7",
            system_prompt="-You are terse.",
            append_system_prompt="--Always answer in French.",
            permission_mode="plan",
            tools=["Read", "Glob"],
            max_turns=2,
        )
        async with FakeAnthropic.serve(seed=6) as fake:
            fake.script(Text("bonjour"))
            async with open_cli(fake, options, Path(tmp)) as cli:
                await cli.send(cli.proto.user_message("hi"))
                init = await cli.next_event(lambda e: isinstance(e, SystemMessage))
                result = await cli.next_event(lambda e: isinstance(e, ResultMessage))
            turns = [r for r in fake.requests if r.is_messages]
    assert isinstance(init, SystemMessage) and isinstance(result, ResultMessage)
    assert init.model == "claude-test-model-7"
    assert init.permission_mode == "plan"
    assert set(init.tools or []) >= {"Read", "Glob"} and "Bash" not in (init.tools or [])
    assert result.result == "bonjour"
    request = turns[-1]
    assert request.model == "claude-test-model-7"
    assert "-You are terse." in request.system_text
    assert "--Always answer in French." in request.system_text
    assert "Bash" not in request.tool_names and "Read" in request.tool_names
