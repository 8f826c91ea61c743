"""gen_server_SUITE's own gen_server (its init / handle_* / terminate
clauses), in otpy's terms, shared by the two gen_server test files.

Erlang's per-return timeout (``{reply, R, S, T}``, ``{noreply, S, T}``) is
otpy's ``idle_timeout`` set for the next wait only: every callback clears it
first, and `handle_timeout` plays ``handle_info(timeout, State)``.
"""

from __future__ import annotations

from typing import Any

import trio

import otpy


class Server(otpy.GenServer):
    """The gen_server under test in gen_server_SUITE."""

    state: Any

    async def init(self, arg: Any = None) -> Any:
        self.state = []
        match arg:
            case "ignore":
                raise otpy.Ignore()
            case "stop":
                raise otpy.Stop(otpy.TermReason("stopped"))
            case "sleep":
                await trio.sleep(1)
            case ("state", state):
                self.state = state
            case ("continue", pid):
                otpy.send(self.pid, ("after_continue", pid))
                return otpy.Continue(("message", pid))
            case ("crash", "error", reason):
                raise RuntimeError(reason)  # erlang:error(bailout)
            case ("crash", "exit", reason):
                raise otpy.ProcessExit(otpy.as_reason(reason))  # exit(bailout)
            case ("wait", seconds):
                await trio.sleep(seconds)
        return None

    async def handle_call(self, request: Any, caller: Any) -> Any:
        self.idle_timeout = None
        match request:
            case "started_p":
                return "ok"
            case "ping":
                return "pong"
            case ("delayed_answer", seconds):
                self.state = ("reply_to", caller, self.state)
                self.idle_timeout = seconds
                return otpy.NoReply
            case ("call_within", seconds):
                self.state = "call_within"
                self.idle_timeout = seconds
                return "ok"
            case "next_call":
                if self.state == "call_within":
                    self.state = []
                    return "ok"
                return False
            case ("reply_from", helper):  # hand the caller to another process
                otpy.send(helper, ("reply_to", caller))
                return otpy.NoReply
            case "stop":
                raise otpy.Stop(otpy.TermReason("stopped"), reply="ok")
            case "crash":
                raise otpy.ProcessExit(otpy.TermReason("crashed"))  # exit(crashed)
            case "raise":
                raise RuntimeError("crashed")
            case "exit_shutdown":
                raise otpy.ProcessExit(otpy.Shutdown())
            case "stop_shutdown":
                raise otpy.Stop(otpy.Shutdown())
            case "shutdown_reason":
                raise otpy.ProcessExit(otpy.Shutdown("reason"))
            case "stop_shutdown_reason":
                raise otpy.Stop(otpy.Shutdown("stop_reason"))
            case ("continue_reply", pid):
                otpy.send(self.pid, ("after_continue", pid))
                return otpy.Continue(("message", pid), reply="ok")
            case ("continue_noreply", pid):
                otpy.send(self.pid, ("after_continue", pid))
                return otpy.Continue(("message", pid, caller), reply=otpy.NoReply)
            case ("call_undef_fun",):
                return undefined_function()  # type: ignore[name-defined]  # noqa: F821
        raise AssertionError(f"no clause for {request!r}")

    async def handle_cast(self, request: Any) -> Any:
        self.idle_timeout = None
        match request:
            case (sender, "handle_cast"):
                otpy.send(sender, (self.pid, "handled_cast"))
            case (sender, "delayed_cast", seconds):
                self.state = ("delayed_cast", sender)
                self.idle_timeout = seconds
            case ("continue_noreply", pid):
                otpy.send(self.pid, ("after_continue", pid))
                return otpy.Continue(("message", pid))
            case (sender, "stop"):
                raise otpy.Stop(otpy.TermReason((sender, "stopped")))
            case _:
                raise AssertionError(f"no clause for {request!r}")
        return None

    async def handle_info(self, message: Any) -> Any:
        self.idle_timeout = None
        match message:
            case (sender, "handle_info"):
                otpy.send(sender, (self.pid, "handled_info"))
                self.state = []
            case (sender, "delayed_info", seconds):
                self.state = ("delayed_info", sender)
                self.idle_timeout = seconds
            case (sender, "stop"):
                raise otpy.Stop(otpy.TermReason((sender, "stopped_info")))
            case ("after_continue", pid):
                otpy.send(pid, (self.pid, "after_continue"))
                otpy.send(pid, (self.pid, "ack"))
            case ("continue_noreply", pid):
                otpy.send(self.pid, ("after_continue", pid))
                return otpy.Continue(("message", pid))
            case ("continue_continue", pid):
                return otpy.Continue(("continue", pid))
            case "continue_stop":
                return otpy.Continue("stop")
            case ("call_undef_fun",):
                undefined_function()  # type: ignore[name-defined]  # noqa: F821
        return None

    async def handle_timeout(self) -> Any:
        self.idle_timeout = None
        match self.state:
            case ("reply_to", caller, state):
                otpy.reply(caller, "delayed")
                self.state = state
            case "call_within":
                self.state = []
            case ("delayed_cast", sender):
                otpy.send(sender, (self.pid, "delayed"))
                self.state = []
            case ("delayed_info", sender):
                otpy.send(sender, (self.pid, "delayed_info"))
                self.state = []
        return None

    async def handle_continue(self, arg: Any) -> Any:
        match arg:
            case ("continue", pid):
                otpy.send(pid, (self.pid, "before_continue"))
                otpy.send(self.pid, ("after_continue", pid))
                return otpy.Continue(("message", pid))
            case "stop":
                raise otpy.Stop(otpy.Normal())
            case ("message", pid):
                otpy.send(pid, (self.pid, "continue"))
            case ("message", pid, caller):
                otpy.send(pid, (self.pid, "continue"))
                otpy.reply(caller, "ok")
        return None

    async def terminate(self, reason: otpy.ExitReason) -> None:
        match reason:
            case otpy.TermReason(term=(sender, "stopped")):
                otpy.send(sender, (self.pid, "stopped"))
            case otpy.TermReason(term=(sender, "stopped_info")):
                otpy.send(sender, (self.pid, "stopped_info"))
        if self.state == "undef_in_terminate":
            undefined_function()  # type: ignore[name-defined]  # noqa: F821
