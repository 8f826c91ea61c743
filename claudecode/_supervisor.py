"""``claudecode.Supervisor``: named, long-lived sessions under an ``otpy.Supervisor``.

Each session config is the options dict of ``claudecode.start_link``. A
config's ``name`` (a str, ``otpy.Via(...)`` or ``otpy.Global(...)``)
registers the session, so it is reachable by name from anywhere; the child id
is the ``id`` given to :meth:`Supervisor.start_session`, else the name.
Sessions are permanent children with a 5 s shutdown (enough for the CLI's
bounded shutdown): a session that crashes — e.g. because its CLI was killed —
is restarted under the same name with fresh state while its siblings keep
running.

Unlike the Elixir library, :meth:`Supervisor.restart_session` works on a
running session (it terminates it, then starts it again).

With ``max_live_clis=N`` the supervisor process also runs a
`claudecode.CLIBudget` (linked to it, not one of its children) and gives it to
every session it starts (the ``cli_budget`` option), so no more than N of its
sessions' CLIs are alive at once: the others hibernate (see
docs/claudecode/scaling.md). The budget lives and dies with the supervisor.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

import otpy
from claudecode._budget import BudgetBook, CLIBudget
from claudecode._protocol_errors import InvalidOptionError
from claudecode._session import child_spec
from otpy import ChildInfo, ChildSpec, Exit, Pid
from otpy._process import current
from otpy._supervisor import _checked

__all__ = ["Supervisor"]

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]

_ids = itertools.count(1)


def _spec(config: Mapping[str, Any], id: Any = None) -> ChildSpec:
    if not isinstance(config, Mapping):
        raise TypeError(f"a session config is a dict of options, not {type(config).__name__}")
    options = dict(config)
    if id is None and options.get("name") is None:
        id = f"session_{next(_ids)}"
    return child_spec(options, id=id)


_START_SESSION = "$claudecode_start_session"


def _option_of(path: str | None) -> str:
    """The option an encoding error's path points into (``term[1]['hooks']...``)."""
    if path and path.startswith("term[1]["):
        return path[len("term[1]["):].split("]", 1)[0].strip("'\"")
    return "config"


def _with_budget(spec: ChildSpec, budget: Pid) -> ChildSpec:
    """A session's spec whose options name ``budget`` (unless they name one already)."""
    fn, args, kwargs = spec.start
    if spec.modules != ["claudecode.Session"] or kwargs.get("cli_budget") is not None:
        return spec
    return attrs.evolve(spec, start=(fn, args, {**kwargs, "cli_budget": budget}))


class _SessionSupervisor(otpy.Supervisor):
    """The supervisor process: an ``otpy.Supervisor`` that also builds a session's
    spec itself from a config sent by another node (a spec holds functions,
    which cannot cross; a config of plain options can), and — with
    ``max_live_clis`` — runs the CLI budget its sessions share."""

    budget: Pid | None = None

    @classmethod
    async def start_link_with(cls, specs: list[ChildSpec], strategy: Strategy,
                              max_restarts: int, max_seconds: float,
                              budget: tuple[int, int] | None, name: Any = None) -> Pid:
        """`otpy.Supervisor.start_link`, with the budget's limits (or ``None``)."""
        start = otpy.GenServer.start_link.__func__  # type: ignore[attr-defined]
        pid: Pid = await start(cls, specs, strategy, max_restarts, max_seconds, budget,
                               name=name, timeout=None)
        return pid

    async def init(self, children: list[ChildSpec], strategy: Strategy,
                   max_restarts: int, max_seconds: float,
                   budget: tuple[int, int] | None = None) -> None:
        if budget is not None:
            max_live_clis, spares = budget
            self.budget = await CLIBudget.start_link(max_live_clis, prewarm_spares=spares)
            children = [_with_budget(spec, self.budget) for spec in children]
        try:
            await super().init(children, strategy, max_restarts, max_seconds)
        except BaseException:
            await self._stop_budget()
            raise

    async def _api_start_child(self, spec: Any) -> Any:
        if self.budget is not None and isinstance(spec, ChildSpec):
            spec = _with_budget(spec, self.budget)
        return await super()._api_start_child(spec)

    async def handle_info(self, message: Any) -> None:
        if type(message) is Exit and self.budget is not None and message.pid == self.budget:
            # The sessions' slots died with it: stop everything (our own
            # supervisor, if any, restarts the whole group with a fresh budget).
            self.budget = None
            raise otpy.Stop(message.reason)
        await super().handle_info(message)

    async def terminate(self, reason: otpy.ExitReason) -> None:
        await super().terminate(reason)
        await self._stop_budget()  # after the sessions: their CLIs are gone by now

    async def _stop_budget(self) -> None:
        budget, self.budget = self.budget, None
        if budget is not None:
            otpy.unlink(budget)
            with contextlib.suppress(otpy.CallError):
                await otpy.stop(budget, otpy.Shutdown(), 20.0)

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if type(request) is tuple and len(request) == 3 and request[0] == _START_SESSION:
            try:
                spec = _spec(request[1], request[2])
            except Exception as exc:  # an invalid config: the caller's error, not ours
                return ("$claudecode_error", otpy.Crash(exc))
            return await self._api_start_child(spec)
        return await super().handle_call(request, caller)


