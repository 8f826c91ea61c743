"""claudecode's telemetry events: turns and CLI lifecycles, through `otpy.telemetry`.

A session emits (listed with their measurements and metadata in
``docs/otpy/telemetry.md``, section claudecode):

* ``("claudecode", "turn", "start")`` when it sends a turn's prompt to the CLI;
* ``("claudecode", "turn", "stop")`` when the turn's ``ResultMessage``
  arrives (also for an error result: ``is_error`` in the metadata);
* ``("claudecode", "turn", "exception")`` when a started turn ends without a
  result (the CLI died, the session was cleared or stopped, a line was over
  ``max_buffer_size``);
* ``("claudecode", "cli", "start" | "exit")`` when its CLI is up / gone;
* ``("claudecode", "cli", "hibernate")`` when a hibernating session stops its
  CLI to save memory (emitted by the hibernation code, with `cli_event`).

Every emitter first reads ``otpy.telemetry.active``: with no handler
attached a turn pays a few attribute reads for all of this.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from otpy import telemetry

__all__ = ["CLI_EXIT", "CLI_HIBERNATE", "CLI_START", "TURN_EXCEPTION", "TURN_START",
           "TURN_STOP", "cli_event", "session_metadata"]

TURN_START: Final = ("claudecode", "turn", "start")
TURN_STOP: Final = ("claudecode", "turn", "stop")
TURN_EXCEPTION: Final = ("claudecode", "turn", "exception")
CLI_START: Final = ("claudecode", "cli", "start")
CLI_EXIT: Final = ("claudecode", "cli", "exit")
CLI_HIBERNATE: Final = ("claudecode", "cli", "hibernate")


def session_metadata(session: Any) -> dict[str, Any]:
    """The metadata every session event carries.

    Args:
        session: the `claudecode._session.Session` server.

    Returns:
        ``session`` (its pid), ``name`` (as given in the options, or None),
        ``model`` (the CLI's model once known, else the option), ``session_id``.
    """
    return {"session": session.pid, "name": session.options.name, "model": session.model,
            "session_id": session.session_id}


def cli_event(session: Any, which: str, measurements: Mapping[str, Any] | None = None,
              **metadata: Any) -> None:
    """Emit ``("claudecode", "cli", which)`` for a session, if anyone listens.

    Args:
        session: the `claudecode._session.Session` server.
        which: ``"start"``, ``"exit"`` or ``"hibernate"``.
        measurements: numbers (``duration`` of a start).
        **metadata: added to `session_metadata` (``os_pid``, ``reason``...).
    """
    if telemetry.active:
        telemetry.execute(("claudecode", "cli", which), measurements or {},
                          {**session_metadata(session), **metadata})
