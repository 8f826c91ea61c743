"""The sandbox node: where the Claude Code CLI processes of remote sessions run.

``claudecode sandbox --name claude@HOST --workspace-root DIR --cookie-file PATH``
runs `serve`: a distributed otpy node that checks its CLI at start-up and
hosts one Port adapter process per remote session. Other nodes may call the
functions in `RPC_FUNCTIONS` by rpc, nothing else; they are what
`claudecode.adapters.Node` calls here and are not meant to be called directly.

The sandbox, not its callers, decides what runs (its `Policy`, fixed at
start): the CLI executable (``--cli-path``), the directory every session's
``cwd`` must lie in (``--workspace-root``, symlinks resolved), the
environment variables a caller may set (`DEFAULT_ALLOWED_ENV` plus
``--allow-env``; never those in `NEVER_ALLOWED_ENV`), the CLI flags (the
documented session options' flags, plus ``--allow-cli-flag``) and the
``where="remote"`` hooks it imports (``--allow-hook``). The cookie is never
put into a CLI's environment. docs/claudecode/distributed.md has the threat
model: what a holder of the cookie can and cannot do here.

A hosted adapter process is linked to its session on the app node. When the
app node goes away (or the connection drops) the link fires `NoConnection`
and the adapter shuts its CLI down: no CLI outlives its session.

With ``--max-clis N`` the sandbox runs a `claudecode.CLIBudget` and starts a
CLI only for a session holding one of its N slots (`capacity` tells the app
node where the budget is; a session takes a slot before it asks for a CLI,
and idle sessions are asked to hibernate when another needs one).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import trio

import otpy
from claudecode._callbacks import DEFAULT_CALLBACK_TIMEOUT, CallbackError, CallbackHandler
from claudecode._hooks import AbortSignal, HookMatcher
from claudecode._install import install_cli, resolve_cli
from claudecode._options import BASE_ARGS, Options, _inherited
from claudecode._protocol import CLIProtocol, ControlRequest, encode_line
from claudecode.adapters._base import ControlHandler
from claudecode.adapters._port import Launch, Port, port_main
from otpy.dist.rpc import check_allow_list, resolve

__all__ = [
    "DEFAULT_ALLOWED_ENV",
    "NEVER_ALLOWED_ENV",
    "RPC_FUNCTIONS",
    "Policy",
    "SandboxPolicyError",
    "capacity",
    "check_cli",
    "history",
    "make_workspace",
    "request_from_raw",
    "running_clis",
    "serve",
    "start_adapter",
]

logger = logging.getLogger("claudecode.sandbox")

#: The functions other nodes may call here by rpc (the node's whole rpc allow-list).
RPC_FUNCTIONS = ("capacity", "check_cli", "history", "make_workspace", "running_clis",
                 "start_adapter")

#: Environment variables a caller may set for its CLI without ``--allow-env``:
#: its own credentials, the variables the session options set, switches that
#: only turn CLI features off or bound them, and three directories (which, like
#: ``cwd``, must lie inside the workspace root, see `PATH_VARIABLES`).
DEFAULT_ALLOWED_ENV = frozenset({
    "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_ENTRYPOINT", "CLAUDE_AGENT_SDK_VERSION",
    "CLAUDE_CODE_ENABLE_SDK_FILE_CHECKPOINTING", "PWD",
    "DISABLE_TELEMETRY", "DISABLE_ERROR_REPORTING", "DISABLE_AUTOUPDATER",
    "DISABLE_NON_ESSENTIAL_MODEL_CALLS", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
    "CLAUDE_CODE_DISABLE_FEATURE_FLAGS", "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL",
    "CLAUDE_CODE_MAX_RETRIES", "CLAUDE_CODE_MAX_OUTPUT_TOKENS", "MAX_THINKING_TOKENS",
    "HOME", "CLAUDE_CONFIG_DIR", "TMPDIR",
})
#: Allowed variables that name a directory: each must resolve inside the workspace root.
PATH_VARIABLES = frozenset({"HOME", "CLAUDE_CONFIG_DIR", "TMPDIR", "PWD"})
#: Variables no caller may ever set (``--allow-env`` refuses them too): they
#: choose what code runs, or hold the cookie. Names starting with a prefix in
#: `NEVER_ALLOWED_PREFIXES` as well.
NEVER_ALLOWED_ENV = frozenset({
    "PATH", "NODE_OPTIONS", "NODE_PATH", "NODE_EXTRA_CA_CERTS", "BASH_ENV", "ENV", "SHELL",
    "IFS", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PERL5OPT", "PERL5LIB", "RUBYOPT",
    "GIT_SSH_COMMAND", "GIT_EXEC_PATH", "GIT_CONFIG_GLOBAL", "CLAUDE_CODE_SHELL_PREFIX",
    "CLAUDE_CODE_GIT_BASH_PATH", "OTPY_COOKIE", "SSL_CERT_FILE", "SSL_CERT_DIR",
})
NEVER_ALLOWED_PREFIXES = ("LD_", "DYLD_", "NODE_", "PYTHON", "GIT_CONFIG")

#: The CLI flags the documented session options produce (`to_cli_args`):
#: valued ones are passed as ``--flag=value``, the others bare.
CLI_FLAGS = frozenset({
    "--model", "--fallback-model", "--system-prompt", "--append-system-prompt", "--agent",
    "--max-thinking-tokens", "--thinking", "--effort", "--betas", "--max-turns",
    "--max-budget-usd", "--tools", "--allowedTools", "--disallowedTools", "--add-dir",
    "--permission-mode", "--permission-prompt-tool", "--allow-dangerously-skip-permissions",
    "--dangerously-skip-permissions", "--mcp-config", "--strict-mcp-config", "--resume",
    "--resume-session-at", "--continue", "--fork-session", "--from-pr",
    "--no-session-persistence", "--session-id", "--worktree", "--json-schema",
    "--include-partial-messages", "--include-hook-events", "--replay-user-messages",
    "--settings", "--setting-sources", "--plugin-dir", "--disable-slash-commands", "--file",
    "--debug", "--debug-file", "--system-prompt-file", "--task-budget", "--thinking-display",
    "--resume-drops-turn",
})


class SandboxPolicyError(ValueError):
    """A request the sandbox's policy refuses (the message says which rule)."""


