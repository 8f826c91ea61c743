"""The Node adapter: the CLI runs on a sandbox node, the session stays here.

The session is an ordinary local GenServer; only its adapter process lives
on the sandbox (``claudecode sandbox``), started there by rpc and linked to
the session over the Erlang distribution connection. Messages from the CLI
arrive as raw dicts and are parsed here. Callbacks come home: in-process MCP
tools, ``can_use_tool`` and ``where="local"`` hooks run on this node in a
callback proxy process (started only when the session has such callbacks);
``where="remote"`` hooks run on the sandbox, imported there by reference.

CLI budgets: a sandbox started with ``--max-clis`` has a `claudecode.CLIBudget`;
`Node.aprepare` / `Pool.aprepare` learn where it is (``capacity``), the session
takes one of its slots before it asks for a CLI, and the sandbox's adapter
process claims it before spawning the CLI. `Pool` places a session on a
sandbox with room first.

Failure semantics: if the sandbox dies or the connection drops, the link
fires ``NoConnection`` on both sides — the streaming caller gets
``StreamError(NoConnection(...))`` and the session exits with that reason
(its supervisor restarts it); on the sandbox the adapter shuts its CLI down.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable
from typing import Any

import attrs
import trio

import otpy
from claudecode._budget import Gate
from claudecode._callbacks import DEFAULT_CALLBACK_TIMEOUT, CallbackHandler
from claudecode._errors import (
    CLINotFoundError,
    ConnectTimeoutError,
    NodeConnectFailedError,
    RPCFailedError,
)
from claudecode._hooks import AbortSignal
from claudecode._options import Options, build_hooks_config, sdk_mcp_servers, to_cli_args
from claudecode._options import to_cli_env as _to_cli_env
from claudecode.adapters._base import Adapter, answer, positive
from otpy import Pid

__all__ = ["Node", "Pool", "ResumeUnavailable", "launch_spec"]

logger = logging.getLogger("claudecode.adapter.node")
_SANDBOX = "claudecode.sandbox"


def _hook_ref(fn: Any) -> str:
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        raise ValueError(
            f"a where='remote' hook must be a module-level function importable on the sandbox, "
            f"not {fn!r}")
    return f"{module}:{qualname}"


def needs_proxy(options: Options) -> bool:
    """Whether the session has callbacks that must run on this node."""
    if options.can_use_tool is not None or sdk_mcp_servers(options):
        return True
    _, specs = build_hooks_config(options.hooks)
    return any(s.where != "remote" for s in specs)


def launch_spec(options: Options, callback_timeout: float) -> dict[str, Any]:
    """The launch of a session's CLI as plain terms, for the sandbox.

    Everything is computed here from the options except the executable, the
    base environment and the resolved working directory, which are the
    sandbox's own (its `claudecode.sandbox.Policy` checks the rest): the
    session's ``cli_path`` is not sent. The session's ``api_key`` travels in
    ``env`` (only to that CLI's environment).

    Args:
        options: the session options.
        callback_timeout: seconds a callback may take.

    Returns:
        The spec `claudecode.sandbox.start_adapter` takes.
    """
    handler = CallbackHandler(options, callback_timeout=callback_timeout)
    _, specs = build_hooks_config(options.hooks)
    return {
        "args": to_cli_args(options),
        "env": _to_cli_env(options, base_env={}),
        "inherit_env": options.inherit_env if options.inherit_env == "all"
        else [list(e) if isinstance(e, tuple) else e for e in options.inherit_env],
        "unset": [k for k, v in options.env.items() if v is None],
        "cwd": options.cwd,
        "max_buffer_size": options.max_buffer_size,
        "control_timeout": options.control_timeout,
        "initialize": handler.initialize_payload(),
        "callback_timeout": callback_timeout,
        "hooks": [
            {"event": s.event, "matcher": s.matcher, "timeout": s.timeout,
             "ref": _hook_ref(s.callback) if s.where == "remote" else None}
            for s in specs
        ],
    }


async def _proxy(options: Options, callback_timeout: float) -> None:
    """The callback proxy: answers the sandbox's callback calls, here, each in its
    own process; cancels one when the sandbox says the CLI withdrew it."""
    handler = CallbackHandler(options, where="local", callback_timeout=callback_timeout)
    me = otpy.self()
    running: dict[str, tuple[Pid, AbortSignal]] = {}  # CLI request id -> (answerer, signal)
    while True:
        msg = await otpy.receive()
        if type(msg) is not tuple:
            continue
        if len(msg) == 3 and msg[0] == otpy.Atom("$gen_call"):
            request = msg[2]
            if type(request) is tuple and len(request) == 2 and request[0] == "handle":
                raw = request[1]
                abort = AbortSignal()
                pid = otpy.spawn(_answer, me, handler, msg[1], raw, abort)
                running[str(raw.get("request_id"))] = (pid, abort)
        elif len(msg) == 3 and msg[0] == "cancel":
            entry = running.pop(msg[1], None)
            if entry is not None:
                entry[1].abort(str(msg[2]))  # before the callback sees Cancelled
                otpy.exit(entry[0], otpy.Kill())
        elif len(msg) == 3 and msg[0] == "done":
            entry = running.get(msg[1])
            if entry is not None and entry[0] == msg[2]:
                del running[msg[1]]


async def _answer(proxy: Pid, handler: CallbackHandler, caller: Any, raw: dict[str, Any],
                  abort: AbortSignal) -> None:
    from claudecode.sandbox import request_from_raw

    rid = str(raw.get("request_id"))
    result: tuple[str, Any]
    try:
        result = await answer(handler, request_from_raw(raw), abort)
    except Exception as exc:  # not a control request
        result = ("error", f"{type(exc).__name__}: {exc}")
    finally:
        otpy.send(proxy, ("done", rid, otpy.self()))
    otpy.reply(caller, result)


@attrs.frozen
class Node(Adapter):
    """Run the CLI on a sandbox node (``claudecode sandbox``); the session stays here.

    The app node must itself be distributed (``otpy.run(..., node=...)``).
    ``cwd`` is required: it is created on the sandbox, inside its workspace
    root. The sandbox runs the CLI it was started with (a session's
    ``cli_path`` is not used), and sets only the environment variables its
    policy allows.

    Attributes:
        node: the sandbox node, ``claude@host``.
        cookie: the sandbox's cookie, if it differs from this node's (never logged).
        connect_timeout: seconds to reach the sandbox.
        callback_timeout: seconds an MCP tool, hook or ``can_use_tool`` may
            take; over it that one tool call fails, not the session.
    """

    node: str
    cookie: str | None = attrs.field(default=None, repr=False)
    connect_timeout: float = attrs.field(default=5.0, validator=positive)
    callback_timeout: float = attrs.field(default=DEFAULT_CALLBACK_TIMEOUT, validator=positive)

    def prepare(self, options: Options) -> Any:
        from claudecode._protocol_errors import InvalidOptionError

        if options.cwd is None:
            raise InvalidOptionError("cwd", "the Node adapter needs a cwd (created on the "
                                            "sandbox)")
        if options.user is not None:
            raise InvalidOptionError("user", "the Node adapter runs the CLI as the sandbox's "
                                             "own user; start the sandbox as that user")
        _, specs = build_hooks_config(options.hooks)
        for spec in specs:
            if spec.where == "remote":
                try:
                    _hook_ref(spec.callback)
                except ValueError as err:
                    raise InvalidOptionError("hooks", str(err)) from None
        return None

    async def aprepare(self, options: Options, prepared: Any) -> Any:
        """Connect, create the workspace, check the sandbox's CLI (typed errors).

        Raises:
            ConnectTimeoutError / NodeConnectFailedError: the sandbox is unreachable.
            RPCFailedError: the workspace could not be created.
            CLINotFoundError: the sandbox has no CLI (with its message).
        """
        await self.connect()
        await self.rpc("make_workspace", [options.cwd], "creating the workspace")
        cli = await self.rpc("check_cli", [], "checking the CLI")
        load = await self.capacity()
        return _Prepared(cli, load.get("budget"))

    async def capacity(self) -> dict[str, Any]:
        """The sandbox's load and CLI limit (``claudecode.sandbox.capacity``):
        ``{"running": n, "max": N | None, "budget": pid | None}``."""
        try:
            load = await self.rpc("capacity", [], "reading the load", timeout=5.0)
        except RPCFailedError:  # a sandbox without budgets: its CLI count only
            load = {"running": await self.rpc("running_clis", [], "reading the load",
                                              timeout=5.0), "max": None, "budget": None}
        return dict(load)

    def cli_budget(self, prepared: Any) -> Any:
        """The sandbox's CLI budget (``--max-clis``), if it has one."""
        return prepared.budget if isinstance(prepared, _Prepared) else None

    async def connect(self) -> None:
        """Connect to the sandbox within ``connect_timeout``."""
        if otpy.node() == "nonode@nohost":
            raise NodeConnectFailedError(self.node)
        if self.cookie is not None:
            otpy.set_cookie(self.node, self.cookie)
        ok = False
        with trio.move_on_after(self.connect_timeout):
            ok = await otpy.connect(self.node)
            if not ok:
                raise NodeConnectFailedError(self.node)
        if not ok:
            raise ConnectTimeoutError(self.node, self.connect_timeout)

    async def rpc(self, function: str, args: list[Any], what: str,
                  timeout: float | None = None) -> Any:
        """Call ``claudecode.sandbox.<function>`` on the sandbox, with typed errors."""
        try:
            return await otpy.rpc.call(self.node, _SANDBOX, function, args,
                                       timeout=timeout or self.connect_timeout + 30.0)
        except otpy.rpc.RPCError as err:
            if _is_cli_not_found(err.reason):
                remote = _exc_message(err.reason).split(". Install the pinned CLI")[0]
                raise CLINotFoundError(f"on sandbox {self.node}: {remote}") from None
            raise RPCFailedError(self.node, what, err.reason) from None
        except otpy.CallError as err:
            raise RPCFailedError(self.node, what, err.reason) from None

    async def start(self, session: Pid, options: Options, prepared: Any,
                    gates: tuple[Gate, ...] = ()) -> Pid:
        await self.connect()
        spec = launch_spec(options, self.callback_timeout)
        if gates:
            spec["gates"] = [[budget, token] for budget, token in gates]
        proxy = None
        if needs_proxy(options):
            proxy = otpy.spawn(_proxy, options, self.callback_timeout, link=True)
        try:
            pid = await self.rpc("start_adapter", [session, spec, proxy], "starting the CLI")
        except BaseException:
            if proxy is not None:  # no CLI will call it: do not leak it
                otpy.unlink(proxy)
                otpy.exit(proxy, otpy.Kill())
            raise
        otpy.link(pid)
        logger.info("session %r: CLI running on %s (adapter %r)", session, self.node, pid)
        return pid  # type: ignore[no-any-return]

    async def history(self, prepared: Any, function: str, args: list[Any],
                      kwargs: dict[str, Any], context: dict[str, Any]) -> Any:
        """Run the :class:`~claudecode.History` function on the sandbox (the
        transcripts are there) and rebuild typed results here."""
        from claudecode._history import from_terms

        if kwargs.get("config_dir") is None and context.get("config_dir") is not None:
            kwargs = {**kwargs, "config_dir": context["config_dir"]}
        await self.connect()
        terms = await self.rpc("history", [function, args, kwargs], f"reading {function}")
        return from_terms(function, terms)

    def describe(self) -> str:
        return f"Node({self.node})"


async def _has_conversation(node: Node, options: Options) -> bool:
    """Whether the sandbox can resume ``options.resume`` (its transcript is there)."""
    env = options.env
    config_dir = env.get("CLAUDE_CONFIG_DIR")
    if config_dir is None and env.get("HOME"):
        config_dir = f"{env['HOME']}/.claude"
    try:
        await node.rpc("history", ["find_session_path", [options.resume, options.cwd],
                                   {"config_dir": config_dir}], "looking up the conversation")
    except RPCFailedError:
        return False
    return True


@attrs.frozen
class _Prepared:
    """What `Node.aprepare` found on the sandbox: its CLI, and its CLI budget."""

    cli: Any
    budget: Any = None


def _exc_message(reason: Any) -> str:
    # {'EXIT', {python_exception, Type, Message, Traceback}}
    try:
        return str(reason[1][2])
    except (TypeError, IndexError):
        return repr(reason)


def _is_cli_not_found(reason: Any) -> bool:
    try:
        return str(reason[1][0]) == "python_exception" and str(reason[1][1]) == "CLINotFoundError"
    except (TypeError, IndexError):
        return False


def _node_names(nodes: Iterable[str]) -> tuple[str, ...]:
    return tuple(nodes)


class ResumeUnavailable(Exception):
    """The chosen sandbox does not have the conversation a restart would resume."""


class _Placement:
    """The sandbox `Pool.aprepare` chose for one session.

    Until the session's CLI starts there (`Pool.start`) or the session ends
    (`Pool.release`), it counts as load on that sandbox, so a burst of new
    sessions spreads although their CLIs start lazily. A session killed outright
    (no ``terminate``) drops its placement with its state: the sets are weak.
    """

    __slots__ = ("__weakref__", "budget", "node")

    def __init__(self, node: str, budget: Any = None) -> None:
        self.node = node
        self.budget = budget  # the sandbox's CLI budget (``--max-clis``), if any


#: Unstarted placements per sandbox name, made by this node.
_placements: dict[str, weakref.WeakSet[_Placement]] = {}


def _reserve(node: str, budget: Any = None) -> _Placement:
    placement = _Placement(node, budget)
    _placements.setdefault(node, weakref.WeakSet()).add(placement)
    return placement


def _unreserve(placement: Any) -> None:
    if type(placement) is _Placement:
        held = _placements.get(placement.node)
        if held is not None:
            held.discard(placement)


def _reserved(node: str) -> int:
    """Sessions placed on ``node`` whose CLI has not started (and that still live)."""
    held = _placements.get(node)
    return len(held) if held is not None else 0


@attrs.frozen
class Pool(Adapter):
    """Place each session on the least-loaded live sandbox of a list.

    Load is the number of CLIs a sandbox runs now; nodes that cannot be
    reached are skipped; sandboxes at their ``--max-clis`` limit come last
    (a session placed on one waits for a slot there, or hibernates another
    session's idle CLI). A supervised session whose sandbox dies is
    restarted by its supervisor, lands on another node, and — with
    ``resume_on_restart`` — continues its conversation there (the sandboxes
    must share the session's ``cwd`` path and the CLI's history directory,
    e.g. one network file system mounted at the same place).

    Attributes:
        nodes: the sandbox nodes.
        strategy: ``"least_loaded"``.
        cookie / connect_timeout / callback_timeout: as for `Node`.
        resume_on_restart: resume the last conversation of the same session
            name when the session starts again.
    """

    nodes: tuple[str, ...] = attrs.field(converter=_node_names)
    strategy: str = attrs.field(default="least_loaded")
    cookie: str | None = attrs.field(default=None, repr=False)
    connect_timeout: float = attrs.field(default=5.0, validator=positive)
    callback_timeout: float = attrs.field(default=DEFAULT_CALLBACK_TIMEOUT, validator=positive)
    resume_on_restart: bool = True

    def __attrs_post_init__(self) -> None:
        if self.strategy != "least_loaded":
            raise ValueError(f"unknown placement strategy {self.strategy!r}")
        if not self.nodes:
            raise ValueError("a Pool needs at least one node")

    def _node(self, name: str) -> Node:
        return Node(name, self.cookie, self.connect_timeout, self.callback_timeout)

    def prepare(self, options: Options) -> Any:
        return self._node(self.nodes[0]).prepare(options)

    async def aprepare(self, options: Options, prepared: Any) -> Any:
        """Pick the least-loaded reachable sandbox and prepare the session there.

        Returns:
            The placement on the chosen node (a `_Placement`; its ``node`` is the name).

        Raises:
            NodeConnectFailedError: no sandbox could be reached.
        """
        loads: list[tuple[int, int | None, Any, int, str]] = []
        for i, name in enumerate(self.nodes):
            node = self._node(name)
            try:
                await node.connect()
                load = await node.capacity()
            except (ConnectTimeoutError, NodeConnectFailedError, RPCFailedError) as err:
                logger.warning("pool: skipping %s: %s", name, err)
                continue
            limit = load.get("max")
            loads.append((int(load["running"]), None if limit is None else int(limit),
                          load.get("budget"), i, name))
        if not loads:
            raise NodeConnectFailedError(",".join(self.nodes))
        # Loads were read with awaits in between: re-rank with the placements
        # made meanwhile, then reserve at once (no await before the increment),
        # so a burst of concurrent starts spreads instead of all seeing 0/0.
        # Sandboxes with room under their --max-clis come first.
        ranked = []
        for running, limit, budget, i, name in loads:
            total = running + _reserved(name)
            ranked.append((limit is not None and total >= limit, total, i, name, budget))
        _, _, _, chosen, budget = min(ranked, key=lambda r: r[:3])
        placement = _reserve(chosen, budget)
        node = self._node(chosen)
        try:
            await node.aprepare(options, None)
            if options.resume is not None and not await _has_conversation(node, options):
                raise ResumeUnavailable(chosen)
        except BaseException:
            _unreserve(placement)
            raise
        return placement

    async def start(self, session: Pid, options: Options, prepared: Any,
                    gates: tuple[Gate, ...] = ()) -> Pid:
        name = prepared.node if isinstance(prepared, _Placement) else self.nodes[0]
        _unreserve(prepared)  # from now on its CLI counts on the sandbox itself
        return await self._node(name).start(session, options, None, gates)

    def cli_budget(self, prepared: Any) -> Any:
        """The chosen sandbox's CLI budget (``--max-clis``), if it has one."""
        return prepared.budget if isinstance(prepared, _Placement) else None

    def release(self, prepared: Any) -> None:
        _unreserve(prepared)

    async def history(self, prepared: Any, function: str, args: list[Any],
                      kwargs: dict[str, Any], context: dict[str, Any]) -> Any:
        name = prepared.node if isinstance(prepared, _Placement) else self.nodes[0]
        return await self._node(name).history(None, function, args, kwargs, context)

    def describe(self) -> str:
        return f"Pool({', '.join(self.nodes)})"
