"""Helpers shared by the ported OTP suites: the children OTP's tests use.

`Child` plays ``supervisor_1`` (a gen_server child that traps exits, stops
with ``died`` on ``die``, with ``normal`` on ``stop``, and can block its loop
with ``("sleep", t)``); `terminate` is the suites' ``terminate/4`` helper.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

import otpy
from otpy import ChildSpec, Down, Exit, Supervisor

DIED = otpy.TermReason("died")


class Child(otpy.GenServer):
    """supervisor_1: a worker that traps exits, like OTP's test child."""

    trap_exits = True

    async def init(self, mode: str = "normal") -> None:
        if mode != "normal":
            # supervisor_1:init/1 has no clause for it: function_clause.
            raise otpy.Stop(otpy.TermReason(("function_clause", mode)))

    async def handle_call(self, request: Any, caller: Any) -> Any:
        return request

    async def handle_cast(self, request: Any) -> None:
        if request == "restart":  # supervisor_deadlock:restart_child/0
            raise otpy.Stop(otpy.TermReason("error"))

    async def handle_info(self, message: Any) -> None:
        if message == "die":
            raise otpy.Stop(DIED)
        if message == "stop":
            raise otpy.Stop(otpy.Normal())
        if type(message) is tuple and message[0] == "sleep":
            await trio.sleep(message[1])
        elif type(message) is Exit and isinstance(message.reason, otpy.Shutdown):
            raise otpy.Stop(message.reason)


async def start_child() -> otpy.Pid:
    """supervisor_1:start_child/0."""
    return await Child.start_link()


class ErrorOnRestart:
    """supervisor_1:start_child(error): the first start works, every later
    one fails (init has no clause for ``error``)."""

    def __init__(self) -> None:
        self.started = False

    async def __call__(self) -> otpy.Pid:
        if not self.started:
            self.started = True
            return await Child.start_link()
        return await Child.start_link("error")


class IgnoreFirst:
    """supervisor_1:start_child(ignore): ignore the first start, then start."""

    def __init__(self) -> None:
        self.ignored = False

    async def __call__(self) -> otpy.Pid | None:
        if not self.ignored:
            self.ignored = True
            return None
        return await Child.start_link()


def spec(child_id: Any, start: Any = start_child, restart: str = "permanent",
         shutdown: float | str = 1.0, type: str = "worker") -> ChildSpec:
    """An OTP-style child spec tuple ``{Id, Start, Restart, Shutdown, Type, []}``."""
    return ChildSpec(child_id, (start, (), {}), restart=restart,  # type: ignore[arg-type]
                     shutdown=shutdown, type=type, modules=[])  # type: ignore[arg-type]


async def counts(sup: Any) -> list[int]:
    """get_child_counts/1: ``[specs, active, supervisors, workers]``."""
    c = await Supervisor.count_children(sup)
    return [c["specs"], c["active"], c["supervisors"], c["workers"]]


async def dyn_counts(sup: Any) -> list[int]:
    """get_child_counts/1 for a DynamicSupervisor."""
    c = await otpy.DynamicSupervisor.count_children(sup)
    return [c["specs"], c["active"], c["supervisors"], c["workers"]]


async def which(sup: Any) -> list[tuple[Any, Any, str, list[str]]]:
    """which_children/1 as plain tuples."""
    return [tuple(row) for row in await Supervisor.which_children(sup)]  # type: ignore[misc]


async def terminate(sup: Any, pid: Any, child_id: Any, how: Any) -> None:
    """supervisor_SUITE:terminate/4: end a child one of five ways and wait
    until it is gone (``supervisor`` asks the supervisor to stop it)."""
    if how == "supervisor":
        await Supervisor.terminate_child(sup, child_id)
        return
    ref = otpy.monitor(pid)
    if how == "kill":
        otpy.exit(pid, otpy.Kill())
        expected: otpy.ExitReason = otpy.Killed()
    elif how == "normal":
        otpy.send(pid, "stop")
        expected = otpy.Normal()
    elif how == "abnormal":
        otpy.send(pid, "die")
        expected = DIED
    else:
        expected = otpy.as_reason(how)
        otpy.exit(pid, expected)
    down = await otpy.receive(lambda m: type(m) is Down and m.ref == ref)
    assert down.reason == expected, down


async def check_exit(*pids: Any) -> None:
    """check_exit/1: an ``Exit`` from each pid, in this order of waiting."""
    for pid in pids:
        await otpy.receive(lambda m, pid=pid: type(m) is Exit and m.pid == pid)


async def check_exit_reason(pid: Any, reason: Any) -> None:
    """check_exit_reason/2: the next ``Exit`` from ``pid`` has ``reason``."""
    msg = await otpy.receive(lambda m: type(m) is Exit and m.pid == pid)
    assert msg.reason == otpy.as_reason(reason), msg


async def settle() -> None:
    """Let every process react (the supervisor handle the exits it got)."""
    await trio.testing.wait_all_tasks_blocked()