def _env_name_allowed_ever(name: str) -> bool:
    return name not in NEVER_ALLOWED_ENV and not name.startswith(NEVER_ALLOWED_PREFIXES)


@attrs.frozen
class Policy:
    """What this sandbox runs, decided when it starts (never by a caller).

    Attributes:
        cli: the CLI executable (absolute, symlinks resolved).
        workspace_root: the directory every session's ``cwd`` lies in (resolved).
        allow_env: the environment variables a caller may set.
        allow_hooks: the ``where="remote"`` hooks a caller may name, as
            rpc allow-list entries (``module:function`` or ``module:*``).
        allow_cli_flags: CLI flags allowed beyond `CLI_FLAGS` (for ``extra_args``).
    """

    cli: str
    workspace_root: Path
    allow_env: frozenset[str] = DEFAULT_ALLOWED_ENV
    allow_hooks: tuple[str, ...] = ()
    allow_cli_flags: frozenset[str] = frozenset()
    _cookie: str = attrs.field(default="", repr=False, alias="cookie")

    @classmethod
    def make(cls, cli: str, workspace_root: str | os.PathLike[str], *,
             allow_env: Iterable[str] = (), allow_hooks: Iterable[str] = (),
             allow_cli_flags: Iterable[str] = (), cookie: str = "") -> Policy:
        """Check and build a policy.

        Args:
            cli: the CLI executable.
            workspace_root: an existing directory.
            allow_env: variables allowed in addition to `DEFAULT_ALLOWED_ENV`.
            allow_hooks: remote hooks allowed (``module:function`` / ``module:*``).
            allow_cli_flags: extra CLI flags allowed (``--flag``).
            cookie: the node's cookie (kept out of every CLI's environment).

        Returns:
            The policy.

        Raises:
            SandboxPolicyError: a forbidden variable, a malformed hook entry or
                flag, or a workspace root that is not a directory.
        """
        root = Path(workspace_root).expanduser().resolve()
        if not root.is_dir():
            raise SandboxPolicyError(f"--workspace-root {workspace_root} is not a directory")
        extra = frozenset(allow_env)
        for name in extra:
            if not name or "=" in name or not _env_name_allowed_ever(name):
                raise SandboxPolicyError(
                    f"--allow-env {name}: never allowed (it chooses what code runs, or holds "
                    "the cookie)")
        flags = frozenset(allow_cli_flags)
        for flag in flags:
            if not flag.startswith("--") or "=" in flag:
                raise SandboxPolicyError(f"--allow-cli-flag {flag}: not a '--flag'")
        try:
            hooks = check_allow_list(allow_hooks)
        except ValueError as err:
            raise SandboxPolicyError(f"--allow-hook: {err}") from None
        return cls(os.path.realpath(cli), root, DEFAULT_ALLOWED_ENV | extra, hooks, flags,
                   cookie=cookie)

    def workspace(self, cwd: Any) -> Path:
        """A session's working directory, resolved (symlinks included) and
        checked to lie inside the workspace root. A relative ``cwd`` is taken
        relative to the root.

        Raises:
            SandboxPolicyError: not a str, or outside the root.
        """
        return self._inside(cwd, "cwd")

    def _inside(self, value: Any, what: str) -> Path:
        if not isinstance(value, str) or not value or "\0" in value:
            raise SandboxPolicyError(f"{what} must be a path, not {type(value).__name__}")
        path = (self.workspace_root / value).resolve()
        if not path.is_relative_to(self.workspace_root):
            raise SandboxPolicyError(
                f"{what} {value!r} is outside the sandbox's workspace root "
                f"{self.workspace_root} (symlinks resolved)")
        return path

    def check_cli_path(self, cli_path: Any) -> None:
        """Refuse a caller's ``cli_path`` (the sandbox runs its own CLI)."""
        if cli_path is not None:
            raise SandboxPolicyError(
                f"cli_path: this sandbox runs its own CLI ({self.cli}, chosen with "
                "--cli-path when it started); a caller cannot choose another")

    def args(self, args: Any) -> list[str]:
        """The CLI arguments of a launch, checked: `BASE_ARGS`, then documented flags."""
        if not isinstance(args, list | tuple) or not all(isinstance(a, str) for a in args):
            raise SandboxPolicyError("args must be a list of str")
        checked: list[str] = list(args)
        if checked[:len(BASE_ARGS)] != list(BASE_ARGS):
            raise SandboxPolicyError(f"args must start with {' '.join(BASE_ARGS)}")
        for arg in checked[len(BASE_ARGS):]:
            flag = arg.partition("=")[0]
            if flag not in CLI_FLAGS and flag not in self.allow_cli_flags:
                raise SandboxPolicyError(
                    f"CLI flag {flag[:60]!r} is not one the session options produce (a sandbox "
                    "operator may allow it with --allow-cli-flag)")
        return checked

    def env(self, spec: Mapping[str, Any], cwd: Path) -> dict[str, str]:
        """The CLI's environment: the sandbox's own (narrowed by the caller's
        ``inherit_env``, never with the cookie), the caller's ``unset`` removed,
        then the caller's variables (each one allowed), then ``PWD``."""
        inherit = spec.get("inherit_env", "all")
        if inherit != "all":
            if not isinstance(inherit, list | tuple):
                raise SandboxPolicyError("inherit_env must be 'all' or a list")
            inherit = tuple(tuple(e) if isinstance(e, list) else e for e in inherit)
        env = _inherited(self.base_env(), inherit)
        for key in spec.get("unset") or ():
            env.pop(str(key), None)
        caller = spec.get("env") or {}
        if not isinstance(caller, Mapping):
            raise SandboxPolicyError("env must be a map")
        for key, value in caller.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise SandboxPolicyError("env keys and values must be str")
            if key not in self.allow_env:
                raise SandboxPolicyError(
                    f"environment variable {key[:60]!r} may not be set by a caller (allowed: "
                    "see claudecode.sandbox.DEFAULT_ALLOWED_ENV; an operator adds names with "
                    "--allow-env)")
            if key in PATH_VARIABLES:
                value = str(self._inside(value, f"${key}"))
            env[key] = value
        env["PWD"] = str(cwd)
        return env

    def base_env(self) -> dict[str, str]:
        """The sandbox's environment as a CLI may inherit it: without ``OTPY_COOKIE``
        and without any variable holding the cookie."""
        cookie = self._cookie
        return {k: v for k, v in os.environ.items()
                if k != "OTPY_COOKIE" and not (cookie and cookie in v)}

    def hook(self, ref: Any) -> Any:
        """The function a ``where="remote"`` hook reference names, if allowed."""
        module, _, name = ref.partition(":") if isinstance(ref, str) else ("", "", "")
        fn = resolve(self.allow_hooks, module, name) if module and name else None
        if fn is None:
            raise SandboxPolicyError(
                f"remote hook {str(ref)[:80]!r} is not allowed on this sandbox (an operator "
                "allows hooks with --allow-hook module:function)")
        return fn