def _budget_limits(max_live_clis: int | None, prewarm_spares: int) -> tuple[int, int] | None:
    if max_live_clis is None:
        if prewarm_spares:
            raise ValueError("prewarm_spares needs max_live_clis")
        return None
    BudgetBook(max_live_clis, prewarm_spares)  # raises ValueError on bad limits
    return (max_live_clis, prewarm_spares)


def _remote(sup: Any) -> bool:
    node = current().node
    if node.dist is None:
        return False
    if node.is_remote(sup):
        return True
    try:
        pid = node.resolve(sup)
    except (LookupError, TypeError):
        return False
    return pid is not None and node.is_remote(pid)


class Supervisor:
    """Supervises Claude sessions. All methods are static; the supervisor is
    an ``otpy.Supervisor`` process (so ``otpy.Supervisor`` calls work on it too)."""

    @staticmethod
    async def start_link(
        sessions: Sequence[Mapping[str, Any]] = (),
        name: Any = None,
        max_restarts: int = 3,
        max_seconds: float = 5,
        strategy: Strategy = "one_for_one",
        *,
        max_live_clis: int | None = None,
        prewarm_spares: int = 0,
    ) -> Pid:
        """Start a supervisor linked to the caller, with its sessions.

        Every config is validated (and the CLI looked up) before anything
        starts, so a bad config raises here, naming the option.

        Args:
            sessions: session configs (options dicts; include ``name``).
            name: register the supervisor under this name.
            max_restarts: restarts allowed within ``max_seconds``.
            max_seconds: the restart-intensity window.
            strategy: "one_for_one" (default), "one_for_all" or "rest_for_one".
            max_live_clis: at most that many of its sessions' CLIs alive at
                once (``None``: no limit): a session that needs a CLI when all
                are taken hibernates the one idle longest, or waits (FIFO,
                within its query's timeout).
            prewarm_spares: CLIs to keep started ahead for new conversations
                (needs ``max_live_clis``; they count towards it).

        Returns:
            The supervisor's pid.

        Raises:
            OptionError: an invalid session config.
            CLINotFoundError: no CLI executable.
            StartError: a session failed to start (e.g. a duplicate name).
            ValueError: ``max_live_clis`` / ``prewarm_spares`` out of range.
        """
        specs = [_spec(config) for config in sessions]
        return await _SessionSupervisor.start_link_with(
            specs, strategy, max_restarts, max_seconds,
            _budget_limits(max_live_clis, prewarm_spares), name=name)

    @staticmethod
    def child_spec(
        sessions: Sequence[Mapping[str, Any]] = (),
        *,
        id: Any = None,
        name: Any = None,
        max_restarts: int = 3,
        max_seconds: float = 5,
        strategy: Strategy = "one_for_one",
        max_live_clis: int | None = None,
        prewarm_spares: int = 0,
    ) -> ChildSpec:
        """A spec to run this supervisor inside an application's supervision tree.

        Args:
            sessions: session configs.
            id: the child id (default: the name, else "claudecode.Supervisor").
            name: the supervisor's registered name.
            max_restarts: restarts allowed within ``max_seconds``.
            max_seconds: the restart-intensity window.
            strategy: the restart strategy.
            max_live_clis: the CLI budget (see :meth:`start_link`).
            prewarm_spares: spare CLIs (see :meth:`start_link`).

        Returns:
            The spec (type "supervisor").
        """
        specs = [_spec(config) for config in sessions]
        return ChildSpec(
            id=id if id is not None else (name if name is not None else "claudecode.Supervisor"),
            start=(_SessionSupervisor.start_link_with,
                   (specs, strategy, max_restarts, max_seconds,
                    _budget_limits(max_live_clis, prewarm_spares)), {"name": name}),
            restart="permanent",
            shutdown="infinity",
            type="supervisor",
            modules=["_SessionSupervisor"],
        )

    @staticmethod
    async def start_session(sup: Any, config: Mapping[str, Any], id: Any = None) -> Pid:
        """Add a session and start it (permanent, 5 s shutdown).

        Args:
            sup: the supervisor (pid or name).
            config: the session options.
            id: the child id (default: the session's name; a fresh
                ``"session_N"`` when it has none).

        Returns:
            The session's pid.

        Raises:
            SupervisorError: the id is taken or the start failed.
        """
        if not _remote(sup):
            pid = await otpy.Supervisor.start_child(sup, _spec(config, id))
            assert pid is not None
            return pid
        # On another node: send the options, the supervisor builds the spec there.
        if not isinstance(config, Mapping):
            raise TypeError(f"a session config is a dict of options, not "
                            f"{type(config).__name__}")
        try:
            answer = await otpy.call(sup, (_START_SESSION, dict(config), id), None)
        except otpy.ETFEncodeError as exc:
            raise InvalidOptionError(
                _option_of(exc.path), "a session on another node takes options that can "
                "cross nodes: callbacks (can_use_tool, hooks, in-process MCP tools, "
                f"stderr) run where they are defined, so start that session there ({exc})"
            ) from None
        if type(answer) is tuple and len(answer) == 2 and answer[0] == "$claudecode_error":
            raise answer[1].exception
        started: Pid | None = _checked(answer)
        assert started is not None
        return started

    @staticmethod
    async def terminate_session(sup: Any, id: Any) -> None:
        """Stop a session (and its CLI) and remove it from the supervisor.

        Args:
            sup: the supervisor.
            id: the child id (the session's name unless given otherwise).

        Raises:
            SupervisorError: no such child ("not_found").
        """
        await otpy.Supervisor.terminate_child(sup, id)
        await otpy.Supervisor.delete_child(sup, id)

    @staticmethod
    async def restart_session(sup: Any, id: Any) -> Pid:
        """Restart a session with fresh state, whether it is running or not.

        Args:
            sup: the supervisor.
            id: the child id.

        Returns:
            The new pid.

        Raises:
            SupervisorError: no such child, or the start failed.
        """
        await otpy.Supervisor.terminate_child(sup, id)
        pid = await otpy.Supervisor.restart_child(sup, id)
        assert pid is not None
        return pid

    @staticmethod
    async def list_sessions(sup: Any) -> list[ChildInfo]:
        """The supervised sessions: ``ChildInfo(id, pid | None, type, modules)`` rows."""
        return await otpy.Supervisor.which_children(sup)

    @staticmethod
    async def count_sessions(sup: Any) -> int:
        """How many supervised sessions are running."""
        counts = await otpy.Supervisor.count_children(sup)
        return counts["active"]
