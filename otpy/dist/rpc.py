"""Remote procedure calls: ``otpy.rpc.call`` / ``cast`` and the ``rex`` server.

Every distributed otpy node runs ``rex`` (Erlang's name, so ``rpc:call`` from
an Erlang node works unchanged) and a minimal ``net_kernel`` (so
``net_adm:ping`` answers ``pong``).

On a Python node a request names a module by its dotted import path and a
function in it: ``rpc:call('py@host', 'json', dumps, [[1,2]])`` from Erlang,
``await otpy.rpc.call("py@host", "json", "dumps", [[1, 2]])`` from Python.
Only functions on the node's allow-list run (``rpc_allow=`` on
`otpy.open_node`: entries ``"module:function"``, a public name, or
``"module:*"``, the module's ``__all__`` or else the public functions defined
in it; private names, dunders and names a module imported are never
reached, see `resolve`). The default list is empty: a cookie is a shared password, not a sandbox, and a
Python node that ran any function it was sent would hand a shell to anyone
holding it. Refused or failing requests answer ``{badrpc, Reason}``, which
`call` raises as `RPCError`.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any

from otpy.dist._control import reason_to_term
from otpy.dist._show import show, show_name
from otpy._genserver import GEN_CALL, GEN_CAST, reply
from otpy._genserver import call as gen_call
from otpy._node import Node
from otpy._process import current, receive
from otpy._reasons import Crash, ProcessExit, TermReason
from otpy._terms import Atom

__all__ = ["RPCError", "call", "cast", "check_allow_list", "resolve", "spawn_target",
           "start_system_servers"]

logger = logging.getLogger("otpy.rpc")

_CALL = Atom("call")
_CAST = Atom("cast")
_BADRPC = Atom("badrpc")
_EXIT = Atom("EXIT")
_IS_AUTH = Atom("is_auth")
_YES = Atom("yes")


class RPCError(Exception):
    """An rpc failed on the remote side (``{badrpc, Reason}``); ``.reason`` is the term."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


async def call(node: str, module: str, function: str, args: Iterable[Any] = (),
               timeout: float | None = None) -> Any:
    """Run ``module:function(*args)`` on ``node`` and return its result.

    Works against Erlang nodes (``module`` is then an Erlang module) and
    Python nodes (a dotted import path; the function may be async).

    Args:
        node: the target node.
        module: module name.
        function: function name.
        args: the arguments.
        timeout: seconds (None: no limit, as Erlang's default).

    Returns:
        The result.

    Raises:
        RPCError: the remote side answered ``{badrpc, Reason}``.
        CallError: the node could not be reached (`NoConnection`) or timed out.
    """
    me = current().pid
    request = (_CALL, Atom(module), Atom(function), list(args), me)
    result = await gen_call(("rex", node), request, timeout)
    if type(result) is tuple and len(result) == 2 and result[0] is _BADRPC:
        raise RPCError(result[1])
    return result


def cast(node: str, module: str, function: str, args: Iterable[Any] = ()) -> None:
    """Run ``module:function(*args)`` on ``node`` without waiting for it."""
    proc = current()
    proc.node.send(("rex", node), (GEN_CAST, (_CAST, Atom(module), Atom(function),
                                              list(args), proc.pid)))


def check_allow_list(allow: Iterable[str]) -> tuple[str, ...]:
    """Check an rpc allow-list (``rpc_allow=`` of `otpy.open_node`).

    An entry is ``"module:function"`` (a public name: no leading underscore,
    so no private names and no dunders; no dots) or ``"module:*"``, which
    means the names in the module's ``__all__`` or, without one, the public
    functions defined in that module itself (never the names it imported).

    Args:
        allow: the entries.

    Returns:
        The entries as a tuple.

    Raises:
        ValueError: an entry has another form.
    """
    if isinstance(allow, str):
        raise ValueError("rpc_allow is a list of 'module:function' entries, not one string")
    entries = tuple(allow)
    for entry in entries:
        module, sep, function = entry.partition(":") if isinstance(entry, str) else ("", "", "")
        if not (sep and module and all(part.isidentifier() for part in module.split("."))):
            raise ValueError(f"rpc_allow entry {entry!r} is not 'module:function' or 'module:*'")
        if function != "*" and not _public(function):
            raise ValueError(
                f"rpc_allow entry {entry!r}: the function must be a public name (no leading "
                "underscore, no dots) or '*'")
    return entries


def _public(name: str) -> bool:
    return name.isidentifier() and not name.startswith("_")


def resolve(allow: Iterable[str], module: str, function: str) -> Callable[..., Any] | None:
    """The function ``module:function`` if the allow-list lets it run, else None.

    Private names and dunders are never reached, whatever the list says; with
    ``module:*`` only the module's ``__all__`` (or, without one, the public
    functions defined in it) are. The module is imported only once an entry
    names it.

    Args:
        allow: the checked allow-list (`check_allow_list`).
        module: the dotted module name from the request.
        function: the function name from the request.

    Returns:
        The callable, or None when it is not allowed or not there.
    """
    if not _public(function):
        return None
    exact = star = False
    for entry in allow:
        mod, _, fn = entry.partition(":")
        if mod == module:
            exact = exact or fn == function
            star = star or fn == "*"
    if not (exact or star):
        return None
    try:
        mod_obj = importlib.import_module(module)
    except ImportError:
        return None
    target = vars(mod_obj).get(function)  # no module __getattr__, no inherited attributes
    if target is None or not callable(target):
        return None
    if not exact:
        exported = getattr(mod_obj, "__all__", None)
        if exported is not None:
            if function not in exported:
                return None
        elif not (inspect.isfunction(target) and target.__module__ == mod_obj.__name__):
            return None
    return target


