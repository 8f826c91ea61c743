"""The CLI budget: never more than N Claude Code CLIs alive among the sessions that share it.

A :class:`CLIBudget` is an otpy process that hands out *CLI slots*. A session
with a budget (its ``cli_budget`` option; ``claudecode.Supervisor`` sets it
when started with ``max_live_clis``) asks for a slot before it starts a CLI,
and its adapter process *claims* the slot before it spawns the CLI; the slot
is free again when that adapter process is gone (it exits only after its CLI
has exited). So the count of live CLIs never exceeds the limit, whatever the
interleaving of starts, turns, hibernations and kills.

When every slot is taken, the budget asks the session whose CLI has been idle
longest (least recently used) to hibernate — stop its CLI and keep the
conversation, which a later CLI resumes — and the waiting session gets the
slot when that CLI is gone. Waiting sessions are served first come, first
served; a session whose CLIs are all busy with turns waits, within its
query's timeout. Optionally the budget keeps ``prewarm_spares`` CLIs started
ahead, in free slots, from the options of the last new session that could use
one, so that a new conversation's first turn skips the CLI's start-up; a
session that must resume a conversation (a spare cannot: ``--resume`` is
fixed when the CLI starts) hibernates an idle CLI as usual, and takes a
spare's slot only when no CLI is idle (an unused spare is stopped at once).

The bookkeeping is :class:`BudgetBook`, a pure state machine (events in,
effects out); :class:`CLIBudget` is the process around it. Messages (plain
terms, so a budget on a sandbox node serves sessions on app nodes):

session → budget
    ``(BUDGET_TAG, "acquire", token, session, spare)`` — ``token`` a fresh
    ref; ``spare`` ``None`` or, for a local session that could adopt a spare,
    ``(key, port, options, cli)``. ``(BUDGET_TAG, "cancel", token)`` — the
    slot is no longer wanted. ``(BUDGET_TAG, "idle" | "busy", token)`` — the
    CLI holding the slot became idle (no turn, nothing pending) or busy.
adapter process → budget (call)
    ``(BUDGET_TAG, "claim", token, adapter)`` → ``"ok"`` (start the CLI) or
    ``"revoked"`` (the session is gone or gave the slot back: do not).
budget → session
    ``(BUDGET_TAG, budget, "grant", token, spare_pid | None)``,
    ``(BUDGET_TAG, budget, "queued", token, max_live_clis)``,
    ``(BUDGET_TAG, budget, "hibernate", token)``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import Any, Final

import attrs

import otpy
from claudecode._errors import AdapterFailed, describe_reason
from otpy import ChildSpec, Down, Exit, Pid, ProcessExit, Ref

__all__ = [
    "BUDGET_TAG",
    "BudgetBook",
    "BudgetInfo",
    "CLIBudget",
    "Effect",
    "Gate",
    "claim_gates",
]

logger = logging.getLogger("claudecode.budget")

BUDGET_TAG: Final = "$claudecode_budget"
"""First element of every message between a budget and its sessions and adapters."""

_ADAPTER_TAG: Final = "$claudecode_adapter"
"""`claudecode.adapters._base.ADAPTER_TAG` (not imported: the adapters import this module)."""

CLAIM_TIMEOUT: Final = 30.0
"""Seconds an adapter process waits for its budget to confirm a claim."""

SPARE_FAILURES: Final = 3
"""Spares of one template that may die before being ready before the budget stops
making them (a template that cannot start, e.g. a bad environment)."""

Gate = tuple[Any, Any]
"""``(budget pid, token)``: a slot an adapter process claims before it spawns the CLI."""

Effect = tuple[Any, ...]
"""What the book asks its process to do:

