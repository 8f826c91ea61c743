"""The adapter interface: how a session reaches a Claude Code CLI.

A session never touches the CLI itself. It asks its *adapter* (an object
given as the ``adapter`` option; :class:`~claudecode.adapters.Port` by
default) to start an **adapter process**, linked to the session, and from
then on the two talk only with otpy messages and exit signals. Nothing in
this conversation assumes the adapter process is local, so an adapter may
run it on another node.

The messages are plain terms (tuples whose first element is
:data:`ADAPTER_TAG`, strings, dicts, refs and pids), so they can cross an
Erlang distribution connection.

Session → adapter process:

``(ADAPTER_TAG, "query", ref, content)``
    Send a user message (``content`` is a string or a list of content-block
    dicts). The turn's output comes back as ``"message"`` notices.
``(ADAPTER_TAG, "control", ref, subtype, payload, reply_to)``
    Send a host → CLI control request (``interrupt``, ``set_model``...). The
    answer goes to ``reply_to`` as a ``"control_result"`` notice.
exit signal ``otpy.Shutdown()``
    Stop: the adapter process does not trap exits; it shuts the CLI down
    (close stdin, wait, SIGTERM, SIGKILL, each wait bounded) and exits.

CLI budget → a spare's adapter process (`claudecode._budget`):

``(ADAPTER_TAG, "adopt", session)``
    The spare now belongs to ``session``: it links to it, unlinks the
    budget, and sends it ``"ready"`` again if the CLI is already up.
``(ADAPTER_TAG, "discard")``
    Stop at once (an unused spare has nothing to save).

Adapter process → session (``(ADAPTER_TAG, adapter_pid, kind, ...)``):

``"ready", info``
    The CLI is up and answered ``initialize``; ``info`` is a dict with at
    least ``os_pid`` (the CLI's process id, or ``None``) and ``initialize``
    (the CLI's answer).
``"message", message``
    One stdout message: a :class:`~claudecode._messages.Message`, or its raw
    dict (an adapter on another node sends the dict; the session parses it).
``"oversized", info``
    A stdout line over ``max_buffer_size`` was discarded; ``info`` has
    ``size``, ``limit``, ``head`` (bytes) and ``maybe_result`` (the line was
    probably the turn's ``result``, so the turn is over).
``"control_result", ref, status, value``
    ``status`` is ``"ok"`` (``value`` is the CLI's answer dict),
    ``"error"`` (``value`` is the CLI's error text) or ``"timeout"`` (no
    answer within ``control_timeout``; ``value`` says so).

When the CLI goes away the adapter process exits with a typed reason
(:class:`~claudecode._errors.CLIExited`,
:class:`~claudecode._errors.AdapterFailed`); the session traps exits and
sees it as ``otpy.Exit(adapter_pid, reason)``.
"""

from __future__ import annotations

import abc
import logging
from typing import Any, Final, Protocol

import attrs

from claudecode._callbacks import CallbackHandler
from claudecode._hooks import AbortSignal
from claudecode._options import Options
from claudecode._protocol import ControlRequest
from claudecode._protocol_errors import ControlRequestError
from otpy import Pid

__all__ = [
    "ADAPTER_TAG",
    "HANDLED_SUBTYPES",
    "Adapter",
    "ControlHandler",
    "answer",
    "make_control_handler",
    "positive",
]

logger = logging.getLogger("claudecode.adapter")

ADAPTER_TAG: Final = "$claudecode_adapter"
"""First element of every session ↔ adapter message."""

HANDLED_SUBTYPES: Final = frozenset({"can_use_tool", "hook_callback", "mcp_message"})
"""CLI → host control requests that are given to the :class:`ControlHandler`.

Any other subtype is answered with an error response at once.
"""