_policy: Policy | None = None


def policy() -> Policy:
    """This sandbox's policy (set by `serve` before the node starts)."""
    if _policy is None:
        raise SandboxPolicyError("this node is not a sandbox (claudecode.sandbox.serve)")
    return _policy


#: Adapter processes hosted here (pruned when asked for the load).
_hosted: set[otpy.Pid] = set()
_port_config = Port()
#: The CLI budget of ``--max-clis`` (None: no limit), and its limit.
_budget: otpy.Pid | None = None
_max_clis: int | None = None


# --------------------------------------------------------------- rpc targets


def make_workspace(cwd: str) -> str:
    """Create the session's working directory here (like ``mkdir -p``), inside
    the sandbox's workspace root.

    Args:
        cwd: the directory (relative paths are taken from the workspace root).

    Returns:
        Its absolute path, symlinks resolved.

    Raises:
        SandboxPolicyError: it lies outside the workspace root.
    """
    rules = policy()
    path = rules.workspace(cwd)
    path.mkdir(parents=True, exist_ok=True)
    return str(rules.workspace(str(path)))  # again: nothing was swapped for a link meanwhile


def check_cli(cli_path: str | None = None) -> str:
    """The CLI executable this sandbox runs (raises ``CLINotFoundError`` if it is gone).

    Args:
        cli_path: must be None: the sandbox decides (``--cli-path``).

    Returns:
        The absolute path.
    """
    rules = policy()
    rules.check_cli_path(cli_path)
    return resolve_cli(rules.cli)