* ``("grant", token, session, spare_id | None)``
* ``("queued", token, session)``
* ``("hibernate", token, session)``
* ``("start_spare", spare_id, key)``
* ``("discard_spare", spare_id)``
"""


async def claim_gates(gates: Sequence[Gate], adapter: Pid) -> None:
    """Claim every slot of ``gates`` for ``adapter``, in order (adapter processes
    call this right before they spawn the CLI).

    Args:
        gates: ``(budget pid, token)`` pairs from the session.
        adapter: the calling adapter process.

    Raises:
        ProcessExit: with `AdapterFailed` when a budget refuses (the session
            is gone, or gave the slot back) or cannot be reached.
    """
    for budget, token in gates:
        try:
            answer = await otpy.call(budget, (BUDGET_TAG, "claim", token, adapter), CLAIM_TIMEOUT)
        except otpy.CallError as err:
            raise ProcessExit(AdapterFailed(
                f"the CLI budget {budget!r} could not be reached: "
                f"{describe_reason(err.reason)}")) from None
        if answer != "ok":
            raise ProcessExit(AdapterFailed(
                "the CLI budget revoked this start (its session is gone or gave the slot back)"))


@attrs.define(eq=False)
class _Holder:
    """A granted slot: its session and, once claimed, its adapter."""

    token: Any
    session: Any
    adapter: Any = None
    idle: bool = False
    asked: bool = False  # asked to hibernate; its adapter's exit not seen yet
    leaving: bool = False  # its session is gone; its adapter is on its way out


@attrs.define(eq=False)
class _Spare:
    id: int
    key: Any
    ready: bool = False
    dying: bool = False


@attrs.frozen
class BudgetInfo:
    """A budget's state, from :meth:`CLIBudget.info`.

    Attributes:
        max_live_clis: the limit.
        prewarm_spares: how many spares it keeps when it can.
        live: CLIs alive or starting now (slots taken, spares included).
        busy: slots of sessions whose CLI is in a turn, starting or stopping.
        idle: slots of sessions whose CLI is idle (candidates for hibernation).
        waiting: sessions waiting for a slot.
        spares: spare CLIs (started ahead, not adopted yet).
        peak_live: the highest ``live`` seen.
        grants: slots granted so far.
        hibernations_asked: sessions asked to hibernate so far.
        spares_started: spares started so far.
        spares_adopted: spares a session adopted so far.
    """

    max_live_clis: int
    prewarm_spares: int
    live: int
    busy: int
    idle: int
    waiting: int
    spares: int
    peak_live: int
    grants: int
    hibernations_asked: int
    spares_started: int
    spares_adopted: int


class BudgetBook:
    """The budget's bookkeeping, free of I/O: each method takes an event and
    returns the effects to carry out, in order.

    Invariant (checked after every event): slots held plus spares never
    exceed ``capacity``. A slot is held from its grant until the session gives
    it back unclaimed (``cancel``, or the session's exit before any claim) or
    its adapter's exit.
    """

    def __init__(self, capacity: int, spares: int = 0) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"max_live_clis must be a positive int, got {capacity!r}")
        if not isinstance(spares, int) or isinstance(spares, bool) or not 0 <= spares < capacity:
            raise ValueError(f"prewarm_spares must be an int from 0 to max_live_clis - 1, "
                             f"got {spares!r}")
        self.capacity = capacity
        self.spares = spares
        self.holders: dict[Any, _Holder] = {}
        self.by_adapter: dict[Any, _Holder] = {}
        self.waiters: dict[Any, tuple[Any, Any]] = {}  # token -> (session, spare key), FIFO
        self.lru: dict[Any, None] = {}  # tokens of idle holders, longest idle first
        self.spare_by_id: dict[int, _Spare] = {}
        self.template: Any = None
        self.template_failures = 0
        self._ids = itertools.count(1)
        self.peak_live = 0
        self.grants = 0
        self.hibernations_asked = 0
        self.spares_started = 0
        self.spares_adopted = 0

    # ------------------------------------------------------------ state

    @property
    def live(self) -> int:
        """Slots held plus spares: the CLIs that may be alive."""
        return len(self.holders) + len(self.spare_by_id)

    @property
    def free(self) -> int:
        return self.capacity - self.live

    def info(self) -> BudgetInfo:
        """A snapshot for :meth:`CLIBudget.info`."""
        idle = sum(1 for h in self.holders.values() if h.idle)
        return BudgetInfo(
            max_live_clis=self.capacity, prewarm_spares=self.spares, live=self.live,
            busy=len(self.holders) - idle, idle=idle, waiting=len(self.waiters),
            spares=len(self.spare_by_id), peak_live=self.peak_live, grants=self.grants,
            hibernations_asked=self.hibernations_asked, spares_started=self.spares_started,
            spares_adopted=self.spares_adopted,
        )

    # ------------------------------------------------------------ events

    def acquire(self, token: Any, session: Any, key: Any = None) -> list[Effect]:
        """A session asks for a slot (``key``: the spare it could adopt, or None)."""
        if token in self.holders or token in self.waiters:
            return []
        effects: list[Effect] = []
        if key is not None and self.spares and key != self.template:
            self.template = key  # spares are made from the latest new session's options
            self.template_failures = 0
            for spare in self.spare_by_id.values():
                if spare.key != key and not spare.dying:
                    spare.dying = True
                    effects.append(("discard_spare", spare.id))
        self.waiters[token] = (session, key)
        effects += self._settle()
        if token in self.waiters:
            effects.append(("queued", token, session))
        return effects

    def cancel(self, token: Any) -> list[Effect]:
        """The session no longer wants the slot (waiting, or granted and unclaimed)."""
        if self.waiters.pop(token, None) is not None:
            return self._settle()
        holder = self.holders.get(token)
        if holder is not None and holder.adapter is None:
            self._remove(holder)
            return self._settle()
        return []  # claimed: freed when its adapter exits

    def claim(self, token: Any, adapter: Any) -> bool:
        """An adapter process claims a granted slot before it spawns the CLI."""
        holder = self.holders.get(token)
        if holder is None or holder.adapter is not None or holder.leaving:
            return False
        holder.adapter = adapter
        self.by_adapter[adapter] = holder
        return True

    def idle(self, token: Any) -> list[Effect]:
        """The slot's CLI is idle: the session may be asked to hibernate."""
        holder = self.holders.get(token)
        if holder is None or holder.leaving:
            return []
        holder.idle = True
        self.lru.pop(token, None)
        self.lru[token] = None
        return self._settle()

    def busy(self, token: Any) -> list[Effect]:
        """The slot's CLI has work again (a request to hibernate is declined by this)."""
        holder = self.holders.get(token)
        if holder is None:
            return []
        holder.idle = False
        self.lru.pop(token, None)
        if holder.asked:
            holder.asked = False
            return self._settle()  # someone else may have to hibernate
        return []

    def session_down(self, session: Any) -> list[Effect]:
        """A session exited: its waits end, its unclaimed slots are free; a
        claimed slot stays taken until its adapter has exited."""
        for token in [t for t, (s, _) in self.waiters.items() if s == session]:
            del self.waiters[token]
        for holder in [h for h in self.holders.values() if h.session == session]:
            if holder.adapter is None:
                self._remove(holder)
            else:
                holder.leaving = True
                holder.idle = False
                self.lru.pop(holder.token, None)
        return self._settle()

    def adapter_down(self, adapter: Any) -> list[Effect]:
        """An adapter process (or a spare) exited: its CLI is gone, its slot free."""
        holder = self.by_adapter.get(adapter)
        if holder is not None:
            self._remove(holder)
            return self._settle()
        spare = self.spare_by_id.pop(adapter, None) if type(adapter) is int else None
        if spare is not None:
            if not spare.ready and not spare.dying:
                self.template_failures += 1
                if self.template_failures == SPARE_FAILURES:
                    logger.warning("CLI budget: %d spares in a row died before they were ready; "
                                   "no more spares from these options", SPARE_FAILURES)
            return self._settle()
        return []

    def spare_ready(self, spare_id: int) -> None:
        """A spare's CLI answered ``initialize``."""
        spare = self.spare_by_id.get(spare_id)
        if spare is not None:
            spare.ready = True
            self.template_failures = 0

    # ------------------------------------------------------------ internals

    def _remove(self, holder: _Holder) -> None:
        del self.holders[holder.token]
        self.lru.pop(holder.token, None)
        if holder.adapter is not None:
            self.by_adapter.pop(holder.adapter, None)

    def _spare_for(self, key: Any) -> _Spare | None:
        best = None
        for spare in self.spare_by_id.values():
            if spare.key == key and not spare.dying:
                if spare.ready:
                    return spare
                best = best or spare
        return best

    def _settle(self) -> list[Effect]:
        """Serve the waiters in order, free slots for those left, keep the spares."""
        effects: list[Effect] = []
        while self.waiters:
            token, (session, key) = next(iter(self.waiters.items()))
            spare = self._spare_for(key) if key is not None else None
            if spare is not None:  # adopt: the spare's slot becomes this session's
                del self.waiters[token]
                del self.spare_by_id[spare.id]
                holder = _Holder(token, session, adapter=spare.id)
                self.holders[token] = holder
                self.by_adapter[spare.id] = holder
                self.grants += 1
                self.spares_adopted += 1
                effects.append(("grant", token, session, spare.id))
            elif self.free > 0:
                del self.waiters[token]
                self.holders[token] = _Holder(token, session)
                self.grants += 1
                effects.append(("grant", token, session, None))
            else:
                break
        pending = sum(1 for h in self.holders.values() if h.asked or h.leaving) + \
            sum(1 for s in self.spare_by_id.values() if s.dying)
        need = len(self.waiters) - pending
        if need > 0:
            # The longest idle CLIs hibernate first; a spare is discarded only
            # when no CLI is idle (it cost a start-up: throwing it away while
            # an idle CLI could go instead wastes that CPU, measured).
            asked = self._ask(need)
            effects += asked
            need -= len(asked)
            for spare in self.spare_by_id.values():
                if need <= 0:
                    break
                if not spare.dying:
                    spare.dying = True
                    effects.append(("discard_spare", spare.id))
                    need -= 1
        elif not self.waiters and self.spares and self.template is not None and \
                self.template_failures < SPARE_FAILURES:
            # Spares fill free slots only: hibernating idle CLIs to make spares
            # turned warm turns into resumed ones and cost CPU (measured).
            have = sum(1 for s in self.spare_by_id.values() if not s.dying)
            want = self.spares - have
            while want > 0 and self.free > 0:
                spare = _Spare(next(self._ids), self.template)
                self.spare_by_id[spare.id] = spare
                self.spares_started += 1
                effects.append(("start_spare", spare.id, spare.key))
                want -= 1
        self.peak_live = max(self.peak_live, self.live)
        assert self.live <= self.capacity, (self.live, self.capacity)
        return effects

    def _ask(self, need: int) -> list[Effect]:
        """Ask ``need`` idle sessions to hibernate, the longest idle first."""
        effects: list[Effect] = []
        for token in self.lru:
            if need <= 0:
                break
            holder = self.holders[token]
            if not holder.asked:
                holder.asked = True
                self.hibernations_asked += 1
                effects.append(("hibernate", token, holder.session))
                need -= 1
        return effects


class _BudgetServer(otpy.GenServer):
    """The budget process: a `BudgetBook` and the monitors that feed it."""

    trap_exits = True

    book: BudgetBook
    session_monitors: dict[Any, Ref]
    adapter_monitors: dict[Ref, Any]
    spare_pids: dict[int, Pid]
    spare_ids: dict[Pid, int]
    templates: dict[Any, tuple[Any, Any, str]]

    async def init(self, capacity: int, spares: int) -> None:
        self.book = BudgetBook(capacity, spares)
        self.session_monitors = {}
        self.adapter_monitors = {}
        self.spare_pids = {}
        self.spare_ids = {}
        self.templates = {}

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if type(request) is tuple and len(request) == 4 and request[:2] == (BUDGET_TAG, "claim"):
            _, _, token, adapter = request
            if not self.book.claim(token, adapter):
                return "revoked"
            self.adapter_monitors[otpy.monitor(adapter)] = adapter
            return "ok"
        if request == ("info",):
            return self.book.info()
        return ("error", "request", f"unknown budget request {request!r}")

    async def handle_info(self, message: Any) -> None:
        t = type(message)
        if t is tuple and len(message) >= 3 and message[0] == BUDGET_TAG:
            kind = message[1]
            if kind == "acquire" and len(message) == 5:
                _, _, token, session, spare = message
                key = None
                if spare is not None and type(spare) is tuple and len(spare) == 4:
                    key = spare[0]
                    if self.book.spares:
                        self.templates = {key: spare[1:]}  # the latest template only
                if session not in self.session_monitors:
                    self.session_monitors[session] = otpy.monitor(session)
                self._apply(self.book.acquire(token, session, key))
            elif kind == "cancel":
                self._apply(self.book.cancel(message[2]))
            elif kind == "idle":
                self._apply(self.book.idle(message[2]))
            elif kind == "busy":
                self._apply(self.book.busy(message[2]))
        elif t is Down:
            adapter = self.adapter_monitors.pop(message.ref, None)
            if adapter is not None:
                spare_id = self.spare_ids.pop(adapter, None) if type(adapter) is Pid else None
                if spare_id is not None:
                    self.spare_pids.pop(spare_id, None)
                    adapter = spare_id
                self._apply(self.book.adapter_down(adapter))
            elif self.session_monitors.get(message.pid) == message.ref:
                del self.session_monitors[message.pid]
                self._apply(self.book.session_down(message.pid))
        elif t is tuple and len(message) >= 3 and message[0] == _ADAPTER_TAG:
            spare_id = self.spare_ids.get(message[1])  # (ADAPTER_TAG, pid, "ready", info)
            if spare_id is not None and message[2] == "ready":
                self.book.spare_ready(spare_id)
        elif t is Exit:
            pass  # spares are linked to us; their exits arrive as Down too
        else:
            logger.debug("CLI budget %r ignored %r", self.pid, message)

    def _apply(self, effects: list[Effect]) -> None:
        me = self.pid
        for effect in effects:
            kind = effect[0]
            if kind == "grant":
                _, token, session, spare_id = effect
                spare = None
                if spare_id is not None:
                    spare = self.spare_pids.pop(spare_id)
                    self.spare_ids.pop(spare, None)
                    # still monitored: its exit frees the adopting session's slot
                    for ref, adapter in self.adapter_monitors.items():
                        if adapter == spare:
                            self.adapter_monitors[ref] = spare_id
                            break
                    otpy.unlink(spare)
                    otpy.send(spare, (_ADAPTER_TAG, "adopt", session))
                self._send(session, (BUDGET_TAG, me, "grant", token, spare))
            elif kind == "queued":
                self._send(effect[2], (BUDGET_TAG, me, "queued", effect[1], self.book.capacity))
            elif kind == "hibernate":
                self._send(effect[2], (BUDGET_TAG, me, "hibernate", effect[1]))
            elif kind == "start_spare":
                self._start_spare(effect[1], effect[2])
            elif kind == "discard_spare":
                pid = self.spare_pids.get(effect[1])
                if pid is not None:
                    otpy.send(pid, (_ADAPTER_TAG, "discard"))

    def _send(self, to: Any, message: Any) -> None:
        try:
            otpy.send(to, message)
        except Exception as exc:  # a session on a node that went away, a bad name
            logger.info("CLI budget %r: cannot reach %r: %r", self.pid, to, exc)

    def _start_spare(self, spare_id: int, key: Any) -> None:
        from claudecode.adapters._port import Launch, port_main

        template = self.templates.get(key)
        if template is None:  # the template changed meanwhile
            self._apply(self.book.adapter_down(spare_id))
            return
        port, options, cli = template
        launch = Launch.local(options, cli, port.callback_timeout)
        pid = otpy.spawn(port_main, port, self.pid, launch, link=True, trap_exits=True)
        self.spare_pids[spare_id] = pid
        self.spare_ids[pid] = spare_id
        self.adapter_monitors[otpy.monitor(pid)] = pid
        # telemetry: ("claudecode", "cli", "start") for a spare would go here.

    async def terminate(self, reason: otpy.ExitReason) -> None:
        spares = dict(self.spare_ids)
        if not spares:
            return
        for pid in spares:
            otpy.send(pid, (_ADAPTER_TAG, "discard"))
        waiting = {ref for ref, adapter in self.adapter_monitors.items() if adapter in spares}

        def is_spare_down(m: Any) -> bool:
            return type(m) is Down and m.ref in waiting

        try:
            while waiting:
                down = await otpy.receive(is_spare_down, timeout=10.0)
                waiting.discard(down.ref)
        except otpy.Timeout:
            for pid in spares:
                otpy.exit(pid, otpy.Kill())


class CLIBudget:
    """A shared limit on live CLIs. All methods are static; the budget is an
    otpy process (pass its pid or name as a session's ``cli_budget``)."""

    @staticmethod
    async def start_link(max_live_clis: int, *, prewarm_spares: int = 0,
                         name: Any = None) -> Pid:
        """Start a budget linked to the caller.

        Args:
            max_live_clis: the most CLIs alive at once among its sessions.
            prewarm_spares: CLIs to keep started ahead for new sessions
                (0 to ``max_live_clis - 1``; they count towards the limit).
            name: register the budget under this name.

        Returns:
            The budget's pid.

        Raises:
            ValueError: a limit out of range.
        """
        BudgetBook(max_live_clis, prewarm_spares)  # raises on bad limits, here
        return await _BudgetServer.start_link(max_live_clis, prewarm_spares, name=name)

    @staticmethod
    async def start(max_live_clis: int, *, prewarm_spares: int = 0, name: Any = None) -> Pid:
        """Like :meth:`start_link`, without the link.

        Args:
            max_live_clis: the limit.
            prewarm_spares: spares to keep.
            name: register the budget under this name.

        Returns:
            The budget's pid.
        """
        BudgetBook(max_live_clis, prewarm_spares)
        return await _BudgetServer.start(max_live_clis, prewarm_spares, name=name)

    @staticmethod
    def child_spec(max_live_clis: int, *, prewarm_spares: int = 0, name: Any = None,
                   id: Any = "claudecode.CLIBudget") -> ChildSpec:
        """A spec to run a budget in a supervision tree (start it before its sessions).

        Args:
            max_live_clis: the limit.
            prewarm_spares: spares to keep.
            name: its registered name (sessions name it in ``cli_budget``).
            id: the child id.

        Returns:
            The spec.
        """
        BudgetBook(max_live_clis, prewarm_spares)
        return ChildSpec(id=id, start=(CLIBudget.start_link, (max_live_clis,),
                                       {"prewarm_spares": prewarm_spares, "name": name}),
                         restart="permanent", shutdown=15.0, type="worker",
                         modules=["claudecode.CLIBudget"])

    @staticmethod
    async def info(budget: Any, timeout: float | None = 5.0) -> BudgetInfo:
        """What the budget holds now (live, busy, idle, waiting, spares, peaks).

        Args:
            budget: its pid or name.
            timeout: call timeout in seconds.

        Returns:
            A :class:`BudgetInfo`.
        """
        return await otpy.call(budget, ("info",), timeout)  # type: ignore[no-any-return]