def positive(inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """attrs validator of the adapters' timeouts and sizes: a number above zero."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{type(inst).__name__}.{attribute.name} must be a positive number, "
                         f"got {value!r}")


class Adapter(abc.ABC):
    """Base class of adapters: the recipe for an adapter process.

    An adapter object is configuration only (it is passed as the
    ``adapter`` option and may be shared by many sessions). Subclasses
    implement :meth:`start`; :meth:`prepare` is optional.
    """

    def prepare(self, options: Options) -> Any:
        """Check what can be checked before the session starts.

        Runs in the caller of ``claudecode.start_link`` (so a failure raises
        there, at once), e.g. to find the CLI executable. The return value is
        handed to every :meth:`start` of that session.

        Args:
            options: the validated session options.

        Returns:
            Anything :meth:`start` needs (default ``None``).
        """
        return None

    async def aprepare(self, options: Options, prepared: Any) -> Any:
        """Asynchronous checks before the session starts (connect to a node...).

        Runs in the caller of ``claudecode.start_link`` right after
        :meth:`prepare`, so its errors are raised there, typed.

        Args:
            options: the validated session options.
            prepared: what :meth:`prepare` returned.

        Returns:
            What :meth:`start` will get (default: ``prepared`` unchanged).
        """
        return prepared

    #: When True, a session restarted under the same name resumes the last
    #: conversation it had (see `claudecode.adapters.Pool`).
    resume_on_restart: bool = False

    @property
    def shutdown_bound(self) -> float:
        """Seconds an orderly stop of the adapter (and its CLI) may take at most;
        the session waits that long, plus a margin, before killing the adapter."""
        return 4.0

    @abc.abstractmethod
    async def start(self, session: Pid, options: Options, prepared: Any) -> Pid:
        """Start the adapter process, linked to the calling session process.

        Called inside the session process when the first query arrives (and
        again after ``clear`` or a hibernation). It must return quickly: the
        CLI's start-up happens inside the adapter process, which then sends
        ``"ready"`` (see the module docs) or exits with a typed reason.

        A session with a `claudecode.CLIBudget` passes ``gates=`` as well (a
        tuple of ``(budget pid, token)``): the adapter process must claim them
        with `claudecode._budget.claim_gates` before it spawns the CLI, and
        must exit only after its CLI has exited. Adapters that do not accept
        ``gates`` cannot be used with a budget.

        Args:
            session: the session's pid (where notices go).
            options: the session options in force.
            prepared: what :meth:`prepare` returned.

        Returns:
            The adapter process's pid, linked to the caller.
        """

    def cli_budget(self, prepared: Any) -> Any:
        """The CLI budget of the place the CLI runs, if it has one (a sandbox
        started with ``--max-clis``); the session takes a slot there too.

        Args:
            prepared: what :meth:`aprepare` returned.

        Returns:
            The budget's pid, or ``None`` (the default).
        """
        return None

    def release(self, prepared: Any) -> None:
        """The session ends: give back what :meth:`aprepare` reserved, if still held.

        Called by the session when it terminates and by ``start_link`` when the
        session could not start; must be idempotent (a no-op by default).

        Args:
            prepared: what :meth:`aprepare` returned.
        """
        return None

    async def history(self, prepared: Any, function: str, args: list[Any],
                      kwargs: dict[str, Any], context: dict[str, Any]) -> Any:
        """Run a :class:`~claudecode.History` function where the CLI keeps its transcripts.

        The default runs it here (the CLI runs on this node); the Node adapter
        runs it on the sandbox.

        Args:
            prepared: what :meth:`aprepare` returned.
            function: the ``History`` function's name.
            args: its positional arguments.
            kwargs: its keyword arguments (``config_dir`` is filled in from
                ``context`` when not given).
            context: ``session_id``, ``cwd`` and ``config_dir`` of the session.

        Returns:
            The function's result (typed).
        """
        from claudecode._history import History

        if kwargs.get("config_dir") is None and context.get("config_dir") is not None:
            kwargs = {**kwargs, "config_dir": context["config_dir"]}
        return getattr(History, function)(*args, **kwargs)

    def describe(self) -> str:
        """A short name for logs and ``adapter_info``."""
        return type(self).__name__


class ControlHandler(Protocol):
    """Answers the CLI's control requests on the host side.

    ``handle`` gets a :class:`~claudecode._protocol.ControlRequest` whose
    subtype is one of :data:`HANDLED_SUBTYPES` and returns the response
    payload (a JSON object); raising answers with an error response.
    """

    def initialize_payload(self) -> dict[str, Any]:
        """The fields of the ``initialize`` control request (without ``subtype``)."""
        ...

    async def handle(
        self, request: ControlRequest, *, signal: AbortSignal | None = None
    ) -> dict[str, Any]:
        """Answer one CLI → host control request.

        ``signal`` is the request's abort signal: the adapter sets it (then
        cancels the handler) when the CLI withdraws the request.
        """
        ...


async def answer(handler: ControlHandler, request: ControlRequest,
                 signal: AbortSignal) -> tuple[str, Any]:
    """Run ``handler`` for one CLI -> host request, as the adapters' workers do.

    Args:
        handler: the control handler.
        request: the CLI's control request.
        signal: the request's abort signal.

    Returns:
        ``("ok", payload)``, or ``("error", message)`` when the handler raised.
    """
    try:
        return "ok", await handler.handle(request, signal=signal)
    except ControlRequestError as exc:
        return "error", exc.error
    except Exception as exc:
        logger.info("control request %s (%s) failed: %r", request.request_id, request.subtype,
                    exc)
        return "error", f"{type(exc).__name__}: {exc}"


def make_control_handler(options: Options, **kwargs: Any) -> ControlHandler:
    """The control handler for a session's options.

    Args:
        options: the session options (``hooks``, ``can_use_tool``,
            ``mcp_servers`` are used).
        **kwargs: passed to ``CallbackHandler`` (``callback_timeout``, ``where``).

    Returns:
        A :class:`~claudecode._callbacks.CallbackHandler`.
    """
    return CallbackHandler(options, **kwargs)
