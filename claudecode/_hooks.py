"""Hook matchers, hook outputs and ``can_use_tool`` results, in the CLI's wire shapes.

Hooks are registered per event in the ``hooks`` option::

    async def no_rm(input, tool_use_id):
        if "rm -rf" in input["tool_input"].get("command", ""):
            return claudecode.deny("not here")
        return None  # no opinion

    hooks = {"PreToolUse": [claudecode.HookMatcher(matcher="Bash", hooks=[no_rm])]}

A hook is called as ``hook(input, tool_use_id)``, or ``hook(input,
tool_use_id, context)`` when it accepts three positional arguments
(``context`` is a :class:`HookContext`); it may be sync or async. ``input``
is the CLI's hook input dict (``hook_event_name``, ``tool_name``,
``tool_input``, ``session_id``, ``cwd``...). It returns ``None`` (no
opinion), a :class:`HookResponse` from the shorthands :func:`ok`,
:func:`allow`, :func:`deny`, :func:`ask`, :func:`block` and :func:`halt`, or
a raw hook-output dict (``continue_``/``async_`` are accepted for the
Python keywords ``continue``/``async``).

What the shorthands send, per event (checked against the pinned CLI):

* ``allow``/``deny``/``ask`` on ``PreToolUse``: ``hookSpecificOutput`` with
  ``permissionDecision`` (+ ``permissionDecisionReason``, ``updatedInput``);
  the tool is not run on ``deny``, and the reason reaches the model.
* ``allow``/``deny`` on ``PermissionRequest``: ``hookSpecificOutput.decision``
  ``{"behavior": "allow"|"deny", ...}``.
* ``block(reason)``: ``{"decision": "block", "reason": ...}`` -- blocks a
  ``UserPromptSubmit`` prompt, feeds the reason back after ``PostToolUse``,
  keeps the agent going on ``Stop``/``SubagentStop``; on ``PreToolUse`` it
  is a ``deny`` and on ``PermissionRequest`` a denying decision.
* ``halt(reason)``: ``{"continue": false, "stopReason": ...}`` on any event:
  the turn ends.
* ``additional_context`` (any shorthand) goes to
  ``hookSpecificOutput.additionalContext`` for the events that take it.

The ``hookSpecificOutput.hookEventName`` always names the event the hook runs
for (the CLI rejects a mismatch and fails the tool call).

``can_use_tool`` callbacks are called as ``can_use_tool(tool_name, input,
context)`` with a :class:`PermissionContext` and return :class:`Allow` or
:class:`Deny`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal, TypeAlias

import attrs
import trio

from claudecode._errors import ClaudeCodeError

__all__ = [
    "ADDITIONAL_CONTEXT_EVENTS",
    "AbortSignal",
    "Allow",
    "Deny",
    "HookAction",
    "HookCallback",
    "HookContext",
    "HookMatcher",
    "HookOutputError",
    "HookResponse",
    "PermissionContext",
    "allow",
    "ask",
    "block",
    "deny",
    "halt",
    "hook_output",
    "ok",
    "permission_result",
]

HookCallback: TypeAlias = Callable[..., Any]
"""``hook(input, tool_use_id[, context]) -> None | HookResponse | dict`` (sync or async)."""

HookAction: TypeAlias = Literal["ok", "allow", "deny", "ask", "block", "halt"]

ADDITIONAL_CONTEXT_EVENTS: Final = frozenset(
    {
        "PreToolUse",
        "PostToolUse",
        "PostToolUseFailure",
        "UserPromptSubmit",
        "SessionStart",
        "Notification",
        "SubagentStart",
    }
)
"""Events whose ``hookSpecificOutput`` takes ``additionalContext``."""


class HookOutputError(ClaudeCodeError, ValueError):
    """A hook returned something that cannot be sent for its event.

    For example ``allow()`` from a ``Stop`` hook, or a dict that is not JSON.
    """


# ---------------------------------------------------------------------------
# Abort signal and contexts
# ---------------------------------------------------------------------------


class AbortSignal:
    """Tells a running callback that its answer is no longer wanted.

    Set when the CLI cancels the request (``control_cancel_request``) or the
    callback's timeout passes. An async callback is cancelled by trio at the
    same moment; the signal lets it (e.g. in a ``finally``) or a sync helper
    check why.
    """

    def __init__(self) -> None:
        self._event = trio.Event()
        self._reason: str | None = None
        self._deadline = math.inf
        self._deadline_reason = ""

    def _expired(self) -> bool:
        return self._deadline < math.inf and trio.current_time() >= self._deadline

    @property
    def aborted(self) -> bool:
        """Whether the request was cancelled or timed out."""
        return self._event.is_set() or self._expired()

    @property
    def reason(self) -> str | None:
        """Why it was aborted (``None`` while not aborted)."""
        if self._reason is None and self._expired():
            return self._deadline_reason
        return self._reason

    def abort(self, reason: str) -> None:
        """Mark as aborted (the first reason wins).

        Args:
            reason: why.
        """
        if not self.aborted:
            self._reason = reason
        elif self._reason is None:
            self._reason = self._deadline_reason
        self._event.set()

    def set_deadline(self, deadline: float, reason: str) -> None:
        """Count as aborted from ``deadline`` on (trio clock), for ``reason``.

        Args:
            deadline: a ``trio.current_time()`` value.
            reason: the reason reported once it passed.
        """
        self._deadline = deadline
        self._deadline_reason = reason

    async def wait(self) -> None:
        """Wait until aborted."""
        with trio.move_on_at(self._deadline):
            await self._event.wait()

    def __repr__(self) -> str:
        return f"AbortSignal(aborted={self.aborted}, reason={self.reason!r})"


@attrs.frozen
class HookContext:
    """The optional third argument of a hook.

    Attributes:
        event: the hook event (``"PreToolUse"``...).
        callback_id: the CLI's id of this callback (``"hook_0"``...).
        tool_use_id: the related tool-use id, if any.
        signal: set when the CLI cancels the call or it times out.
    """

    event: str
    callback_id: str
    tool_use_id: str | None
    signal: AbortSignal = attrs.field(factory=AbortSignal)


@attrs.frozen
class PermissionContext:
    """What the CLI says about a permission prompt (third argument of ``can_use_tool``).

    Attributes:
        tool_use_id: the tool-use id of the call.
        suggestions: permission-rule updates the CLI proposes (wire dicts, e.g.
            ``{"type": "addRules", "rules": [...], "behavior": "allow",
            "destination": "localSettings"}``); pass some back in
            ``Allow(updated_permissions=...)`` to apply them.
        decision_reason: why the CLI asks (e.g. a hook's ``ask`` reason).
        blocked_path: the path that triggered the prompt, if any.
        agent_id: the subagent asking, if any.
        title: the CLI's full prompt sentence, if sent.
        display_name: a short name of the action, if sent.
        description: a subtitle for the prompt, if sent.
        signal: set when the CLI cancels the prompt or it times out.
        request: the raw ``can_use_tool`` request object.
    """

    tool_use_id: str | None = None
    suggestions: list[dict[str, Any]] = attrs.field(factory=list)
    decision_reason: Any = None
    blocked_path: str | None = None
    agent_id: str | None = None
    title: str | None = None
    display_name: str | None = None
    description: str | None = None
    signal: AbortSignal = attrs.field(factory=AbortSignal)
    request: dict[str, Any] = attrs.field(factory=dict, repr=False)

    @classmethod
    def from_request(
        cls, request: Mapping[str, Any], signal: AbortSignal | None = None
    ) -> PermissionContext:
        """Build the context from a ``can_use_tool`` request object.

        Args:
            request: the ``request`` field of the control request.
            signal: the abort signal to share with the dispatcher.

        Returns:
            The context (unknown or mistyped fields become ``None``).
        """

        def text(key: str) -> str | None:
            value = request.get(key)
            return value if isinstance(value, str) else None

        raw = request.get("permission_suggestions")
        suggestions = (
            [dict(s) for s in raw if isinstance(s, Mapping)] if isinstance(raw, list) else []
        )
        return cls(
            tool_use_id=text("tool_use_id"),
            suggestions=suggestions,
            decision_reason=request.get("decision_reason"),
            blocked_path=text("blocked_path"),
            agent_id=text("agent_id"),
            title=text("title"),
            display_name=text("display_name"),
            description=text("description"),
            signal=signal if signal is not None else AbortSignal(),
            request=dict(request),
        )


# ---------------------------------------------------------------------------
# Hook matchers
# ---------------------------------------------------------------------------


def _hook_list(value: HookCallback | Iterable[HookCallback]) -> tuple[HookCallback, ...]:
    items = (value,) if callable(value) else tuple(value)
    for item in items:
        if not callable(item):
            raise TypeError(f"hooks must be callables, got {item!r}")
    return items


def _timeout(_inst: object, _attr: attrs.Attribute[float | None], value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"HookMatcher timeout must be positive seconds, got {value!r}")


def _where(_inst: object, _attr: attrs.Attribute[str], value: str) -> None:
    if value not in ("local", "remote"):
        raise ValueError(f"HookMatcher where must be 'local' or 'remote', got {value!r}")


def _matcher(_inst: object, _attr: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"HookMatcher matcher must be a string or None, got {value!r}")


@attrs.frozen
class HookMatcher:
    """Hooks for the tools whose names match ``matcher`` (one entry of an event's list).

    The CLI does the matching: ``matcher`` is a tool name, ``"A|B"``, or a
    regular expression as the CLI understands it; ``None`` matches everything.

    Attributes:
        matcher: which tools (``None``: all).
        hooks: the callbacks, run in order by the CLI.
        timeout: seconds each callback may take (the CLI cancels it after
            that; the dispatcher enforces it too). ``None``: the session's
            ``callback_timeout``.
        where: ``"local"`` (run in this process) or ``"remote"`` (with the
            Node adapter, run on the node that runs the CLI).
    """

    matcher: str | None = attrs.field(default=None, validator=_matcher)
    hooks: tuple[HookCallback, ...] = attrs.field(factory=tuple, converter=_hook_list)
    timeout: float | None = attrs.field(default=None, validator=_timeout)
    where: Literal["local", "remote"] = attrs.field(default="local", validator=_where)


# ---------------------------------------------------------------------------
# Hook outputs
# ---------------------------------------------------------------------------


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def _plain_permissions(value: Iterable[Any] | None) -> list[Any] | None:
    if value is None:
        return None
    out = []
    for item in value:
        to_dict = getattr(item, "to_dict", None)
        out.append(to_dict() if callable(to_dict) else item)
    return out


@attrs.frozen
class HookResponse:
    """A hook's answer, turned into the wire shape for the event it runs for.

    Made by the shorthands :func:`ok`, :func:`allow`, :func:`deny`,
    :func:`ask`, :func:`block` and :func:`halt`.

    Attributes:
        action: what to do.
        reason: why (shown to the model or the user, per event).
        updated_input: replacement tool input (``allow`` on ``PreToolUse`` /
            ``PermissionRequest``).
        updated_permissions: permission updates (``allow`` on ``PermissionRequest``).
        interrupt: stop the agent too (``deny`` on ``PermissionRequest``).
        additional_context: text added to the model's context.
        system_message: a message shown to the user.
        suppress_output: hide the hook's output from the transcript.
    """

    action: HookAction
    reason: str | None = None
    updated_input: dict[str, Any] | None = None
    updated_permissions: list[Any] | None = None
    interrupt: bool = False
    additional_context: str | None = None
    system_message: str | None = None
    suppress_output: bool | None = None

    def to_wire(self, event: str) -> dict[str, Any]:
        """The hook output object for ``event``.

        Args:
            event: the hook event the callback ran for.

        Returns:
            The dict to send as the ``hook_callback`` answer.

        Raises:
            HookOutputError: the action or a field does not apply to ``event``.
        """
        out: dict[str, Any] = {}
        specific: dict[str, Any] = {"hookEventName": event}
        action = self.action
        if action == "block" and event in ("PreToolUse", "PermissionRequest"):
            action = "deny"
        if action in ("allow", "deny", "ask"):
            if event == "PreToolUse":
                specific["permissionDecision"] = action
                _put(specific, "permissionDecisionReason", self.reason)
                _put(specific, "updatedInput", self.updated_input)
                if self.updated_permissions is not None or self.interrupt:
                    raise HookOutputError(
                        "updated_permissions/interrupt apply to PermissionRequest hooks only"
                    )
            elif event == "PermissionRequest" and action != "ask":
                decision: dict[str, Any] = {"behavior": action}
                if action == "allow":
                    _put(decision, "updatedInput", self.updated_input)
                    _put(
                        decision, "updatedPermissions", _plain_permissions(self.updated_permissions)
                    )
                else:
                    decision["message"] = self.reason or ""
                    if self.interrupt:
                        decision["interrupt"] = True
                specific["decision"] = decision
            else:
                where = "PreToolUse" if action == "ask" else "PreToolUse and PermissionRequest"
                raise HookOutputError(
                    f"{action}() applies to {where} hooks only, not {event} (use block() or halt())"
                )
        elif action == "block":
            out["decision"] = "block"
            _put(out, "reason", self.reason)
        elif action == "halt":
            out["continue"] = False
            _put(out, "stopReason", self.reason)
        if self.additional_context is not None:
            if event not in ADDITIONAL_CONTEXT_EVENTS:
                raise HookOutputError(f"{event} hooks cannot add additional_context")
            specific["additionalContext"] = self.additional_context
        _put(out, "systemMessage", self.system_message)
        _put(out, "suppressOutput", self.suppress_output)
        if len(specific) > 1:
            out["hookSpecificOutput"] = specific
        return out


def ok(
    *,
    additional_context: str | None = None,
    system_message: str | None = None,
    suppress_output: bool | None = None,
) -> HookResponse:
    """No decision, optionally with context for the model or a message for the user.

    Args:
        additional_context: text added to the model's context (events in
            :data:`ADDITIONAL_CONTEXT_EVENTS`).
        system_message: a message shown to the user.
        suppress_output: hide the hook's output from the transcript.

    Returns:
        The hook response.
    """
    return HookResponse(
        "ok",
        additional_context=additional_context,
        system_message=system_message,
        suppress_output=suppress_output,
    )


def allow(
    reason: str | None = None,
    *,
    updated_input: Mapping[str, Any] | None = None,
    updated_permissions: Iterable[Any] | None = None,
    additional_context: str | None = None,
    system_message: str | None = None,
) -> HookResponse:
    """Allow the tool call (``PreToolUse``, ``PermissionRequest``), skipping the permission prompt.

    Args:
        reason: why (shown to the user).
        updated_input: run the tool with this input instead.
        updated_permissions: permission updates to apply (``PermissionRequest``).
        additional_context: text added to the model's context.
        system_message: a message shown to the user.

    Returns:
        The hook response.
    """
    return HookResponse(
        "allow",
        reason,
        updated_input=dict(updated_input) if updated_input is not None else None,
        updated_permissions=list(updated_permissions) if updated_permissions is not None else None,
        additional_context=additional_context,
        system_message=system_message,
    )


def deny(
    reason: str | None = None,
    *,
    interrupt: bool = False,
    additional_context: str | None = None,
    system_message: str | None = None,
) -> HookResponse:
    """Deny the tool call (``PreToolUse``, ``PermissionRequest``); the reason reaches the model.

    Args:
        reason: why (the model sees it as the tool's error).
        interrupt: also stop the agent (``PermissionRequest`` only).
        additional_context: text added to the model's context.
        system_message: a message shown to the user.

    Returns:
        The hook response.
    """
    return HookResponse(
        "deny",
        reason,
        interrupt=interrupt,
        additional_context=additional_context,
        system_message=system_message,
    )


def ask(reason: str | None = None, *, system_message: str | None = None) -> HookResponse:
    """Ask for permission (``PreToolUse``): the CLI goes on to its permission prompt.

    With ``can_use_tool`` set, that prompt is a ``can_use_tool`` call whose
    context carries ``reason`` as ``decision_reason``.

    Args:
        reason: why.
        system_message: a message shown to the user.

    Returns:
        The hook response.
    """
    return HookResponse("ask", reason, system_message=system_message)


def block(
    reason: str,
    *,
    additional_context: str | None = None,
    system_message: str | None = None,
) -> HookResponse:
    """Block: refuse a prompt, report back after a tool, or keep the agent from stopping.

    ``UserPromptSubmit``: the prompt is not sent. ``PostToolUse``: the
    reason is fed to the model. ``Stop``/``SubagentStop``: the agent goes on
    with ``reason`` as its instruction. ``PreToolUse``: same as :func:`deny`.

    Args:
        reason: why (shown to the model or the user, per event).
        additional_context: text added to the model's context.
        system_message: a message shown to the user.

    Returns:
        The hook response.
    """
    return HookResponse(
        "block", reason, additional_context=additional_context, system_message=system_message
    )


def halt(reason: str | None = None, *, system_message: str | None = None) -> HookResponse:
    """Stop the agent (``continue: false``) on any event; the turn ends.

    Args:
        reason: the stop reason (shown to the user).
        system_message: a message shown to the user.

    Returns:
        The hook response.
    """
    return HookResponse("halt", reason, system_message=system_message)


_RENAMES: Final = {"continue_": "continue", "async_": "async"}


def hook_output(value: Any, event: str) -> dict[str, Any]:
    """Turn what a hook returned into the ``hook_callback`` answer.

    Args:
        value: ``None``, a :class:`HookResponse`, or a hook-output dict.
        event: the event the hook ran for.

    Returns:
        The wire dict (``{}`` for no opinion).

    Raises:
        HookOutputError: the value cannot be sent for this event.
    """
    if value is None:
        return {}
    if isinstance(value, HookResponse):
        return value.to_wire(event)
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise HookOutputError("hook output keys must be strings")
        out: dict[str, Any] = {_RENAMES.get(k) or k: v for k, v in value.items()}
        try:
            json.dumps(out, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise HookOutputError(f"hook output is not JSON-serialisable: {exc}") from None
        return out
    raise HookOutputError(
        f"a hook returned {type(value).__name__}; return None, a dict, or "
        "claudecode.allow()/deny()/ask()/block()/halt()/ok()"
    )


# ---------------------------------------------------------------------------
# can_use_tool results
# ---------------------------------------------------------------------------


@attrs.frozen
class Allow:
    """``can_use_tool`` result: run the tool.

    Attributes:
        updated_input: run it with this input instead (``None``: as asked).
        updated_permissions: permission updates to apply (e.g. some of
            ``context.suggestions``), as wire dicts or objects with ``to_dict()``.
    """

    updated_input: dict[str, Any] | None = None
    updated_permissions: list[Any] | None = None

    def to_wire(self, original_input: Mapping[str, Any]) -> dict[str, Any]:
        """The ``can_use_tool`` answer.

        Args:
            original_input: the input the CLI asked about (sent back when not updated).

        Returns:
            ``{"behavior": "allow", "updatedInput": ..., "updatedPermissions"?: [...]}``.
        """
        out: dict[str, Any] = {
            "behavior": "allow",
            "updatedInput": dict(
                self.updated_input if self.updated_input is not None else original_input
            ),
        }
        _put(out, "updatedPermissions", _plain_permissions(self.updated_permissions))
        return out


@attrs.frozen
class Deny:
    """``can_use_tool`` result: do not run the tool.

    Attributes:
        message: why (the model sees it as the tool's error).
        interrupt: also stop the agent (the turn ends).
    """

    message: str = ""
    interrupt: bool = False

    def to_wire(self) -> dict[str, Any]:
        """The ``can_use_tool`` answer.

        Returns:
            ``{"behavior": "deny", "message": ..., "interrupt": bool}``.
        """
        return {"behavior": "deny", "message": self.message, "interrupt": self.interrupt}


def permission_result(value: Any, original_input: Mapping[str, Any]) -> dict[str, Any]:
    """Turn what ``can_use_tool`` returned into its wire answer.

    Args:
        value: :class:`Allow`, :class:`Deny`, or a wire dict with ``behavior``.
        original_input: the input the CLI asked about.

    Returns:
        The answer dict.

    Raises:
        HookOutputError: anything else (the dispatcher turns it into a denial).
    """
    if isinstance(value, Allow):
        return value.to_wire(original_input)
    if isinstance(value, Deny):
        return value.to_wire()
    if isinstance(value, Mapping) and value.get("behavior") in ("allow", "deny"):
        out = dict(value)
        if out["behavior"] == "allow":
            out.setdefault("updatedInput", dict(original_input))
        else:
            out.setdefault("message", "")
        try:
            json.dumps(out, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise HookOutputError(f"can_use_tool result is not JSON-serialisable: {exc}") from None
        return out
    raise HookOutputError(
        f"can_use_tool returned {type(value).__name__}; return claudecode.Allow(...) or "
        "claudecode.Deny(...)"
    )
