"""Session options: validation, and their mapping to CLI flags, environment and ``initialize``.

:class:`Options` holds every option of a session, named as in the Elixir
ClaudeCode library (snake_case). It is validated when built: a wrong type
raises :class:`~claudecode._protocol_errors.InvalidOptionTypeError` (a
``TypeError``), a wrong value :class:`~claudecode._protocol_errors.InvalidOptionError`
(a ``ValueError``); both name the option in ``.option`` and in the message.
:meth:`Options.from_kwargs` additionally rejects unknown names with a
did-you-mean suggestion (:class:`~claudecode._protocol_errors.UnknownOptionError`)
and accepts ``continue`` (a Python keyword) for ``continue_conversation``.

Where each option goes:

* :func:`to_cli_args` -- the CLI argv after the executable. Valued flags are
  always written as ``--flag=value``, so a value starting with ``-`` (a
  prompt, a resume id) can never be read as another flag and optional-value
  flags (``--resume``, ``--debug``, ``--worktree``) bind their value.
* :func:`to_cli_env` -- the child's environment (``env``, ``inherit_env``,
  ``api_key``, ``enable_file_checkpointing``, ``cwd`` as ``PWD``).
* :func:`initialize_payload` -- the ``initialize`` control request
  (``hooks`` via :func:`build_hooks_config`, ``agents``, ``tool_config``,
  ``prompt_suggestions``, in-process MCP server names).
* SDK-side only (no flag): ``name``, ``adapter``, ``timeout``,
  ``control_timeout``, ``cli_idle_timeout``, ``cli_budget``,
  ``max_buffer_size``, ``can_use_tool`` (beyond adding
  ``--permission-prompt-tool=stdio``), ``cli_path``, ``cwd`` (the child's
  working directory).

Defaults follow the Elixir library, and differ from claude-agent-sdk's on
purpose: ``setting_sources`` unset sends ``--setting-sources=`` so no
user/project settings files (nor CLAUDE.md) are loaded unless asked for
(claude-agent-sdk loads all of them; ``skills`` alone turns on ``user`` and
``project``, as there); ``system_prompt`` unset keeps the CLI's default prompt
(claude-agent-sdk sends an empty one).

claude-agent-sdk's option names ``add_dirs`` and
``permission_prompt_tool_name`` are accepted by :meth:`Options.from_kwargs`
for ``add_dir`` and ``permission_prompt_tool``; its ``AgentDefinition``
dataclasses are accepted in ``agents``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import Any, Final, Literal, TypeAlias

import attrs

from claudecode._protocol import DEFAULT_MAX_BUFFER_SIZE
from claudecode._protocol_errors import (
    InvalidOptionError,
    InvalidOptionTypeError,
    UnknownOptionError,
)

__all__ = [
    "HOOK_EVENTS",
    "PERMISSION_MODES",
    "SDK_MCP_SERVER_MARKER",
    "HookCallbackSpec",
    "Options",
    "build_hooks_config",
    "effective_allowed_tools",
    "effective_setting_sources",
    "initialize_payload",
    "is_sdk_mcp_server",
    "normalize_permission_mode",
    "sdk_mcp_servers",
    "to_cli_args",
    "to_cli_env",
]


PermissionMode: TypeAlias = Literal[
    "default", "acceptEdits", "auto", "bypassPermissions", "manual", "dontAsk", "plan"
]

PERMISSION_MODES: Final[dict[str, str]] = {
    "default": "default",
    "acceptEdits": "acceptEdits",
    "accept_edits": "acceptEdits",
    "auto": "auto",
    "bypassPermissions": "bypassPermissions",
    "bypass_permissions": "bypassPermissions",
    "manual": "manual",
    "dontAsk": "dontAsk",
    "dont_ask": "dontAsk",
    "plan": "plan",
}
"""Accepted permission-mode spellings (Elixir snake_case or CLI camelCase) -> CLI value."""

HOOK_EVENTS: Final = (
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "Notification",
    "UserPromptSubmit",
    "SessionStart",
    "SessionEnd",
    "Stop",
    "SubagentStart",
    "SubagentStop",
    "PreCompact",
    "PostCompact",
    "PermissionRequest",
    "Setup",
    "TeammateIdle",
    "TaskCompleted",
    "Elicitation",
    "ElicitationResult",
    "ConfigChange",
    "WorktreeCreate",
    "WorktreeRemove",
    "InstructionsLoaded",
)
"""Hook event names the pinned CLI knows."""

EFFORT_LEVELS: Final = ("low", "medium", "high", "xhigh", "max")
THINKING_DISPLAYS: Final = ("summarized", "omitted")
SETTING_SOURCES: Final = ("user", "project", "local")
HOOK_WHERE: Final = ("local", "remote")

SDK_MCP_SERVER_MARKER: Final = "__claudecode_sdk_mcp_server__"
"""Attribute that marks an in-process MCP server object (its value must be true).