def running_clis() -> int:
    """How many adapter processes (one CLI each) run here now: the load."""
    for pid in [p for p in _hosted if not otpy.is_alive(p)]:
        _hosted.discard(pid)
    return len(_hosted)


def capacity() -> dict[str, Any]:
    """The load and the limit: ``{"running": n, "max": N | None, "budget": pid | None}``.

    ``budget`` is the `claudecode.CLIBudget` of ``--max-clis``: a session
    takes one of its slots before it asks for a CLI here.
    """
    return {"running": running_clis(), "max": _max_clis, "budget": _budget}


_HISTORY_FUNCTIONS = frozenset({"list_projects", "list_sessions", "read_session", "conversation",
                                "summary", "find_session_path", "list_subagents",
                                "subagent_info", "subagent_messages"})
#: Keyword arguments of the history functions a caller may give: paths, each
#: of which must lie inside the workspace root.
_HISTORY_PATH_KWARGS = ("config_dir", "project_path")


def history(function: str, args: list[Any], kwargs: Mapping[str, Any]) -> Any:
    """Run a `claudecode.History` function here (the transcripts live here).

    Typed results are returned as plain terms: messages as their raw dicts,
    attrs records as dicts.

    Args:
        function: ``list_projects``, ``list_sessions``, ``read_session``,
            ``conversation``, ``summary``, ``find_session_path``,
            ``list_subagents``, ``subagent_info`` or ``subagent_messages``.
        args: positional arguments.
        kwargs: keyword arguments: only ``config_dir`` and ``project_path``,
            which must lie inside the workspace root (without ``config_dir``,
            the sandbox's own config directory), and ``limit``.

    Returns:
        The result, as terms.
    """
    from claudecode._history import History

    if function not in _HISTORY_FUNCTIONS:
        raise ValueError(f"not a History function: {str(function)[:60]!r}")
    options = dict(kwargs)
    if set(options) - {*_HISTORY_PATH_KWARGS, "limit"}:
        raise SandboxPolicyError(
            "history takes only the keywords config_dir, project_path and limit")
    for key in _HISTORY_PATH_KWARGS:
        if options.get(key) is not None:
            options[key] = str(policy()._inside(options[key], key))
    limit = options.get("limit")
    if limit is not None and (type(limit) is not int or limit < 0):
        raise SandboxPolicyError("history: limit is a count (int >= 0) or None")
    return _plain(getattr(History, function)(*list(args), **options))


