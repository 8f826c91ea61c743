"""The sandbox node: where the Claude Code CLI processes of remote sessions run.

``claudecode sandbox --name claude@HOST --cookie-file PATH`` runs `serve`: a
distributed otpy node that checks its CLI at start-up, allows rpc on this
module only, and hosts one Port adapter process per remote session. The
functions below are what `claudecode.adapters.Node` calls here by rpc; they
are not meant to be called directly.

A hosted adapter process is linked to its session on the app node. When the
app node goes away (or the connection drops) the link fires `NoConnection`
and the adapter shuts its CLI down: no CLI outlives its session.

With ``--max-clis N`` the sandbox runs a `claudecode.CLIBudget` and starts a
CLI only for a session holding one of its N slots (`capacity` tells the app
node where the budget is; a session takes a slot before it asks for a CLI,
and idle sessions are asked to hibernate when another needs one).
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio

import otpy
from claudecode._callbacks import DEFAULT_CALLBACK_TIMEOUT, CallbackError, CallbackHandler
from claudecode._hooks import AbortSignal, HookMatcher
from claudecode._install import install_cli, resolve_cli
from claudecode._options import Options, _inherited
from claudecode._protocol import CLIProtocol, ControlRequest, encode_line
from claudecode.adapters._base import ControlHandler
from claudecode.adapters._port import Launch, Port, port_main

__all__ = [
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

#: Adapter processes hosted here (pruned when asked for the load).
_hosted: set[otpy.Pid] = set()
_port_config = Port()
#: The CLI budget of ``--max-clis`` (None: no limit), and its limit.
_budget: otpy.Pid | None = None
_max_clis: int | None = None


# --------------------------------------------------------------- rpc targets


def make_workspace(cwd: str) -> str:
    """Create the session's working directory here (like ``mkdir -p``).

    Args:
        cwd: the directory.

    Returns:
        Its absolute path.
    """
    path = Path(cwd).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def check_cli(cli_path: str | None = None) -> str:
    """The CLI executable this sandbox will run (raises ``CLINotFoundError``).

    Args:
        cli_path: the session's ``cli_path`` option.

    Returns:
        The absolute path.
    """
    return resolve_cli(cli_path)


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


def history(function: str, args: list[Any], kwargs: Mapping[str, Any]) -> Any:
    """Run a `claudecode.History` function here (the transcripts live here).

    Typed results are returned as plain terms: messages as their raw dicts,
    attrs records as dicts.

    Args:
        function: ``list_projects``, ``list_sessions``, ``read_session``,
            ``conversation``, ``summary`` or ``find_session_path``.
        args: positional arguments.
        kwargs: keyword arguments.

    Returns:
        The result, as terms.
    """
    from claudecode._history import History

    allowed = {"list_projects", "list_sessions", "read_session", "conversation", "summary",
               "find_session_path"}
    if function not in allowed:
        raise ValueError(f"not a History function: {function!r}")
    return _plain(getattr(History, function)(*args, **dict(kwargs)))


def _plain(value: Any) -> Any:
    import attrs

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


async def start_adapter(session: otpy.Pid, spec: Mapping[str, Any],
                        proxy: otpy.Pid | None) -> otpy.Pid:
    """Start a Port adapter here for a session on another node.

    Args:
        session: the session's pid (on the app node).
        spec: the launch, as plain terms (see `claudecode.adapters.Node`).
        proxy: the app node's callback proxy (None when the session has no
            local callbacks).

    Returns:
        The adapter process's pid; it links itself to ``session``.
    """
    cli = resolve_cli(spec.get("cli_path"))
    inherit = spec.get("inherit_env", "all")
    inherit = inherit if inherit == "all" else tuple(
        tuple(e) if isinstance(e, list) else e for e in inherit)
    env = _inherited(os.environ, inherit)  # the session's inherit_env, applied here
    for key in spec.get("unset") or ():
        env.pop(key, None)
    env.update({str(k): str(v) for k, v in dict(spec.get("env") or {}).items()})
    gates = tuple((g[0], g[1]) for g in spec.get("gates") or ())
    if _budget is not None and not any(budget == _budget for budget, _ in gates):
        raise ValueError(f"this sandbox runs at most {_max_clis} CLIs (--max-clis): a start "
                         "needs a slot of its CLI budget (see claudecode.sandbox.capacity)")
    timeout = float(spec.get("callback_timeout") or DEFAULT_CALLBACK_TIMEOUT)
    handler = _SandboxHandler(dict(spec.get("initialize") or {}), proxy,
                              _remote_hooks(list(spec.get("hooks") or []), timeout), timeout)
    launch = Launch(cli, [str(a) for a in spec.get("args") or []], env, spec.get("cwd"),
                    int(spec["max_buffer_size"]), float(spec["control_timeout"]), handler,
                    raw_messages=True, gates=gates)
    pid = otpy.spawn(_hosted_port, session, launch, trap_exits=True)
    _hosted.add(pid)
    logger.info("started a CLI for session %r (adapter %r, cwd %s)", session, pid,
                spec.get("cwd"))
    return pid


async def _hosted_port(session: otpy.Pid, launch: Launch) -> None:
    otpy.link(session)  # the session's node going away stops this CLI
    await port_main(_port_config, session, launch)


# ----------------------------------------------------------- callbacks


def _placeholder(*_args: Any) -> None:
    raise RuntimeError("a local hook was called on the sandbox")


def _import(ref: str) -> Any:
    module, _, name = ref.partition(":")
    target: Any = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    return target


def _remote_hooks(hooks: list[Any], timeout: float) -> CallbackHandler | None:
    """A handler for the ``where="remote"`` hooks, with the app's callback ids.

    The app node sends every hook in callback-id order (the local ones
    without a reference); rebuilding the same sequence here yields the same
    ids, and only the remote ones get a real function.
    """
    if not any(h.get("ref") for h in hooks):
        return None
    by_event: dict[str, list[HookMatcher]] = {}
    for h in hooks:
        fn = _import(h["ref"]) if h.get("ref") else _placeholder
        by_event.setdefault(h["event"], []).append(
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


async def _main(install: bool, max_clis: int | None = None) -> None:
    global _budget, _max_clis
    try:
        cli = resolve_cli(None)
    except Exception:
        if not install:
            raise
        cli = install_cli().path
    if max_clis is not None:
        from claudecode._budget import CLIBudget

        _budget = await CLIBudget.start_link(max_clis)
        _max_clis = max_clis
        logger.info("sandbox %s runs at most %d CLIs at once", otpy.node(), max_clis)
    logger.info("sandbox %s ready: CLI %s; rpc allowed on claudecode.sandbox only",
                otpy.node(), cli)
    print(f"@@READY {otpy.node()}", flush=True)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            logger.info("sandbox %s stopping (%s): %d CLI(s) to shut down", otpy.node(),
                        signal.Signals(signum).name, running_clis())
            return


def serve(name: str, cookie: str, *, install: bool = False, max_clis: int | None = None,
          **node_options: Any) -> None:
    """Run a sandbox node until SIGTERM/SIGINT; then every hosted CLI is shut down.

    Args:
        name: the node name, ``claude@HOST``.
        cookie: the distribution cookie (never logged).
        install: install the pinned CLI if none is found.
        max_clis: run at most that many CLIs at once (a `claudecode.CLIBudget`
            shared by every session placed here).
        **node_options: more `otpy.run` options (``epmd_port``, ``tls``, ...).
    """
    otpy.run(_main, install, max_clis, node=name, cookie=cookie,
             rpc_allow=["claudecode.sandbox:*"], **node_options)
