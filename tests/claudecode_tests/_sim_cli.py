"""A simulated CLI behind the real adapter interface, for property tests on virtual time.

`SimCLI` is an ordinary `claudecode.adapters.Adapter`: sessions start it,
talk to it with the adapter messages of `claudecode.adapters._base`, and it
claims its budget's slots with `claudecode._budget.claim_gates` exactly as
the Port adapter does. What it runs instead of the Claude Code CLI is a
process that answers on trio's clock (so a `MockClock` drives thousands of
arrivals, turns, hibernations and kills in milliseconds), keeps each
conversation on a simulated disk (`World.disk`: session id -> messages so
far), and resumes one when started with ``resume``, as the real CLI does:
the reply ``"<session id>#<N>"`` counts the conversation's messages.

`World` records every "CLI" alive: it is entered after the claim and left
in the adapter process's ``finally`` (before its exit is visible to
anyone), so a violation of the budget is caught at the moment it happens.
"""

from __future__ import annotations

import uuid
from typing import Any

import attrs
import trio

import otpy
from claudecode._budget import Gate, claim_gates
from claudecode._errors import CLIExited
from claudecode._options import Options
from claudecode.adapters._base import ADAPTER_TAG, Adapter
from otpy import Exit, Pid, ProcessExit

__all__ = ["SimCLI", "World"]


@attrs.define(eq=False)
class World:
    """What the simulated CLIs share: the limit to check, who is alive, the disk."""

    capacity: int | None = None
    start_delay: float = 0.5
    turn_delay: float = 1.0
    stop_delay: float = 0.1
    live: set[Pid] = attrs.Factory(set)
    peak: int = 0
    starts: int = 0
    resumed: int = 0
    violations: list[str] = attrs.Factory(list)
    disk: dict[str, int] = attrs.Factory(dict)
    started_for: list[Pid] = attrs.Factory(list)  # the sessions, in CLI start order

    def enter(self, pid: Pid, session: Pid) -> None:
        self.live.add(pid)
        self.started_for.append(session)
        self.starts += 1
        self.peak = max(self.peak, len(self.live))
        if self.capacity is not None and len(self.live) > self.capacity:
            self.violations.append(f"{len(self.live)} CLIs alive (limit {self.capacity}) at "
                                   f"t={trio.current_time():.3f}")


@attrs.frozen
class SimCLI(Adapter):
    """An adapter whose "CLI" is simulated (see the module docs)."""

    world: World

    def prepare(self, options: Options) -> Any:
        return "sim"

    async def start(self, session: Pid, options: Options, prepared: Any,
                    gates: tuple[Gate, ...] = ()) -> Pid:
        return otpy.spawn(_sim_main, self.world, session, options, gates, link=True,
                          trap_exits=True)

    @property
    def shutdown_bound(self) -> float:
        return 1.0


class _Stop(Exception):
    pass


async def _sim_main(world: World, session: Pid, options: Options,
                    gates: tuple[Gate, ...]) -> None:
    me = otpy.self()
    if gates:
        await claim_gates(gates, me)
    world.enter(me, session)
    try:
        await _run(world, session, options, me)
    except _Stop:
        pass
    finally:
        world.live.discard(me)
    raise ProcessExit(otpy.Shutdown())


async def _wait(session: Pid, seconds: float) -> list[Any]:
    """Let ``seconds`` pass; return the messages that came meanwhile (a stop ends it)."""
    deadline = trio.current_time() + seconds
    got: list[Any] = []
    while True:
        left = deadline - trio.current_time()
        if left <= 0:
            return got
        try:
            msg = await otpy.receive(timeout=left)
        except otpy.Timeout:
            return got
        if type(msg) is Exit and msg.pid == session:
            raise _Stop
        got.append(msg)


async def _run(world: World, session: Pid, options: Options, me: Pid) -> None:
    if options.resume is not None:
        if options.resume not in world.disk:
            raise ProcessExit(CLIExited(1, f"No conversation found with session ID: "
                                           f"{options.resume}"))
        sid = options.resume
        world.resumed += 1
    else:
        sid = str(uuid.uuid4())
    pending = await _wait(session, world.start_delay)
    otpy.send(session, (ADAPTER_TAG, me, "ready", {"os_pid": None, "initialize": {}}))
    while True:
        while not pending:
            msg = await otpy.receive()
            if type(msg) is Exit and msg.pid == session:
                await _wait(session, world.stop_delay)
                raise _Stop
            pending.append(msg)
        msg = pending.pop(0)
        if type(msg) is not tuple or len(msg) < 2 or msg[0] != ADAPTER_TAG:
            continue
        if msg[1] == "query":
            otpy.send(session, (ADAPTER_TAG, me, "message", {
                "type": "system", "subtype": "init", "session_id": sid}))
            pending += await _wait(session, world.turn_delay)
            count = world.disk.get(sid, 0) + 2
            world.disk[sid] = count
            text = f"{sid}#{count}"
            otpy.send(session, (ADAPTER_TAG, me, "message", {
                "type": "assistant", "session_id": sid,
                "message": {"role": "assistant", "model": "sim",
                            "content": [{"type": "text", "text": text}]}}))
            otpy.send(session, (ADAPTER_TAG, me, "message", {
                "type": "result", "subtype": "success", "is_error": False, "result": text,
                "session_id": sid, "num_turns": 1, "duration_ms": 1}))
        elif msg[1] == "control":
            _, _, ref, _subtype, _payload, reply_to = msg
            otpy.send(reply_to, (ADAPTER_TAG, me, "control_result", ref, "ok", {}))