def _plain(value: Any) -> Any:
    raw = getattr(value, "raw", None)
    if isinstance(raw, dict) and raw:
        return raw
    if attrs.has(type(value)):
        return {k: _plain(v) for k, v in attrs.asdict(value, recurse=False).items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _gates(gates: Any) -> tuple[tuple[otpy.Pid, otpy.Ref], ...]:
    """A launch's CLI slots, checked: ``[[budget pid, token ref], ...]``; with
    ``--max-clis`` one of them must be this sandbox's budget."""
    if gates is None:
        gates = []
    if not isinstance(gates, list | tuple) or not all(
            isinstance(g, list | tuple) and len(g) == 2 and isinstance(g[0], otpy.Pid)
            and isinstance(g[1], otpy.Ref) for g in gates) or len(gates) > 4:
        raise SandboxPolicyError("gates must be a list of [budget pid, token ref] pairs")
    checked = tuple((g[0], g[1]) for g in gates)
    if _budget is not None and not any(budget == _budget for budget, _ in checked):
        raise SandboxPolicyError(
            f"this sandbox runs at most {_max_clis} CLIs (--max-clis): a start needs a slot "
            "of its CLI budget (see claudecode.sandbox.capacity)")
    return checked


async def start_adapter(session: otpy.Pid, spec: Mapping[str, Any],
                        proxy: otpy.Pid | None) -> otpy.Pid:
    """Start a Port adapter here for a session on another node.

    Every part of ``spec`` is checked against the sandbox's `Policy` first.

    Args:
        session: the session's pid (on the app node).
        spec: the launch, as plain terms (see `claudecode.adapters.Node`).
        proxy: the app node's callback proxy (None when the session has no
            local callbacks).

    Returns:
        The adapter process's pid; it links itself to ``session``.

    Raises:
        SandboxPolicyError: the policy refuses the launch.
    """
    rules = policy()
    if not isinstance(spec, Mapping) or not isinstance(session, otpy.Pid) or not (
            proxy is None or isinstance(proxy, otpy.Pid)):
        raise SandboxPolicyError("start_adapter(session pid, spec map, proxy pid or undefined)")
    rules.check_cli_path(spec.get("cli_path"))
    cwd = rules.workspace(spec.get("cwd"))
    args = rules.args(spec.get("args") or [])
    env = rules.env(spec, cwd)
    timeout = _positive(spec.get("callback_timeout") or DEFAULT_CALLBACK_TIMEOUT,
                        "callback_timeout")
    hooks = spec.get("hooks") or []
    if not isinstance(hooks, list) or not all(isinstance(h, Mapping) for h in hooks):
        raise SandboxPolicyError("hooks must be a list of maps")
    initialize = spec.get("initialize") or {}
    if not isinstance(initialize, Mapping):
        raise SandboxPolicyError("initialize must be a map")
    handler = _SandboxHandler(dict(initialize), proxy, _remote_hooks(rules, hooks, timeout),
                              timeout)
    launch = Launch(rules.cli, args, env, str(cwd),
                    int(_positive(spec.get("max_buffer_size"), "max_buffer_size")),
                    _positive(spec.get("control_timeout"), "control_timeout"), handler,
                    raw_messages=True, gates=_gates(spec.get("gates")))
    pid = otpy.spawn(_hosted_port, session, launch, trap_exits=True)
    _hosted.add(pid)
    logger.info("started a CLI for session %r (adapter %r, cwd %s)", session, pid, cwd)
    return pid


def _positive(value: Any, what: str) -> float:
    if type(value) not in (int, float) or not value > 0:
        raise SandboxPolicyError(f"{what} must be a positive number")
    return float(value)


async def _hosted_port(session: otpy.Pid, launch: Launch) -> None:
    otpy.link(session)  # the session's node going away stops this CLI
    await port_main(_port_config, session, launch)


# ----------------------------------------------------------- callbacks


def _placeholder(*_args: Any) -> None:
    raise RuntimeError("a local hook was called on the sandbox")


def _remote_hooks(rules: Policy, hooks: list[Any], timeout: float) -> CallbackHandler | None:
    """A handler for the ``where="remote"`` hooks, with the app's callback ids.

    The app node sends every hook in callback-id order (the local ones
    without a reference); rebuilding the same sequence here yields the same
    ids, and only the remote ones get a real function — one the sandbox's
    ``--allow-hook`` list names (`Policy.hook`).
    """
    if not any(h.get("ref") for h in hooks):
        return None
    by_event: dict[str, list[HookMatcher]] = {}
    for h in hooks:
        fn = rules.hook(h["ref"]) if h.get("ref") else _placeholder
        by_event.setdefault(str(h.get("event")), []).append(
            HookMatcher(matcher=h.get("matcher"), hooks=[fn], timeout=h.get("timeout"),
                        where="remote" if h.get("ref") else "local"))
    return CallbackHandler(Options.from_kwargs(hooks=by_event), where="remote",
                           callback_timeout=timeout)


def request_from_raw(raw: Mapping[str, Any]) -> ControlRequest:
    """Rebuild a typed control request from the CLI's raw line (after a node hop).

    Args:
        raw: the ``control_request`` object as the CLI sent it.

    Returns:
        The typed request.
    """
    proto = CLIProtocol()
    events = proto.feed(encode_line(dict(raw)))
    request = events[0] if events else None
    if not isinstance(request, ControlRequest):
        raise ValueError(f"not a control request: {raw!r}")
    return request


class _SandboxHandler:
    """Answers the CLI's control requests on the sandbox: remote hooks here,
    everything else through the app node's callback proxy."""

    def __init__(self, initialize: dict[str, Any], proxy: otpy.Pid | None,
                 remote: CallbackHandler | None, timeout: float) -> None:
        self.initialize = initialize
        self.proxy = proxy
        self.remote = remote
        self.timeout = timeout

    def initialize_payload(self) -> dict[str, Any]:
        return self.initialize

    async def handle(
        self, request: ControlRequest, *, signal: AbortSignal | None = None
    ) -> dict[str, Any]:
        if self.remote is not None and self.remote.serves(request):
            return await self.remote.handle(request, signal=signal)
        rid, subtype = request.request_id, request.subtype
        if self.proxy is None:
            raise CallbackError(rid, subtype, f"no host callback is registered for {subtype}")
        try:
            status, value = await otpy.call(self.proxy, ("handle", request.raw),
                                            timeout=self.timeout + 5.0)
        except otpy.CallError as err:
            raise CallbackError(rid, subtype, f"the callback on the app node failed: "
                                              f"{err.reason!r}") from None
        except trio.Cancelled:
            # The CLI withdrew the request (or the sandbox stops): the callback
            # runs on the app node, so its proxy cancels it there.
            reason = signal.reason if signal is not None else None
            otpy.send(self.proxy, ("cancel", rid, reason or "cancelled by the CLI"))
            raise
        if status == "ok":
            return dict(value)
        raise CallbackError(rid, subtype, str(value))


_: type[ControlHandler] = _SandboxHandler  # structural check


# ----------------------------------------------------------------- serve


@attrs.frozen
class _Rules:
    allow_env: tuple[str, ...]
    allow_hooks: tuple[str, ...]
    allow_cli_flags: tuple[str, ...]
    cookie: str = attrs.field(repr=False)
    max_clis: int | None = None


async def _main(install: bool, cli_path: str | None, workspace_root: str,
                rules: _Rules) -> None:
    global _policy, _budget, _max_clis
    try:
        cli = resolve_cli(cli_path)
    except Exception:
        if not install or cli_path is not None:
            raise
        cli = install_cli().path
    _policy = Policy.make(cli, workspace_root, allow_env=rules.allow_env,
                          allow_hooks=rules.allow_hooks, allow_cli_flags=rules.allow_cli_flags,
                          cookie=rules.cookie)
    if rules.max_clis is not None:
        from claudecode._budget import CLIBudget

        _budget = await CLIBudget.start_link(rules.max_clis)
        _max_clis = rules.max_clis
        logger.info("sandbox %s runs at most %d CLIs at once", otpy.node(), rules.max_clis)
    logger.info("sandbox %s ready: CLI %s, workspaces under %s; rpc allowed on %s only",
                otpy.node(), _policy.cli, _policy.workspace_root, ", ".join(RPC_FUNCTIONS))
    print(f"@@READY {otpy.node()}", flush=True)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            logger.info("sandbox %s stopping (%s): %d CLI(s) to shut down", otpy.node(),
                        signal.Signals(signum).name, running_clis())
            return


def serve(name: str, cookie: str, *, workspace_root: str, cli_path: str | None = None,
          allow_env: Iterable[str] = (), allow_hooks: Iterable[str] = (),
          allow_cli_flags: Iterable[str] = (), install: bool = False,
          max_clis: int | None = None, **node_options: Any) -> None:
    """Run a sandbox node until SIGTERM/SIGINT; then every hosted CLI is shut down.

    Args:
        name: the node name, ``claude@HOST``.
        cookie: the distribution cookie (never logged, never given to a CLI).
        workspace_root: the directory sessions' ``cwd`` must lie in.
        cli_path: the CLI to run (default: the pinned install, then ``claude`` on PATH).
        allow_env: variables a caller may set beyond `DEFAULT_ALLOWED_ENV`.
        allow_hooks: ``where="remote"`` hooks callers may use (``module:function``
            or ``module:*``, as an rpc allow-list).
        allow_cli_flags: CLI flags allowed beyond the documented options' (``extra_args``).
        install: install the pinned CLI if none is found (and no ``cli_path``).
        max_clis: run at most that many CLIs at once (a `claudecode.CLIBudget`
            shared by every session placed here; ``None``: no limit).
        **node_options: more `otpy.run` options (``epmd_port``, ``tls``, ...).

    Raises:
        SandboxPolicyError: a rule above is malformed or forbidden.
    """
    if max_clis is not None and (not isinstance(max_clis, int) or isinstance(max_clis, bool)
                                 or max_clis < 1):
        raise SandboxPolicyError(f"--max-clis must be a positive int, got {max_clis!r}")
    rules = _Rules(tuple(allow_env), tuple(allow_hooks), tuple(allow_cli_flags), cookie,
                   max_clis)
    Policy.make(cli_path or "/", workspace_root, allow_env=rules.allow_env,  # bad rules: now
                allow_hooks=rules.allow_hooks, allow_cli_flags=rules.allow_cli_flags)
    otpy.run(_main, install, cli_path, workspace_root, rules, node=name, cookie=cookie,
             rpc_allow=[f"{__name__}:{f}" for f in RPC_FUNCTIONS], **node_options)
