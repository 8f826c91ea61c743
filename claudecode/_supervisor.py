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
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import otpy
from claudecode._protocol_errors import InvalidOptionError
from claudecode._session import child_spec
from otpy import ChildInfo, ChildSpec, Pid
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


class _SessionSupervisor(otpy.Supervisor):
    """The supervisor process: an ``otpy.Supervisor`` that also builds a session's
    spec itself from a config sent by another node (a spec holds functions,
    which cannot cross; a config of plain options can)."""

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if type(request) is tuple and len(request) == 3 and request[0] == _START_SESSION:
            try:
                spec = _spec(request[1], request[2])
            except Exception as exc:  # an invalid config: the caller's error, not ours
                return ("$claudecode_error", otpy.Crash(exc))
            return await self._api_start_child(spec)
        return await super().handle_call(request, caller)


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

        Returns:
            The supervisor's pid.

        Raises:
            OptionError: an invalid session config.
            CLINotFoundError: no CLI executable.
            StartError: a session failed to start (e.g. a duplicate name).
        """
        specs = [_spec(config) for config in sessions]
        return await _SessionSupervisor.start_link(specs, strategy, max_restarts, max_seconds,
                                                   name=name)

    @staticmethod
    def child_spec(
        sessions: Sequence[Mapping[str, Any]] = (),
        *,
        id: Any = None,
        name: Any = None,
        max_restarts: int = 3,
        max_seconds: float = 5,
        strategy: Strategy = "one_for_one",
    ) -> ChildSpec:
        """A spec to run this supervisor inside an application's supervision tree.

        Args:
            sessions: session configs.
            id: the child id (default: the name, else "claudecode.Supervisor").
            name: the supervisor's registered name.
            max_restarts: restarts allowed within ``max_seconds``.
            max_seconds: the restart-intensity window.
            strategy: the restart strategy.

        Returns:
            The spec (type "supervisor").
        """
        specs = [_spec(config) for config in sessions]
        return _SessionSupervisor.child_spec(
            specs, strategy, max_restarts, max_seconds,
            id=id if id is not None else (name if name is not None else "claudecode.Supervisor"),
            name=name,
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