Such an object also has a ``name`` attribute. It is passed to the CLI as
``{"type": "sdk", "name": <mcp_servers key>}`` and served by the host through
``mcp_message`` control requests.
"""

_UUID_RE: Final = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)

InheritEnvEntry: TypeAlias = str | tuple[str, str]
"""An exact variable name, or ``("prefix", "CLAUDE_")``."""


def is_sdk_mcp_server(value: object) -> bool:
    """Whether ``value`` is an in-process MCP server object (see :data:`SDK_MCP_SERVER_MARKER`).

    Args:
        value: an ``mcp_servers`` value.

    Returns:
        ``True`` for marked objects with a ``name`` attribute.
    """
    return bool(getattr(value, SDK_MCP_SERVER_MARKER, False)) and hasattr(value, "name")


def normalize_permission_mode(value: str) -> str:
    """The CLI spelling of a permission mode.

    Args:
        value: ``"accept_edits"``, ``"acceptEdits"``, ``"plan"``...

    Returns:
        The CLI value (``"acceptEdits"``...).

    Raises:
        InvalidOptionError: not a mode the pinned CLI accepts.
        InvalidOptionTypeError: not a string.
    """
    if not isinstance(value, str):
        raise InvalidOptionTypeError("permission_mode", f"expected a string, got {value!r}")
    try:
        return PERMISSION_MODES[value]
    except KeyError:
        allowed = ", ".join(sorted(set(PERMISSION_MODES.values())))
        extra = " ('delegate' is not supported by the pinned CLI)" if value == "delegate" else ""
        raise InvalidOptionError(
            "permission_mode", f"{value!r} is not one of {allowed}{extra}"
        ) from None


# ---------------------------------------------------------------------------
# Converters / validators (each knows its option's name for the message)
# ---------------------------------------------------------------------------


def _type_name(value: object) -> str:
    return type(value).__name__


def _opt_str(name: str) -> Callable[[str | None], str | None]:
    def convert(value: str | None) -> str | None:
        if value is None or isinstance(value, str):
            return value
        raise InvalidOptionTypeError(name, f"expected a string, got {_type_name(value)}")

    return convert


def _opt_path(name: str) -> Callable[[str | os.PathLike[str] | None], str | None]:
    def convert(value: str | os.PathLike[str] | None) -> str | None:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, os.PathLike):
            path = os.fspath(value)
            if isinstance(path, str):
                return path
        raise InvalidOptionTypeError(name, f"expected a path string, got {_type_name(value)}")

    return convert


def _bool(name: str) -> Callable[[bool], bool]:
    def convert(value: bool) -> bool:
        if isinstance(value, bool):
            return value
        raise InvalidOptionTypeError(name, f"expected True or False, got {value!r}")

    return convert


def _str_seq(name: str) -> Callable[[Iterable[str] | None], tuple[str, ...] | None]:
    def convert(value: Iterable[str] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if isinstance(value, (str, bytes)):
            raise InvalidOptionTypeError(
                name, f"expected a list of strings, got the string {value!r} (use [{value!r}])"
            )
        try:
            items = tuple(value)
        except TypeError:
            raise InvalidOptionTypeError(
                name, f"expected a list of strings, got {_type_name(value)}"
            ) from None
        for item in items:
            if not isinstance(item, str):
                raise InvalidOptionTypeError(
                    name, f"expected a list of strings, found {item!r} ({_type_name(item)})"
                )
        return items

    return convert


def _path_seq(
    name: str,
) -> Callable[[Iterable[str | os.PathLike[str]] | None], tuple[str, ...] | None]:
    as_str = _str_seq(name)

    def convert(value: Iterable[str | os.PathLike[str]] | None) -> tuple[str, ...] | None:
        if value is None or isinstance(value, (str, bytes)):
            return as_str(value)
        try:
            items = [os.fspath(v) if isinstance(v, os.PathLike) else v for v in value]
        except TypeError:
            raise InvalidOptionTypeError(
                name, f"expected a list of paths, got {_type_name(value)}"
            ) from None
        return as_str(items)

    return convert


def _opt_int(name: str, minimum: int) -> Callable[[int | None], int | None]:
    def convert(value: int | None) -> int | None:
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidOptionTypeError(name, f"expected an integer, got {value!r}")
        if value < minimum:
            raise InvalidOptionError(name, f"must be >= {minimum}, got {value}")
        return value

    return convert


def _opt_seconds(name: str) -> Callable[[float | None], float | None]:
    def convert(value: float | None) -> float | None:
        if value is None:
            return None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InvalidOptionTypeError(name, f"expected seconds as a number, got {value!r}")
        value = float(value)
        if not value > 0 or value != value:
            raise InvalidOptionError(name, f"must be a positive number of seconds, got {value}")
        return value

    return convert


def _seconds(name: str) -> Callable[[float], float]:
    opt = _opt_seconds(name)

    def convert(value: float) -> float:
        if value is None:
            raise InvalidOptionTypeError(name, "expected seconds as a number, got None")
        result = opt(value)
        assert result is not None
        return result

    return convert


def _budget(value: float | None) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InvalidOptionTypeError("max_budget_usd", f"expected a number, got {value!r}")
    if not float(value) > 0 or value != value or value == float("inf"):
        raise InvalidOptionError("max_budget_usd", f"must be a positive finite number, got {value}")
    return float(value)


def _buffer_size(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidOptionTypeError("max_buffer_size", f"expected bytes as an int, got {value!r}")
    if value < 1024:
        raise InvalidOptionError("max_buffer_size", f"must be at least 1024 bytes, got {value}")
    return value


def _permission_mode(value: str | None) -> str | None:
    return None if value is None else normalize_permission_mode(value)


def _json_dict(name: str) -> Callable[[Mapping[str, Any] | None], dict[str, Any] | None]:
    def convert(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise InvalidOptionTypeError(name, f"expected a dict, got {_type_name(value)}")
        out = dict(value)
        for key in out:
            if not isinstance(key, str):
                raise InvalidOptionTypeError(name, f"keys must be strings, found {key!r}")
        try:
            json.dumps(out)
        except (TypeError, ValueError) as exc:
            raise InvalidOptionTypeError(name, f"must be JSON-serialisable: {exc}") from None
        return out

    return convert


def _tools(
    value: str | Iterable[str] | Mapping[str, Any] | None,
) -> str | tuple[str, ...] | None:
    if value is None or value == "default":
        return value
    if isinstance(value, Mapping):
        if dict(value) == {"type": "preset", "preset": "claude_code"}:
            return "default"  # claude-agent-sdk's spelling of the default set
        raise InvalidOptionError(
            "tools", f"the only preset is {{'type': 'preset', 'preset': 'claude_code'}}, "
                     f"got {dict(value)!r}")
    if isinstance(value, str):
        raise InvalidOptionError(
            "tools", f"expected 'default' or a list of tool names, got {value!r} (use [{value!r}])"
        )
    return _str_seq("tools")(value)


def _fallback_model(value: str | Iterable[str] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    models = _str_seq("fallback_model")(value)
    return ",".join(models) if models else None


def _effort(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidOptionTypeError("effort", f"expected a string, got {value!r}")
    if value not in EFFORT_LEVELS:
        raise InvalidOptionError("effort", f"{value!r} is not one of {', '.join(EFFORT_LEVELS)}")
    return value


ThinkingConfig: TypeAlias = dict[str, Any]


def _thinking(value: str | Mapping[str, Any] | tuple[str, int] | None) -> ThinkingConfig | None:
    """Normalise to ``{"type": "adaptive"|"disabled"|"enabled", "budget_tokens"?: N}``."""
    if value is None:
        return None
    if value in ("adaptive", "disabled"):
        return {"type": value}
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "enabled":
        value = {"type": "enabled", "budget_tokens": value[1]}
    if isinstance(value, Mapping):
        kind = value.get("type")
        display = value.get("display")
        if display is not None and display not in THINKING_DISPLAYS:
            raise InvalidOptionError(
                "thinking", f"display must be one of {', '.join(THINKING_DISPLAYS)}, "
                            f"got {display!r}")
        shown = {} if display is None or kind == "disabled" else {"display": display}
        if kind in ("adaptive", "disabled"):
            return {"type": kind, **shown}
        if kind == "enabled":
            budget = value.get("budget_tokens")
            if not isinstance(budget, int) or isinstance(budget, bool) or budget <= 0:
                raise InvalidOptionError(
                    "thinking", f"budget_tokens must be a positive int, got {budget!r}"
                )
            return {"type": "enabled", "budget_tokens": budget, **shown}
    raise InvalidOptionError(
        "thinking",
        "expected 'adaptive', 'disabled', {'type': 'enabled', 'budget_tokens': N} "
        f"or ('enabled', N), got {value!r}",
    )


def _setting_sources(value: Iterable[str] | None) -> tuple[str, ...] | None:
    items = _str_seq("setting_sources")(value)
    for item in items or ():
        if item not in SETTING_SOURCES:
            raise InvalidOptionError(
                "setting_sources", f"{item!r} is not one of {', '.join(SETTING_SOURCES)}"
            )
    return items


def _session_uuid(name: str) -> Callable[[str | None], str | None]:
    as_str = _opt_str(name)

    def convert(value: str | None) -> str | None:
        value = as_str(value)
        if value is not None and not _UUID_RE.match(value):
            raise InvalidOptionError(name, f"must be a UUID, got {value!r}")
        return value

    return convert


def _settings(
    value: str | os.PathLike[str] | Mapping[str, Any] | None,
) -> str | dict[str, Any] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return _opt_path("settings")(value)
    return _json_dict("settings")(value)


SystemPrompt: TypeAlias = str | dict[str, Any]
"""A prompt string, ``{"type": "preset", "preset": "claude_code", "append"?: str,
"exclude_dynamic_sections"?: bool}`` or ``{"type": "file", "path": str}``."""


def _system_prompt(value: str | Mapping[str, Any] | None) -> SystemPrompt | None:
    """Check the three forms of ``system_prompt`` (claude-agent-sdk's)."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, Mapping):
        raise InvalidOptionTypeError(
            "system_prompt", f"expected a string or a preset/file dict, got {_type_name(value)}")
    out = dict(value)
    kind = out.get("type")
    if kind == "preset":
        if out.get("preset") != "claude_code":
            raise InvalidOptionError("system_prompt", "the only preset is 'claude_code'")
        unknown = set(out) - {"type", "preset", "append", "exclude_dynamic_sections"}
        append = out.get("append")
        eds = out.get("exclude_dynamic_sections")
        if append is not None and not isinstance(append, str):
            raise InvalidOptionTypeError("system_prompt", f"'append' must be a string, "
                                                          f"got {append!r}")
        if eds is not None and not isinstance(eds, bool):
            raise InvalidOptionTypeError("system_prompt", "'exclude_dynamic_sections' must "
                                                          f"be True or False, got {eds!r}")
    elif kind == "file":
        path = out.get("path")
        if isinstance(path, os.PathLike):
            path = out["path"] = os.fspath(path)
        if not isinstance(path, str) or not path:
            raise InvalidOptionError("system_prompt", "a file system prompt needs a 'path'")
        unknown = set(out) - {"type", "path"}
    else:
        raise InvalidOptionError(
            "system_prompt", f"a dict system prompt has type 'preset' or 'file', got {kind!r}")
    if unknown:
        raise InvalidOptionError("system_prompt", f"unknown keys {sorted(unknown)!r}")
    return out


_SKILL_NAME_BAD: Final = re.compile(r"[(),\x00-\x1f\x7f-\x9f\ufeff\ud800-\udfff]")


def _skill_name(name: object) -> str:
    if not isinstance(name, str):
        raise InvalidOptionTypeError("skills", f"skill names must be strings, got {name!r}")
    problem = None
    if not name.strip():
        problem = "is empty"
    elif name != name.strip():
        problem = "has leading or trailing whitespace (the Skill tool trims names)"
    elif _SKILL_NAME_BAD.search(name):
        problem = "has parentheses, commas, control characters or surrogates"
    elif name == "*" or name.endswith((":*", " *")):
        problem = "is a wildcard (use skills='all', or list exact names)"
    elif name.startswith("/"):
        problem = "starts with '/' (give the skill's name, not its slash command)"
    elif "\\\\" in name or name.endswith("\\"):
        problem = "has a doubled or trailing backslash"
    if problem is not None:
        raise InvalidOptionError("skills", f"skill name {name!r} {problem}")
    return name


def _skills(value: str | Iterable[str] | None) -> Literal["all"] | tuple[str, ...] | None:
    if value is None or value == "all":
        return value  # type: ignore[return-value]
    if isinstance(value, str):
        raise InvalidOptionError("skills", f"expected 'all' or a list of skill names, "
                                           f"got {value!r} (did you mean [{value!r}]?)")
    try:
        items = tuple(value)
    except TypeError:
        raise InvalidOptionTypeError("skills", f"expected 'all' or a list of names, "
                                               f"got {_type_name(value)}") from None
    return tuple(_skill_name(n) for n in items)


def _task_budget(value: int | Mapping[str, Any] | None) -> int | None:
    """``N`` or claude-agent-sdk's ``{"total": N}`` (API tokens), as ``N``."""
    if isinstance(value, Mapping):
        if set(value) != {"total"}:
            raise InvalidOptionError("task_budget", f"expected {{'total': N}}, got {value!r}")
        value = value["total"]
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidOptionTypeError("task_budget", f"expected tokens as an int, got {value!r}")
    if value <= 0:
        raise InvalidOptionError("task_budget", f"must be a positive number of tokens, "
                                                f"got {value}")
    return value


def _user(value: str | int | None) -> str | int | None:
    if value is None or (isinstance(value, str) and value):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise InvalidOptionTypeError("user", f"expected a user name or a uid, got {value!r}")


def _line_sink(value: Any) -> Callable[[str], Any] | None:
    if value is None or callable(value):
        return value  # type: ignore[no-any-return]
    raise InvalidOptionTypeError("stderr", f"expected a function taking one line, "
                                           f"got {_type_name(value)}")


def _debug_stderr(value: Any) -> Any:
    if value is None or callable(getattr(value, "write", None)):
        return value
    raise InvalidOptionTypeError("debug_stderr", f"expected a writable text file (sys.stderr, "
                                                 f"open(...)), got {_type_name(value)}")


def _output_format(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Keep only the JSON schema: accepts ``{"type": "json_schema", "schema": S}`` or ``S``."""
    out = _json_dict("output_format")(value)
    if out is None:
        return None
    if out.get("type") == "json_schema":
        schema = out.get("schema")
        if not isinstance(schema, Mapping):
            raise InvalidOptionError("output_format", "'json_schema' needs a 'schema' dict")
        return dict(schema)
    return out


def _env(value: Mapping[str, str | bool | None] | None) -> dict[str, str | None]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidOptionTypeError("env", f"expected a dict, got {_type_name(value)}")
    out: dict[str, str | None] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise InvalidOptionError("env", f"invalid variable name {key!r}")
        if val is None or val is False:
            out[key] = None  # unset
        elif isinstance(val, str):
            if "\0" in val:
                raise InvalidOptionError("env", f"value of {key!r} contains a NUL byte")
            out[key] = val
        else:
            raise InvalidOptionTypeError(
                "env", f"value of {key!r} must be a string, or None/False to unset; got {val!r}"
            )
    return out


def _inherit_env(
    value: Literal["all"] | Iterable[InheritEnvEntry],
) -> Literal["all"] | tuple[InheritEnvEntry, ...]:
    if value == "all":
        return "all"
    if isinstance(value, str):
        raise InvalidOptionError(
            "inherit_env", f"expected 'all' or a list of names / ('prefix', P), got {value!r}"
        )
    try:
        items = tuple(value)
    except TypeError:
        raise InvalidOptionTypeError("inherit_env", f"expected a list, got {value!r}") from None
    for item in items:
        if isinstance(item, str):
            continue
        if (
            isinstance(item, tuple)
            and len(item) == 2
            and item[0] == "prefix"
            and isinstance(item[1], str)
        ):
            continue
        raise InvalidOptionError(
            "inherit_env", f"entries must be names or ('prefix', 'P'), found {item!r}"
        )
    return items


def _extra_args(
    value: Mapping[str, str | bool | None] | None,
) -> dict[str, str | None]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidOptionTypeError("extra_args", f"expected a dict, got {_type_name(value)}")
    out: dict[str, str | None] = {}
    for flag, val in value.items():
        if not isinstance(flag, str) or not flag.strip("-") or "=" in flag or " " in flag:
            raise InvalidOptionError("extra_args", f"invalid flag name {flag!r}")
        name = flag if flag.startswith("-") else f"--{flag}"
        if val is None or val is True:
            out[name] = None
        elif val is False:
            continue
        elif isinstance(val, (str, int, float)):
            out[name] = str(val)
        else:
            raise InvalidOptionTypeError(
                "extra_args", f"value of {flag!r} must be a string, True or None; got {val!r}"
            )
    return out


def _cli_path(value: str | os.PathLike[str] | None) -> str | None:
    return _opt_path("cli_path")(value)


def _debug(value: bool | str | None) -> bool | str | None:
    if value is None or isinstance(value, (bool, str)):
        return value
    raise InvalidOptionTypeError("debug", f"expected True/False or a filter string, got {value!r}")


def _worktree(value: bool | str | None) -> bool | str | None:
    if value is None or isinstance(value, (bool, str)):
        return value
    raise InvalidOptionTypeError("worktree", f"expected True/False or a name, got {value!r}")


def _from_pr(value: str | int | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InvalidOptionTypeError("from_pr", f"expected a PR number or URL, got {value!r}")


def _plugins(
    value: Iterable[str | os.PathLike[str] | Mapping[str, Any]] | None,
) -> tuple[str, ...] | None:
    """Plugin directories: paths, or ``{"type": "local", "path": P}`` dicts."""
    if value is None:
        return None
    if isinstance(value, (str, bytes, Mapping)):
        raise InvalidOptionTypeError("plugins", f"expected a list, got {value!r}")
    out: list[str] = []
    for item in value:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, os.PathLike):
            out.append(os.fspath(item))
        elif isinstance(item, Mapping) and item.get("type", "local") == "local":
            path = item.get("path")
            if not isinstance(path, (str, os.PathLike)):
                raise InvalidOptionError("plugins", f"plugin {item!r} has no 'path'")
            out.append(os.fspath(path))
        else:
            raise InvalidOptionError(
                "plugins", f"entries must be paths or {{'type': 'local', 'path': P}}, got {item!r}"
            )
    return tuple(out)


def _mcp_servers(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidOptionTypeError("mcp_servers", f"expected a dict, got {_type_name(value)}")
    out: dict[str, Any] = {}
    for key, server in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidOptionError("mcp_servers", f"server names must be strings, got {key!r}")
        if is_sdk_mcp_server(server):
            out[key] = server
        elif isinstance(server, Mapping):
            config = dict(server)
            try:
                json.dumps(config)
            except (TypeError, ValueError) as exc:
                raise InvalidOptionTypeError(
                    "mcp_servers", f"config of {key!r} must be JSON-serialisable: {exc}"
                ) from None
            out[key] = config
        else:
            raise InvalidOptionTypeError(
                "mcp_servers",
                f"{key!r} must be a config dict or an in-process server (claudecode.mcp_server), "
                f"got {_type_name(server)}",
            )
    return out


def _agents(value: Mapping[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidOptionTypeError("agents", f"expected a dict, got {_type_name(value)}")
    out: dict[str, dict[str, Any]] = {}
    for name, definition in value.items():
        if not isinstance(name, str) or not name:
            raise InvalidOptionError("agents", f"agent names must be strings, got {name!r}")
        if hasattr(definition, "to_dict") and callable(definition.to_dict):
            definition = definition.to_dict()
        elif dataclasses.is_dataclass(definition) and not isinstance(definition, type):
            # claude-agent-sdk's AgentDefinition: its fields, without the unset ones
            definition = {k: v for k, v in dataclasses.asdict(definition).items()
                          if v is not None}
        if not isinstance(definition, Mapping):
            raise InvalidOptionTypeError(
                "agents", f"definition of {name!r} must be a dict, got {_type_name(definition)}"
            )
        if not isinstance(definition.get("description"), str) or not isinstance(
            definition.get("prompt"), str
        ):
            raise InvalidOptionError(
                "agents", f"definition of {name!r} needs string 'description' and 'prompt'"
            )
        out[name] = _json_dict("agents")(definition) or {}
    return out


def _callable(name: str) -> Callable[[Any], Callable[..., Any] | None]:
    def convert(value: object) -> Callable[..., Any] | None:
        if value is None or callable(value):
            return value
        raise InvalidOptionTypeError(name, f"expected a callable, got {_type_name(value)}")

    return convert


def _hooks(value: Mapping[str, Any] | None) -> dict[str, tuple[Any, ...]] | None:
    """Check event names and entry shapes; keep entries as given (the session runs them)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidOptionTypeError("hooks", f"expected a dict, got {_type_name(value)}")
    out: dict[str, tuple[Any, ...]] = {}
    for event, entries in value.items():
        if not isinstance(event, str) or event not in HOOK_EVENTS:
            close = difflib.get_close_matches(str(event), HOOK_EVENTS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidOptionError("hooks", f"unknown hook event {event!r}{hint}")
        if isinstance(entries, (str, bytes, Mapping)) or callable(entries):
            entries = [entries]
        try:
            items = tuple(entries)
        except TypeError:
            raise InvalidOptionTypeError(
                "hooks", f"{event}: expected a list of hooks/matchers, got {_type_name(entries)}"
            ) from None
        for entry in items:
            _matcher_parts(event, entry)  # validates
        out[event] = items
    return out


# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------


# Named converters (the attrs mypy plugin needs named functions to type __init__).


def _c_api_key(value: str | None) -> str | None:
    return _opt_str("api_key")(value)


def _c_timeout(value: float | None) -> float | None:
    return _opt_seconds("timeout")(value)


def _c_control_timeout(value: float) -> float:
    return _seconds("control_timeout")(value)


def _c_cli_idle_timeout(value: float | None) -> float | None:
    return _opt_seconds("cli_idle_timeout")(value)


def _c_can_use_tool(value: Callable[..., Any] | None) -> Callable[..., Any] | None:
    return _callable("can_use_tool")(value)


def _c_cwd(value: str | os.PathLike[str] | None) -> str | None:
    return _opt_path("cwd")(value)


def _c_enable_file_checkpointing(value: bool) -> bool:
    return _bool("enable_file_checkpointing")(value)


def _c_model(value: str | None) -> str | None:
    return _opt_str("model")(value)


def _c_system_prompt(value: str | Mapping[str, Any] | None) -> SystemPrompt | None:
    return _system_prompt(value)


def _c_append_system_prompt(value: str | None) -> str | None:
    return _opt_str("append_system_prompt")(value)


def _c_agent(value: str | None) -> str | None:
    return _opt_str("agent")(value)


def _c_max_thinking_tokens(value: int | None) -> int | None:
    return _opt_int("max_thinking_tokens", 0)(value)


def _c_betas(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return _str_seq("betas")(value)


def _c_max_turns(value: int | None) -> int | None:
    return _opt_int("max_turns", 1)(value)


def _c_allowed_tools(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return _str_seq("allowed_tools")(value)


def _c_disallowed_tools(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return _str_seq("disallowed_tools")(value)


def _c_add_dir(value: Iterable[str | os.PathLike[str]] | None) -> tuple[str, ...] | None:
    return _path_seq("add_dir")(value)


def _c_tool_config(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return _json_dict("tool_config")(value)


def _c_permission_prompt_tool(value: str | None) -> str | None:
    return _opt_str("permission_prompt_tool")(value)


def _c_allow_dangerously_skip_permissions(value: bool) -> bool:
    return _bool("allow_dangerously_skip_permissions")(value)


def _c_dangerously_skip_permissions(value: bool) -> bool:
    return _bool("dangerously_skip_permissions")(value)


def _c_sandbox(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return _json_dict("sandbox")(value)


def _c_mcp_config(value: str | os.PathLike[str] | None) -> str | None:
    return _opt_path("mcp_config")(value)


def _c_strict_mcp_config(value: bool) -> bool:
    return _bool("strict_mcp_config")(value)


def _c_resume(value: str | None) -> str | None:
    return _opt_str("resume")(value)


def _c_resume_session_at(value: str | None) -> str | None:
    return _opt_str("resume_session_at")(value)


def _c_resume_drops_turn(value: str | None) -> str | None:
    return _opt_str("resume_drops_turn")(value)


def _c_forward_subagent_text(value: bool) -> bool:
    return _bool("forward_subagent_text")(value)


def _c_fork_session(value: bool) -> bool:
    return _bool("fork_session")(value)


def _c_continue_conversation(value: bool) -> bool:
    return _bool("continue_conversation")(value)


def _c_no_session_persistence(value: bool) -> bool:
    return _bool("no_session_persistence")(value)


def _c_session_id(value: str | None) -> str | None:
    return _session_uuid("session_id")(value)


def _c_include_partial_messages(value: bool) -> bool:
    return _bool("include_partial_messages")(value)


def _c_include_hook_events(value: bool) -> bool:
    return _bool("include_hook_events")(value)


def _c_replay_user_messages(value: bool) -> bool:
    return _bool("replay_user_messages")(value)


def _c_prompt_suggestions(value: bool) -> bool:
    return _bool("prompt_suggestions")(value)


def _c_disable_slash_commands(value: bool) -> bool:
    return _bool("disable_slash_commands")(value)


def _c_file(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return _str_seq("file")(value)


def _c_debug_file(value: str | os.PathLike[str] | None) -> str | None:
    return _opt_path("debug_file")(value)


@attrs.frozen(kw_only=True)
class Options:
    """Every option of a Claude Code session, validated.

    Build with keyword arguments (``Options(model="sonnet")``) or, to get
    did-you-mean errors for unknown names and ``continue=`` support,
    :meth:`from_kwargs`. Lists are stored as tuples. See the module docstring
    for where each option goes.

    SDK-side options:
        name: process name to register the session under (any otpy name).
        adapter: the adapter object (default: the local CLI).
        api_key: set as ``ANTHROPIC_API_KEY`` in the child; never on the command line.
        cli_path: ``"bundled"``, ``"global"`` or a path to a ``claude`` executable.
        timeout: seconds to wait for the next message of a stream (``None``: no limit).
        control_timeout: seconds to wait for control responses (default 60).
        cli_idle_timeout: hibernate after that many seconds without a turn: the
            CLI is stopped, the conversation kept, and the next query starts a
            CLI that resumes it (``None``, the default: keep the CLI).
        cli_budget: the `claudecode.CLIBudget` (pid or name) the session takes
            its CLI slots from (``claudecode.Supervisor`` sets it when started
            with ``max_live_clis``).
        max_buffer_size: longest accepted stdout line in bytes (default 64 MiB).
        env: extra child variables; ``None``/``False`` unsets one.
        inherit_env: ``"all"`` (minus ``CLAUDECODE``) or a list of names and
            ``("prefix", "P")`` entries.
        hooks: ``{event: [callable | matcher, ...]}`` (matchers: objects or dicts
            with ``matcher``, ``hooks``, ``timeout``, ``where``).
        can_use_tool: async permission callback; routes prompts to the host.
        cwd: the child's working directory.
        enable_file_checkpointing: allow ``rewind_files`` (set through the env).
        user: run the CLI as this OS user (a name or uid; needs the privilege
            to switch users). Port adapter only.
        stderr: called with each line the CLI writes to stderr, as it writes
            it (in the session process: keep it quick).
        debug_stderr: a writable text file that gets the same lines.

    CLI options (flag in brackets):
        model [--model], fallback_model [--fallback-model, str or list],
        system_prompt [--system-prompt; ``{"type": "file", "path": P}``:
        --system-prompt-file; ``{"type": "preset", "preset": "claude_code",
        "append": A, "exclude_dynamic_sections": B}``: the CLI's own prompt,
        --append-system-prompt and initialize], append_system_prompt
        [--append-system-prompt], agent [--agent], agents (initialize),
        thinking [--thinking / --max-thinking-tokens], max_thinking_tokens
        [--max-thinking-tokens], effort [--effort], betas [--betas, repeated],
        max_turns [--max-turns], max_budget_usd [--max-budget-usd],
        task_budget [--task-budget, API tokens; ``N`` or ``{"total": N}``], tools
        [--tools], skills ["all" or names: --allowedTools Skill / Skill(name),
        initialize ``skills``, and user+project setting sources unless
        ``setting_sources`` is given], allowed_tools [--allowedTools], disallowed_tools
        [--disallowedTools], add_dir [--add-dir, repeated], tool_config
        (initialize), permission_mode [--permission-mode],
        permission_prompt_tool [--permission-prompt-tool],
        allow_dangerously_skip_permissions, dangerously_skip_permissions,
        sandbox (merged into --settings), mcp_config [--mcp-config],
        mcp_servers [--mcp-config JSON], strict_mcp_config, resume [--resume],
        resume_session_at, resume_drops_turn [--resume-drops-turn: refuse a
        truncating resume that would drop more than that turn], fork_session,
        continue_conversation [--continue],
        from_pr, no_session_persistence, session_id [--session-id],
        worktree [--worktree], output_format [--json-schema],
        include_partial_messages, include_hook_events, forward_subagent_text
        (initialize: subagents' text and thinking come as messages too),
        replay_user_messages, prompt_suggestions (initialize), settings [--settings],
        setting_sources [--setting-sources], plugins [--plugin-dir],
        disable_slash_commands, file [--file], extra_args, debug [--debug],
        debug_file [--debug-file].
    """

    # SDK side
    name: Any = None
    adapter: Any = None
    api_key: str | None = attrs.field(default=None, converter=_c_api_key, repr=False)
    cli_path: str | None = attrs.field(default=None, converter=_cli_path)
    timeout: float | None = attrs.field(default=None, converter=_c_timeout)
    control_timeout: float = attrs.field(default=60.0, converter=_c_control_timeout)
    cli_idle_timeout: float | None = attrs.field(default=None, converter=_c_cli_idle_timeout)
    cli_budget: Any = None
    max_buffer_size: int = attrs.field(default=DEFAULT_MAX_BUFFER_SIZE, converter=_buffer_size)
    env: dict[str, str | None] = attrs.field(factory=dict, converter=_env)
    inherit_env: Literal["all"] | tuple[InheritEnvEntry, ...] = attrs.field(
        default="all", converter=_inherit_env
    )
    hooks: dict[str, tuple[Any, ...]] | None = attrs.field(default=None, converter=_hooks)
    can_use_tool: Callable[..., Any] | None = attrs.field(default=None, converter=_c_can_use_tool)
    cwd: str | None = attrs.field(default=None, converter=_c_cwd)
    enable_file_checkpointing: bool = attrs.field(
        default=False, converter=_c_enable_file_checkpointing
    )
    user: str | int | None = attrs.field(default=None, converter=_user)
    stderr: Callable[[str], Any] | None = attrs.field(default=None, converter=_line_sink)
    debug_stderr: Any = attrs.field(default=None, converter=_debug_stderr)
    # Model and prompting
    model: str | None = attrs.field(default=None, converter=_c_model)
    fallback_model: str | None = attrs.field(default=None, converter=_fallback_model)
    system_prompt: SystemPrompt | None = attrs.field(default=None, converter=_c_system_prompt)
    append_system_prompt: str | None = attrs.field(default=None, converter=_c_append_system_prompt)
    agent: str | None = attrs.field(default=None, converter=_c_agent)
    agents: dict[str, dict[str, Any]] | None = attrs.field(default=None, converter=_agents)
    thinking: ThinkingConfig | None = attrs.field(default=None, converter=_thinking)
    max_thinking_tokens: int | None = attrs.field(default=None, converter=_c_max_thinking_tokens)
    effort: str | None = attrs.field(default=None, converter=_effort)
    betas: tuple[str, ...] | None = attrs.field(default=None, converter=_c_betas)
    # Limits
    max_turns: int | None = attrs.field(default=None, converter=_c_max_turns)
    max_budget_usd: float | None = attrs.field(default=None, converter=_budget)
    task_budget: int | None = attrs.field(default=None, converter=_task_budget)
    # Tools and permissions
    tools: str | tuple[str, ...] | None = attrs.field(default=None, converter=_tools)
    skills: Literal["all"] | tuple[str, ...] | None = attrs.field(default=None,
                                                                 converter=_skills)
    allowed_tools: tuple[str, ...] | None = attrs.field(default=None, converter=_c_allowed_tools)
    disallowed_tools: tuple[str, ...] | None = attrs.field(
        default=None, converter=_c_disallowed_tools
    )
    add_dir: tuple[str, ...] | None = attrs.field(default=None, converter=_c_add_dir)
    tool_config: dict[str, Any] | None = attrs.field(default=None, converter=_c_tool_config)
    permission_mode: str | None = attrs.field(default=None, converter=_permission_mode)
    permission_prompt_tool: str | None = attrs.field(
        default=None, converter=_c_permission_prompt_tool
    )
    allow_dangerously_skip_permissions: bool = attrs.field(
        default=False, converter=_c_allow_dangerously_skip_permissions
    )
    dangerously_skip_permissions: bool = attrs.field(
        default=False, converter=_c_dangerously_skip_permissions
    )
    sandbox: dict[str, Any] | None = attrs.field(default=None, converter=_c_sandbox)
    # MCP
    mcp_config: str | None = attrs.field(default=None, converter=_c_mcp_config)
    mcp_servers: dict[str, Any] | None = attrs.field(default=None, converter=_mcp_servers)
    strict_mcp_config: bool = attrs.field(default=False, converter=_c_strict_mcp_config)
    # Session lifecycle
    resume: str | None = attrs.field(default=None, converter=_c_resume)
    resume_session_at: str | None = attrs.field(default=None, converter=_c_resume_session_at)
    resume_drops_turn: str | None = attrs.field(default=None, converter=_c_resume_drops_turn)
    fork_session: bool = attrs.field(default=False, converter=_c_fork_session)
    continue_conversation: bool = attrs.field(default=False, converter=_c_continue_conversation)
    from_pr: str | None = attrs.field(default=None, converter=_from_pr)
    no_session_persistence: bool = attrs.field(default=False, converter=_c_no_session_persistence)
    session_id: str | None = attrs.field(default=None, converter=_c_session_id)
    worktree: bool | str | None = attrs.field(default=None, converter=_worktree)
    # Output
    output_format: dict[str, Any] | None = attrs.field(default=None, converter=_output_format)
    include_partial_messages: bool = attrs.field(
        default=False, converter=_c_include_partial_messages
    )
    include_hook_events: bool = attrs.field(default=False, converter=_c_include_hook_events)
    forward_subagent_text: bool = attrs.field(default=False,
                                              converter=_c_forward_subagent_text)
    replay_user_messages: bool = attrs.field(default=False, converter=_c_replay_user_messages)
    prompt_suggestions: bool = attrs.field(default=False, converter=_c_prompt_suggestions)
    # Settings and plugins
    settings: str | dict[str, Any] | None = attrs.field(default=None, converter=_settings)
    setting_sources: tuple[str, ...] | None = attrs.field(default=None, converter=_setting_sources)
    plugins: tuple[str, ...] | None = attrs.field(default=None, converter=_plugins)
    disable_slash_commands: bool = attrs.field(default=False, converter=_c_disable_slash_commands)
    # Misc CLI
    file: tuple[str, ...] | None = attrs.field(default=None, converter=_c_file)
    extra_args: dict[str, str | None] = attrs.field(factory=dict, converter=_extra_args)
    debug: bool | str | None = attrs.field(default=None, converter=_debug)
    debug_file: str | None = attrs.field(default=None, converter=_c_debug_file)

    def __attrs_post_init__(self) -> None:
        if self.can_use_tool is not None and self.permission_prompt_tool is not None:
            raise InvalidOptionError(
                "can_use_tool",
                "can_use_tool and permission_prompt_tool are mutually exclusive "
                "(can_use_tool already routes prompts to the host)",
            )
        if self.resume is not None and self.continue_conversation:
            raise InvalidOptionError(
                "continue_conversation", "resume and continue_conversation are mutually exclusive"
            )
        if self.fork_session and self.resume is None and not self.continue_conversation:
            raise InvalidOptionError(
                "fork_session", "fork_session needs resume or continue_conversation"
            )
        if self.resume_session_at is not None and self.resume is None:
            raise InvalidOptionError("resume_session_at", "resume_session_at needs resume")
        if self.cli_idle_timeout is not None and self.no_session_persistence:
            raise InvalidOptionError(
                "cli_idle_timeout", "a session without persistence cannot hibernate: its "
                "conversation is not stored, so a new CLI could not resume it")
        if self.resume_drops_turn is not None and self.resume_session_at is None:
            raise InvalidOptionError("resume_drops_turn",
                                     "resume_drops_turn needs resume_session_at")
        if isinstance(self.system_prompt, dict) and self.system_prompt.get("append") is not None \
                and self.append_system_prompt is not None:
            raise InvalidOptionError(
                "append_system_prompt", "give the appended text either as "
                "append_system_prompt or as the preset's 'append', not both")
        if (
            self.session_id is not None
            and (self.resume is not None or self.continue_conversation)
            and not self.fork_session
        ):
            raise InvalidOptionError(
                "session_id",
                "session_id together with resume/continue_conversation also needs fork_session",
            )
        if isinstance(self.settings, str) and self.sandbox is not None:
            try:
                parsed = json.loads(self.settings)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                raise InvalidOptionError(
                    "sandbox",
                    "sandbox can only be merged into settings given as a dict or a JSON object "
                    "string, not a settings file path",
                )

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """All option names."""
        return tuple(a.name for a in attrs.fields(cls))

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> Options:
        """Build options from keyword arguments, with friendly errors.

        ``continue`` and ``continue_`` are accepted for ``continue_conversation``.

        Args:
            **kwargs: option names and values.

        Returns:
            The validated options.

        Raises:
            UnknownOptionError: a name that is not an option (with suggestions).
            InvalidOptionTypeError: a value of the wrong type.
            InvalidOptionError: a value that is not allowed.
        """
        return cls(**_check_names(cls.field_names(), kwargs))

    def merge(self, **overrides: Any) -> Options:
        """A copy with some options replaced (validated like :meth:`from_kwargs`).

        Args:
            **overrides: options to change.

        Returns:
            The new options.
        """
        return attrs.evolve(self, **_check_names(self.field_names(), overrides))


_ALIASES: Final = {
    "continue": "continue_conversation",
    "continue_": "continue_conversation",
    # claude-agent-sdk's names for options this library spells differently
    "add_dirs": "add_dir",
    "permission_prompt_tool_name": "permission_prompt_tool",
}


def _check_names(known: tuple[str, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        name = _ALIASES.get(key, key)
        if name not in known:
            raise UnknownOptionError(
                key, tuple(difflib.get_close_matches(key, known, n=3, cutoff=0.6))
            )
        out[name] = value
    return out


# ---------------------------------------------------------------------------
# Hooks (initialize payload)
# ---------------------------------------------------------------------------


@attrs.frozen
class HookCallbackSpec:
    """One host-side hook callback registered with the CLI.

    Attributes:
        callback_id: the id the CLI quotes in ``hook_callback`` requests.
        event: the hook event (``"PreToolUse"``...).
        matcher: the tool-name matcher, or ``None`` for all.
        callback: the user's callable.
        timeout: the matcher's timeout in seconds, if given.
        where: ``"local"`` or ``"remote"`` (where a Node adapter runs it).
    """

    callback_id: str
    event: str
    matcher: str | None
    callback: Any
    timeout: float | None
    where: str


def _matcher_parts(event: str, entry: Any) -> tuple[str | None, tuple[Any, ...], float | None, str]:
    """``(matcher, hooks, timeout, where)`` of a hooks entry; raises on bad shapes."""
    if isinstance(entry, Mapping):
        matcher = entry.get("matcher")
        hooks = entry.get("hooks", ())
        timeout = entry.get("timeout")
        where = entry.get("where", "local")
    elif hasattr(entry, "hooks"):
        matcher = getattr(entry, "matcher", None)
        hooks = entry.hooks
        timeout = getattr(entry, "timeout", None)
        where = getattr(entry, "where", "local")
    elif callable(entry):
        return None, (entry,), None, "local"
    else:
        raise InvalidOptionTypeError(
            "hooks", f"{event}: entries must be callables or matchers, got {_type_name(entry)}"
        )
    if matcher is not None and not isinstance(matcher, str):
        raise InvalidOptionTypeError("hooks", f"{event}: matcher must be a string, got {matcher!r}")
    if callable(hooks):
        hooks = (hooks,)
    try:
        hooks = tuple(hooks)
    except TypeError:
        raise InvalidOptionTypeError("hooks", f"{event}: 'hooks' must be a list") from None
    for hook in hooks:
        if not callable(hook):
            raise InvalidOptionTypeError("hooks", f"{event}: hook {hook!r} is not callable")
    if timeout is not None and (
        not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0
    ):
        raise InvalidOptionError("hooks", f"{event}: timeout must be positive seconds")
    if where not in HOOK_WHERE:
        raise InvalidOptionError(
            "hooks", f"{event}: where must be 'local' or 'remote', got {where!r}"
        )
    return matcher, hooks, None if timeout is None else float(timeout), where


def build_hooks_config(
    hooks: Mapping[str, Iterable[Any]] | None, *, id_prefix: str = "hook_"
) -> tuple[dict[str, list[dict[str, Any]]] | None, list[HookCallbackSpec]]:
    """Assign callback ids and build the ``hooks`` object of ``initialize``.

    Args:
        hooks: the ``hooks`` option (already validated by :class:`Options`).
        id_prefix: prefix of the generated callback ids (``hook_0``, ``hook_1``...).

    Returns:
        ``(wire_config, specs)``: ``wire_config`` is
        ``{event: [{"matcher", "hookCallbackIds", "timeout"?}]}`` (``None`` when
        there are no hooks); ``specs`` lists every callback with its id, in id order.
    """
    if not hooks:
        return None, []
    config: dict[str, list[dict[str, Any]]] = {}
    specs: list[HookCallbackSpec] = []
    for event, entries in hooks.items():
        matchers: list[dict[str, Any]] = []
        for entry in entries:
            matcher, callbacks, timeout, where = _matcher_parts(event, entry)
            ids = []
            for callback in callbacks:
                cid = f"{id_prefix}{len(specs)}"
                specs.append(HookCallbackSpec(cid, event, matcher, callback, timeout, where))
                ids.append(cid)
            item: dict[str, Any] = {"matcher": matcher, "hookCallbackIds": ids}
            if timeout is not None:
                item["timeout"] = timeout
            matchers.append(item)
        if matchers:
            config[event] = matchers
    return (config or None), specs


def sdk_mcp_servers(options: Options) -> dict[str, Any]:
    """The in-process MCP servers of ``options``, by their ``mcp_servers`` key.

    Args:
        options: the session options.

    Returns:
        ``{key: server_object}``; the CLI names the server by ``key`` in ``mcp_message``.
    """
    return {k: v for k, v in (options.mcp_servers or {}).items() if is_sdk_mcp_server(v)}


def initialize_payload(
    options: Options, hooks_config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The fields of the ``initialize`` control request (without ``subtype``).

    Args:
        options: the session options.
        hooks_config: the wire hooks object from :func:`build_hooks_config`
            (the session layer builds it because it keeps the callbacks).

    Returns:
        ``{"hooks": ..., "agents"?: ..., "sdkMcpServers"?: [...],
        "promptSuggestions"?: true, "toolConfig"?: ..., "excludeDynamicSections"?:
        bool, "skills"?: [...], "forwardSubagentText"?: true}``; pass it to
        ``CLIProtocol.control_request("initialize", payload)``.
    """
    payload: dict[str, Any] = {"hooks": dict(hooks_config) if hooks_config else None}
    if options.agents:
        payload["agents"] = options.agents
    sdk = sdk_mcp_servers(options)
    if sdk:
        payload["sdkMcpServers"] = list(sdk)
    if options.prompt_suggestions:
        payload["promptSuggestions"] = True
    if options.tool_config:
        payload["toolConfig"] = options.tool_config
    prompt = options.system_prompt
    if isinstance(prompt, dict) and prompt.get("exclude_dynamic_sections") is not None:
        payload["excludeDynamicSections"] = prompt["exclude_dynamic_sections"]
    if isinstance(options.skills, tuple):
        payload["skills"] = list(options.skills)  # "all" sends no filter
    if options.forward_subagent_text:
        payload["forwardSubagentText"] = True
    return payload


# ---------------------------------------------------------------------------
# argv
# ---------------------------------------------------------------------------

BASE_ARGS: Final = ("--output-format", "stream-json", "--verbose", "--input-format", "stream-json")
"""Flags every session starts with (stream-json both ways)."""


def _mcp_config_json(servers: Mapping[str, Any]) -> str:
    wire: dict[str, Any] = {}
    for key, server in servers.items():
        wire[key] = {"type": "sdk", "name": key} if is_sdk_mcp_server(server) else dict(server)
    return json.dumps({"mcpServers": wire}, separators=(",", ":"))


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _camel_keys(value: Any) -> Any:
    """snake_case keys -> camelCase, recursively (sandbox settings)."""
    if isinstance(value, Mapping):
        return {_camel(str(k)): _camel_keys(v) for k, v in value.items()}
    return value


def _settings_value(options: Options) -> str | None:
    settings = options.settings
    if options.sandbox is None:
        if settings is None:
            return None
        return settings if isinstance(settings, str) else json.dumps(settings)
    merged: dict[str, Any]
    if settings is None:
        merged = {}
    elif isinstance(settings, str):
        merged = json.loads(settings)  # validated to look like JSON in Options
        if not isinstance(merged, dict):
            raise InvalidOptionError("settings", "settings JSON must be an object")
    else:
        merged = dict(settings)
    merged["sandbox"] = _camel_keys(options.sandbox)
    return json.dumps(merged)


def effective_allowed_tools(options: Options) -> tuple[str, ...]:
    """``allowed_tools`` plus what ``skills`` implies (``Skill`` or ``Skill(name)``).

    Args:
        options: the session options.

    Returns:
        The tools the CLI allows without asking.
    """
    allowed = list(options.allowed_tools or ())
    skills = options.skills
    extra: list[str] = []
    if skills == "all":
        extra = ["Skill"]
    elif skills is not None:
        extra = [f"Skill({name})" for name in skills]
    return (*allowed, *[e for e in extra if e not in allowed])


def effective_setting_sources(options: Options) -> tuple[str, ...]:
    """The settings sources the CLI loads.

    ``setting_sources`` when given; otherwise none, except that ``skills``
    needs the user and project sources (where skills are found), as in
    claude-agent-sdk.

    Args:
        options: the session options.

    Returns:
        The sources, possibly empty.
    """
    if options.setting_sources is not None:
        return options.setting_sources
    if options.skills is not None:
        return ("user", "project")
    return ()


def to_cli_args(options: Options) -> list[str]:
    """The CLI argv (after the executable) for ``options``.

    Args:
        options: the session options.

    Returns:
        ``["--output-format", "stream-json", "--verbose", "--input-format",
        "stream-json", ...flags]``; valued flags use the ``--flag=value`` form.
    """
    args = list(BASE_ARGS)

    def val(flag: str, value: str) -> None:
        args.append(f"{flag}={value}")

    def flag(name: str, on: bool) -> None:
        if on:
            args.append(name)

    o = options
    if o.model is not None:
        val("--model", o.model)
    if o.fallback_model is not None:
        val("--fallback-model", o.fallback_model)
    prompt = o.system_prompt
    if isinstance(prompt, str):
        val("--system-prompt", prompt)
    elif isinstance(prompt, dict) and prompt["type"] == "file":
        val("--system-prompt-file", prompt["path"])
    elif isinstance(prompt, dict) and prompt.get("append") is not None:
        val("--append-system-prompt", prompt["append"])  # the preset: the CLI's own prompt
    if o.append_system_prompt is not None:
        val("--append-system-prompt", o.append_system_prompt)
    if o.agent is not None:
        val("--agent", o.agent)
    if o.thinking is not None:
        kind = o.thinking["type"]
        if kind == "enabled":
            val("--max-thinking-tokens", str(o.thinking["budget_tokens"]))
        else:
            val("--thinking", kind)
        if "display" in o.thinking:
            val("--thinking-display", o.thinking["display"])
    elif o.max_thinking_tokens is not None:
        val("--max-thinking-tokens", str(o.max_thinking_tokens))
    if o.effort is not None:
        val("--effort", o.effort)
    for beta in o.betas or ():
        val("--betas", beta)
    if o.max_turns is not None:
        val("--max-turns", str(o.max_turns))
    if o.max_budget_usd is not None:
        val("--max-budget-usd", repr(o.max_budget_usd))
    if o.task_budget is not None:
        val("--task-budget", str(o.task_budget))
    if o.tools is not None:
        val("--tools", o.tools if isinstance(o.tools, str) else ",".join(o.tools))
    allowed = effective_allowed_tools(o)
    if allowed:
        val("--allowedTools", ",".join(allowed))
    if o.disallowed_tools:
        val("--disallowedTools", ",".join(o.disallowed_tools))
    for directory in o.add_dir or ():
        val("--add-dir", directory)
    if o.permission_mode is not None:
        val("--permission-mode", o.permission_mode)
    if o.can_use_tool is not None:
        val("--permission-prompt-tool", "stdio")
    elif o.permission_prompt_tool is not None:
        val("--permission-prompt-tool", o.permission_prompt_tool)
    flag("--allow-dangerously-skip-permissions", o.allow_dangerously_skip_permissions)
    flag("--dangerously-skip-permissions", o.dangerously_skip_permissions)
    if o.mcp_config is not None:
        val("--mcp-config", o.mcp_config)
    if o.mcp_servers:
        val("--mcp-config", _mcp_config_json(o.mcp_servers))
    flag("--strict-mcp-config", o.strict_mcp_config)
    if o.resume is not None:
        val("--resume", o.resume)
    if o.resume_session_at is not None:
        val("--resume-session-at", o.resume_session_at)
    if o.resume_drops_turn is not None:
        val("--resume-drops-turn", o.resume_drops_turn)
    flag("--continue", o.continue_conversation)
    flag("--fork-session", o.fork_session)
    if o.from_pr is not None:
        val("--from-pr", o.from_pr)
    flag("--no-session-persistence", o.no_session_persistence)
    if o.session_id is not None:
        val("--session-id", o.session_id)
    if o.worktree is True:
        args.append("--worktree")
    elif isinstance(o.worktree, str):
        val("--worktree", o.worktree)
    if o.output_format is not None:
        val("--json-schema", json.dumps(o.output_format, separators=(",", ":")))
    flag("--include-partial-messages", o.include_partial_messages)
    flag("--include-hook-events", o.include_hook_events)
    flag("--replay-user-messages", o.replay_user_messages)
    settings = _settings_value(o)
    if settings is not None:
        val("--settings", settings)
    val("--setting-sources", ",".join(effective_setting_sources(o)))
    for plugin in o.plugins or ():
        val("--plugin-dir", plugin)
    flag("--disable-slash-commands", o.disable_slash_commands)
    for spec in o.file or ():
        val("--file", spec)
    if o.debug is True:
        args.append("--debug")
    elif isinstance(o.debug, str):
        val("--debug", o.debug)
    if o.debug_file is not None:
        val("--debug-file", o.debug_file)
    for name, value in o.extra_args.items():
        if value is None:
            args.append(name)
        else:
            val(name, value)
    return args


# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------

ENTRYPOINT: Final = "sdk-py"
"""``CLAUDE_CODE_ENTRYPOINT`` value the CLI sees."""


def _sdk_version() -> str:
    try:
        return metadata.version("otpy")
    except metadata.PackageNotFoundError:  # pragma: no cover - not installed
        return "0.0.0"


def _inherited(
    base: Mapping[str, str], spec: Literal["all"] | tuple[InheritEnvEntry, ...]
) -> dict[str, str]:
    if spec == "all":  # never the distribution cookie (OTPY_COOKIE) of the node
        return {k: v for k, v in base.items() if k not in ("CLAUDECODE", "OTPY_COOKIE")}
    names = {e for e in spec if isinstance(e, str)}
    prefixes = tuple(e[1] for e in spec if isinstance(e, tuple))
    return {k: v for k, v in base.items() if k != "OTPY_COOKIE"
            and (k in names or (prefixes and k.startswith(prefixes)))}


def to_cli_env(options: Options, base_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The CLI child's environment.

    Precedence, lowest first: ``base_env`` filtered by ``inherit_env``; the
    SDK's own variables (``CLAUDE_CODE_ENTRYPOINT=sdk-py``,
    ``CLAUDE_AGENT_SDK_VERSION``); ``env`` (``None`` entries unset a
    variable); ``api_key`` as ``ANTHROPIC_API_KEY``;
    ``CLAUDE_CODE_ENABLE_SDK_FILE_CHECKPOINTING=true`` when enabled; ``PWD``
    when ``cwd`` is set.

    Args:
        options: the session options.
        base_env: the environment to inherit from (default ``os.environ``).

    Returns:
        A fresh dict for the child.
    """
    env = _inherited(os.environ if base_env is None else base_env, options.inherit_env)
    env["CLAUDE_CODE_ENTRYPOINT"] = ENTRYPOINT
    env["CLAUDE_AGENT_SDK_VERSION"] = _sdk_version()
    for key, value in options.env.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    if options.api_key is not None:
        env["ANTHROPIC_API_KEY"] = options.api_key
    if options.enable_file_checkpointing:
        env["CLAUDE_CODE_ENABLE_SDK_FILE_CHECKPOINTING"] = "true"
    if options.cwd is not None:
        env["PWD"] = os.path.abspath(options.cwd)
    return env