async def _apply(allow: Iterable[str], request: Any) -> Any:
    if not (type(request) is tuple and len(request) >= 4 and request[0] in (_CALL, _CAST)):
        return (_BADRPC, (Atom("bad_request"), request))
    _, mod, fn, args = request[:4]
    module, function = str(mod), str(fn)
    target = resolve(allow, module, function)
    if target is None:
        _refused(module, function)
        return (_BADRPC, (_EXIT, (Atom("not_allowed"), mod, fn)))
    try:
        result = target(*(args if isinstance(args, list) else [args]))
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        return (_BADRPC, (_EXIT, reason_to_term(Crash(exc))))
    return result


class _NotAllowed(Exception):
    pass


def _refused(module: str, function: str) -> None:
    logger.warning("rpc refused: %s:%s is not on this node's allow-list", show_name(module),
                   show_name(function))


async def _call_mfa(allow: Iterable[str], module: str, function: str, args: list[Any]) -> Any:
    target = resolve(allow, module, function)
    if target is None:
        _refused(module, function)
        raise _NotAllowed(module, function)
    result = target(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


async def _erpc_execute_call(allow: tuple[str, ...], res: Any, mod: Atom, fn: Atom,
                             args: list[Any]) -> None:
    # erpc:execute_call/4: exit with {Res, return, Value} or {Res, exit, Reason}.
    try:
        value = await _call_mfa(allow, str(mod), str(fn), args)
        reason: Any = (res, Atom("return"), value)
    except _NotAllowed:
        reason = (res, _EXIT_ATOM, (Atom("not_allowed"), mod, fn))
    except Exception as exc:
        reason = (res, _EXIT_ATOM, reason_to_term(Crash(exc)))
    raise ProcessExit(TermReason(reason))


async def _erpc_execute_cast(allow: tuple[str, ...], mod: Atom, fn: Atom,
                             args: list[Any]) -> None:
    try:
        await _call_mfa(allow, str(mod), str(fn), args)
    except Exception as exc:
        logger.warning("rpc cast %s:%s failed: %s", show_name(str(mod)), show_name(str(fn)),
                       show(exc))


_EXIT_ATOM = Atom("exit")
_ERPC = Atom("erpc")


def spawn_target(allow: Iterable[str], mfa: Any, args: Any) -> Any:
    """What to run for a remote spawn request of ``{M, F, Arity}`` with ``args``.

    Returns:
        ``(body, body_args)``, or an error atom for the spawn reply.
    """
    allow = tuple(allow)
    if not (type(mfa) is tuple and len(mfa) == 3 and isinstance(args, list)):
        return Atom("badarg")
    mod, fn, _arity = mfa
    if mod is _ERPC and fn is Atom("execute_call") and len(args) == 4:
        return (_erpc_execute_call, (allow, *args))
    if mod is _ERPC and fn is Atom("execute_cast") and len(args) == 3:
        return (_erpc_execute_cast, (allow, *args))
    if type(mod) is not Atom or type(fn) is not Atom:
        return Atom("badarg")
    body = resolve(allow, mod.name, fn.name)
    if body is None:
        _refused(mod.name, fn.name)
        return Atom("notsup")
    return (body, tuple(args))


async def _rex(allow: tuple[str, ...]) -> None:
    node = current().node
    while True:
        msg = await receive()
        if type(msg) is tuple and len(msg) == 3 and msg[0] is GEN_CALL:
            node.spawn(_rex_call, (allow, msg[1], msg[2]), parent=None)
        elif type(msg) is tuple and len(msg) == 2 and msg[0] is GEN_CAST:
            node.spawn(_apply, (allow, msg[1]), parent=None)


async def _rex_call(allow: tuple[str, ...], caller: Any, request: Any) -> None:
    reply(caller, await _apply(allow, request))


async def _net_kernel() -> None:
    while True:
        msg = await receive()
        if type(msg) is tuple and len(msg) == 3 and msg[0] is GEN_CALL:
            request = msg[2]
            if type(request) is tuple and request and request[0] is _IS_AUTH:
                reply(msg[1], _YES)
            else:
                reply(msg[1], TermReason(Atom("not_supported")).term)


def start_system_servers(node: Node, allow: Iterable[str]) -> None:
    """Spawn ``rex`` and ``net_kernel`` on a distributed node."""
    node.spawn(_rex, (check_allow_list(allow),), name="rex")
    node.spawn(_net_kernel, (), name="net_kernel")
    if node.dist is not None:
        node.spawn(node.dist.globals.serve, (), name="otpy_global")
