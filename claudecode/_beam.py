"""The term protocol a BEAM node (Erlang, Elixir) uses to drive a session.

A session is a GenServer, so any node can ``gen_server:call`` it — by pid,
``{Name, 'py@host'}``, or a pid found through ``otpy_global`` (see
docs/claudecode/distributed.md, "From Erlang and Elixir"):

- ``gen_server:call(S, {query, Prompt})`` (or ``{query, Prompt, Timeout}``)
  runs one turn and replies with its result message as a map
  (``#{'__struct__' => 'claudecode.ResultMessage', result => ..., ...}``), or
  ``{error, Reason}`` when the turn could not complete.
- ``gen_server:call(S, {stream, Prompt})`` replies ``{ok, Ref}`` at once; then
  the caller receives ``{claudecode, Ref, Message}`` for every message of the
  turn (maps as above), the last being the result, then
  ``{claudecode_done, Ref}`` — or ``{claudecode_error, Ref, Reason}``.

Each turn runs in a helper process on the session's node that consumes the
stream there and forwards it; it monitors the caller, so a caller that dies
(or its node) abandons the turn and the session interrupts the CLI, as for a
local consumer. ``Prompt`` is a binary (text) or a list of content blocks.
"""

from __future__ import annotations

from typing import Any, Final

import trio

import otpy
from otpy import Atom, Pid, Ref

__all__ = ["QUERY", "STREAM", "start_turn"]

QUERY: Final = Atom("query")
STREAM: Final = Atom("stream")
_OK: Final = Atom("ok")
_ERROR: Final = Atom("error")
_MESSAGE: Final = Atom("claudecode")
_DONE: Final = Atom("claudecode_done")
_FAILED: Final = Atom("claudecode_error")


def start_turn(session: Pid, request: tuple[Any, ...], caller: Any) -> Any:
    """Start a turn asked for by ``{query | stream, Prompt[, Timeout]}``.

    Args:
        session: the session's pid.
        request: the call's request.
        caller: the call's ``caller`` (pid and tag).

    Returns:
        What `handle_call` returns: `otpy.NoReply` (the helper replies), or an
        ``{error, badarg}`` reply for a malformed request.
    """
    if len(request) not in (2, 3) or not isinstance(request[1], str | list):
        return (_ERROR, Atom("badarg"))
    timeout = request[2] if len(request) == 3 else None
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        return (_ERROR, Atom("badarg"))
    otpy.spawn(_turn, session, request[0] is STREAM, request[1], timeout, caller)
    return otpy.NoReply


async def _turn(session: Pid, streaming: bool, prompt: Any, timeout: float | None,
                caller: Any) -> None:
    from claudecode._errors import StreamError
    from claudecode._stream import stream

    to: Pid = caller[0]
    watch = otpy.monitor(to)
    ref = _new_ref()
    if streaming:
        otpy.reply(caller, (_OK, ref))
    kwargs: dict[str, Any] = {} if timeout is None else {"timeout": float(timeout)}

    async def run(cancel: trio.CancelScope) -> None:
        result = None
        try:
            async with stream(session, prompt, **kwargs) as turn:
                async for message in turn:
                    if streaming:
                        otpy.send(to, (_MESSAGE, ref, message))
                    result = message
        except StreamError as exc:
            if streaming:
                otpy.send(to, (_FAILED, ref, exc.reason))
            else:
                otpy.reply(caller, (_ERROR, exc.reason))
            return
        finally:
            cancel.cancel()
        if streaming:
            otpy.send(to, (_DONE, ref))
        else:
            otpy.reply(caller, result)

    async def caller_gone(scope: trio.CancelScope) -> None:
        await otpy.receive(lambda m: isinstance(m, otpy.Down) and m.ref == watch)
        scope.cancel()  # the stream is abandoned: the session interrupts the turn

    async with trio.open_nursery() as nursery:
        nursery.start_soon(caller_gone, nursery.cancel_scope)
        await run(nursery.cancel_scope)


def _new_ref() -> Ref:
    from otpy._process import current

    node = current().node
    return Ref.make(node.name, node.creation)
