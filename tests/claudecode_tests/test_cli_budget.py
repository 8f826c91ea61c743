"""The CLI budget and hibernation on virtual time: a pure model of the budget's
book, and real sessions, supervisors and budgets driving simulated CLIs.

The sessions, the supervisor, the budget, the adapter messages and the slot
claims are the real code; only the CLI is simulated (`_sim_cli.SimCLI`, an
adapter like any other) so that trio's MockClock can run thousands of
arrivals, turns, idle timeouts and kills. The real CLI is exercised by
test_hibernation.py.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
import trio.testing
from _sim_cli import SimCLI, World
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import claudecode
import otpy
from claudecode._budget import BudgetBook

# ------------------------------------------------------------- the book, alone


class BookMachine(RuleBasedStateMachine):
    """Random events against `BudgetBook`, checked against what they must mean."""

    def __init__(self) -> None:
        super().__init__()
        self.book = BudgetBook(3, 0)
        self.next = 0
        self.sessions: dict[int, str] = {}  # token -> session
        self.waiting: list[int] = []  # tokens, in arrival order (the model's FIFO)
        self.granted: set[int] = set()
        self.claimed: dict[int, str] = {}  # token -> adapter
        self.idle: list[int] = []  # idle order
        self.asked: set[int] = set()
        self.leaving: set[int] = set()  # claimed by a session that exited

    def _reporting(self) -> list[int]:
        """Claimed slots whose session can still report idle/busy (messages a
        session sent before it exited arrive before its exit: none after)."""
        return sorted(set(self.claimed) - self.leaving)

    def _apply(self, effects: list[Any]) -> None:
        for effect in effects:
            if effect[0] == "grant":
                token = effect[1]
                assert self.waiting and self.waiting[0] == token, "FIFO broken"
                self.waiting.pop(0)
                self.granted.add(token)
            elif effect[0] == "hibernate":
                token = effect[1]
                assert token in self.idle and token not in self.asked
                # the longest idle among those not asked yet
                first = next(t for t in self.idle if t not in self.asked)
                assert token == first, "not the least recently used"
                self.asked.add(token)

    @rule(session=st.sampled_from("abcde"))
    def acquire(self, session: str) -> None:
        token = self.next
        self.next += 1
        self.sessions[token] = session
        self.waiting.append(token)
        self._apply(self.book.acquire(token, session))

    @precondition(lambda self: self.waiting)
    @rule(data=st.data())
    def cancel_waiting(self, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from(self.waiting))
        self.waiting.remove(token)
        self._apply(self.book.cancel(token))

    @precondition(lambda self: self.granted - set(self.claimed))
    @rule(data=st.data(), claim=st.booleans())
    def claim_or_cancel(self, data: st.DataObject, claim: bool) -> None:
        token = data.draw(st.sampled_from(sorted(self.granted - set(self.claimed))))
        if claim:
            assert self.book.claim(token, f"adapter{token}")
            self.claimed[token] = f"adapter{token}"
        else:
            self.granted.discard(token)
            self._apply(self.book.cancel(token))

    @precondition(lambda self: self._reporting())
    @rule(data=st.data(), idle=st.booleans())
    def idle_or_busy(self, data: st.DataObject, idle: bool) -> None:
        token = data.draw(st.sampled_from(self._reporting()))
        if idle:
            if token in self.idle:
                self.idle.remove(token)
            self.idle.append(token)
            self._apply(self.book.idle(token))
        else:
            if token in self.idle:
                self.idle.remove(token)
            self.asked.discard(token)
            self._apply(self.book.busy(token))

    @precondition(lambda self: self.claimed)
    @rule(data=st.data())
    def adapter_exits(self, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from(sorted(self.claimed)))
        adapter = self.claimed.pop(token)
        self.leaving.discard(token)
        self.granted.discard(token)
        if token in self.idle:
            self.idle.remove(token)
        self.asked.discard(token)
        self._apply(self.book.adapter_down(adapter))

    @rule(session=st.sampled_from("abcde"))
    def session_exits(self, session: str) -> None:
        mine = {t for t, s in self.sessions.items() if s == session}
        self.waiting = [t for t in self.waiting if t not in mine]
        for token in mine & (self.granted - set(self.claimed)):
            self.granted.discard(token)
        for token in mine & set(self.claimed):
            if token in self.idle:
                self.idle.remove(token)
            self.asked.add(token)  # on its way out: counts as a slot coming free
            self.leaving.add(token)
        self._apply(self.book.session_down(session))

    @rule()
    def stale_claim_is_refused(self) -> None:
        assert not self.book.claim(-1, "nobody")

    @invariant()
    def never_over_the_limit(self) -> None:
        assert self.book.live <= self.book.capacity
        assert self.book.live == len(self.granted)

    @invariant()
    def waiters_only_when_full(self) -> None:
        assert list(self.book.waiters) == self.waiting
        if self.waiting:
            assert self.book.free == 0

    @invariant()
    def enough_hibernations_asked(self) -> None:
        # every waiter has a slot coming free, as far as idle CLIs allow
        coming = len(self.asked & set(self.claimed))
        idle_left = [t for t in self.idle if t not in self.asked]
        assert coming >= len(self.waiting) or not idle_left


TestBook = BookMachine.TestCase
TestBook.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def test_book_rejects_bad_limits() -> None:
    for capacity, spares in [(0, 0), (2, 2), (2, -1), (True, 0), (1.5, 0)]:
        with pytest.raises(ValueError):
            BudgetBook(capacity, spares)  # type: ignore[arg-type]


# -------------------------------------------- real sessions, simulated CLIs


@attrs.define
class Outcome:
    session: str
    started: float
    ended: float = 0.0
    pid: Any = None
    text: str | None = None
    error: Any = None


async def _ask(name: str, outcomes: list[Outcome], timeout: float | None) -> None:
    outcome = Outcome(name, trio.current_time())
    outcomes.append(outcome)
    stream = claudecode.stream(name, "hi", timeout=timeout)
    try:
        outcome.text = await stream.final_text()
    except claudecode.StreamError as exc:
        outcome.error = exc.reason
    outcome.pid = stream._session_pid
    outcome.ended = trio.current_time()


def _adapter_of(info: dict[str, Any]) -> Any:
    return info.get("adapter_pid")


Op = tuple[float, str, int]
DELAYS = st.one_of(st.sampled_from([0.0, 0.0, 0.01, 0.3, 0.6, 1.0, 2.5]), st.floats(0.0, 6.0))
OPS = st.tuples(DELAYS, st.sampled_from(["ask"] * 12 + ["kill_cli", "kill_session"]),
                st.integers(0, 7))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(capacity=st.integers(1, 3), sessions=st.integers(2, 5),
       idle=st.one_of(st.none(), st.floats(0.5, 4.0)),
       ops=st.lists(OPS, min_size=6, max_size=50),
       timeout=st.sampled_from([None, 4.0, 30.0]), seed=st.integers(0, 2**16))
def test_never_more_clis_than_the_budget_and_no_conversation_lost(
        capacity: int, sessions: int, idle: float | None, ops: list[Op],
        timeout: float | None, seed: int) -> None:
    world = World(capacity=capacity)
    outcomes: list[Outcome] = []

    async def main() -> tuple[Any, int]:
        names = [f"s{i}" for i in range(sessions)]
        sup = await claudecode.Supervisor.start_link(
            [{"name": n, "adapter": SimCLI(world), "cli_idle_timeout": idle} for n in names],
            max_live_clis=capacity, max_restarts=1000, max_seconds=1)
        budget = (await claudecode.adapter_info(names[0]))["cli_budgets"][0]
        async with trio.open_nursery() as nursery:
            for delay, kind, index in ops:
                await trio.sleep(delay)
                name = names[index % sessions]
                if kind == "ask":
                    nursery.start_soon(_ask, name, outcomes, timeout)
                    continue
                pid = otpy.whereis(name)
                if pid is None:
                    continue
                if kind == "kill_session":
                    otpy.exit(pid, otpy.Kill())
                else:
                    try:
                        adapter = _adapter_of(await claudecode.adapter_info(name))
                    except otpy.CallError:
                        continue  # killed a moment ago
                    if adapter is not None:
                        otpy.exit(adapter, otpy.Kill())
        await trio.sleep(10)  # idle timeouts fire
        info = await claudecode.CLIBudget.info(budget)
        assert info.live >= len(world.live)  # slots held cover every live CLI
        assert info.waiting == 0
        otpy.unlink(sup)
        await otpy.stop(sup)
        return info, len(world.live)

    clock = trio.testing.MockClock(autojump_threshold=0)
    clock.jump(seed % 1000 / 1000)
    _, left = otpy.run(main, clock=clock)
    event(f"answers: {min(sum(o.text is not None for o in outcomes), 10)}+")
    event(f"resumed CLIs: {min(world.resumed, 5)}+")
    event(f"peak: {world.peak}/{capacity}")
    event(f"slot timeouts: {any(isinstance(o.error, claudecode.CLISlotTimeout) for o in outcomes)}")
    assert not world.violations, world.violations
    assert world.peak <= capacity
    assert left == 0, "CLIs left after the supervisor stopped"
    # Every query ended: answered, or a typed error (slot timeout, the kills, its
    # own stream timeout while queued behind the same session's turns).
    allowed = (claudecode.CLISlotTimeout, otpy.Killed, otpy.Shutdown, otpy.NoProc, otpy.Timeout)
    for o in outcomes:
        assert o.text is not None or isinstance(o.error, allowed), o
        if isinstance(o.error, claudecode.CLISlotTimeout):
            assert timeout is not None and o.ended - o.started == pytest.approx(timeout, abs=0.01)
    # No conversation lost: each session process answers from one conversation,
    # whose message count grows by 2 per answer, across hibernations and resumes.
    by_pid: dict[Any, list[Outcome]] = {}
    for o in sorted((o for o in outcomes if o.text is not None), key=lambda o: o.ended):
        by_pid.setdefault(o.pid, []).append(o)
    for answers in by_pid.values():
        sids = {a.text.split("#")[0] for a in answers if a.text}
        assert len(sids) == 1, answers
        counts = [int(a.text.split("#")[1]) for a in answers if a.text]
        assert counts == list(range(2, 2 * len(counts) + 1, 2)), answers


# ---------------------------------------------------------- exact scenarios


def _run(main: Any, *args: Any) -> Any:
    return otpy.run(main, *args, clock=trio.testing.MockClock(autojump_threshold=0))


def test_idle_timeout_hibernates_and_the_next_turn_resumes() -> None:
    world = World()

    async def main() -> None:
        s = await claudecode.start_link(adapter=SimCLI(world), cli_idle_timeout=30)
        first = await claudecode.stream(s, "one").final_text()
        sid = await claudecode.get_session_id(s)
        assert first == f"{sid}#2"
        t0 = trio.current_time()
        await trio.sleep(29.9)
        assert await claudecode.health(s) == "healthy" and len(world.live) == 1
        await trio.sleep(0.2)  # 30 s after the turn: the CLI is stopping
        assert await claudecode.health(s) == "hibernated"
        await trio.sleep(1)
        assert not world.live
        info = await claudecode.adapter_info(s)
        assert info["state"] == "hibernated" and info["os_pid"] is None
        assert await claudecode.interrupt(s) is None  # no turn: nothing to interrupt
        assert await claudecode.get_session_id(s) == sid
        assert await claudecode.stream(s, "two").final_text() == f"{sid}#4"
        assert world.resumed == 1 and trio.current_time() - t0 > 30
        info = await claudecode.adapter_info(s)
        assert (info["cli_starts"], info["hibernations"], info["resumes"]) == (2, 1, 1)
        # health polls do not count as turns: the CLI still hibernates on time
        t1 = trio.current_time()
        while await claudecode.health(s) != "hibernated":
            await trio.sleep(1)
        assert 29.99 <= trio.current_time() - t1 <= 31.01
        await claudecode.clear(s)  # a fresh conversation, not a resume
        assert await claudecode.get_session_id(s) is None
        assert await claudecode.health(s) == "healthy"
        text = await claudecode.stream(s, "three").final_text()
        assert text.endswith("#2") and not text.startswith(sid)
        await claudecode.stop(s)
        assert not world.live

    _run(main)


def test_a_session_without_persistence_never_hibernates() -> None:
    with pytest.raises(claudecode.InvalidOptionError) as info:
        claudecode.Options(cli_idle_timeout=5, no_session_persistence=True)
    assert info.value.option == "cli_idle_timeout"


def test_fork_then_hibernate_resumes_the_fork_not_the_original() -> None:
    world = World()

    async def main() -> None:
        a = await claudecode.start_link(adapter=SimCLI(world))
        await claudecode.stream(a, "one").final_text()
        original = await claudecode.get_session_id(a)
        await claudecode.stop(a)
        world.disk["fork-of-" + str(original)] = world.disk[str(original)]
        # (the simulated CLI resumes; a fork is a resume under a new id here)
        b = await claudecode.start_link(adapter=SimCLI(world), resume="fork-of-" + str(original),
                                        cli_idle_timeout=5)
        assert (await claudecode.stream(b, "two").final_text()).endswith("#4")
        await trio.sleep(10)
        assert await claudecode.health(b) == "hibernated"
        assert (await claudecode.stream(b, "three").final_text()) == \
            f"fork-of-{original}#6"
        assert world.disk[str(original)] == 2  # the original conversation untouched
        await claudecode.stop(b)

    _run(main)


def test_fifo_waiting_and_lru_hibernation() -> None:
    world = World(capacity=2)

    async def main() -> None:
        names = ["a", "b", "c", "d"]
        sup = await claudecode.Supervisor.start_link(
            [{"name": n, "adapter": SimCLI(world)} for n in names], max_live_clis=2)
        await claudecode.stream("a", "x").final_text()
        await trio.sleep(1)
        await claudecode.stream("b", "x").final_text()
        # c needs a CLI: a (idle longest) hibernates, not b
        await claudecode.stream("c", "x").final_text()
        assert await claudecode.health("a") == "hibernated"
        assert await claudecode.health("b") == "healthy"
        # b and c busy: d waits, then gets the first slot that frees
        order: list[str] = []

        async def ask(name: str) -> None:
            await claudecode.stream(name, "y").final_text()
            order.append(name)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, "b")
            await trio.sleep(0.5)
            nursery.start_soon(ask, "c")  # b's CLI is free first, then c's
            await trio.sleep(0.1)
            nursery.start_soon(ask, "d")
            await trio.sleep(0.1)
            nursery.start_soon(ask, "a")
        # FIFO: d asked first, so d gets the first CLI slot that comes free
        assert order == ["b", "c", "d", "a"]
        pids = {n: otpy.whereis(n) for n in names}
        later = [p for p in world.started_for if p in (pids["a"], pids["d"])][-2:]
        assert later == [pids["d"], pids["a"]]
        budget = (await claudecode.adapter_info("a"))["cli_budgets"][0]
        info = await claudecode.CLIBudget.info(budget)
        assert info.peak_live == 2 and world.peak == 2 and not world.violations
        otpy.unlink(sup)
        await otpy.stop(sup)

    _run(main)


def test_waiting_past_the_query_timeout_is_a_typed_error() -> None:
    world = World(capacity=1, turn_delay=100.0)

    async def main() -> None:
        sup = await claudecode.Supervisor.start_link(
            [{"name": n, "adapter": SimCLI(world), "timeout": 20} for n in ("a", "b")],
            max_live_clis=1)
        got: dict[str, Any] = {}

        async def long_turn() -> None:
            got["a"] = await claudecode.stream("a", "long", timeout=None).final_text()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(long_turn)
            await trio.sleep(1)
            t0 = trio.current_time()
            with pytest.raises(claudecode.StreamError) as info:
                # the stream's own timeout (20 s per message) does not fire first:
                # the session says it is waiting, and fails the query at 20 s
                await claudecode.stream("b", "short").final_text()
            assert isinstance(info.value.reason, claudecode.CLISlotTimeout)
            assert info.value.reason.max_live_clis == 1
            assert trio.current_time() - t0 == pytest.approx(20, abs=0.01)
            assert "max_live_clis=1" in str(info.value)
            assert await claudecode.health("b") == "healthy"  # nothing started, nothing lost
            # an explicit stream timeout is the limit
            t0 = trio.current_time()
            with pytest.raises(claudecode.StreamError) as info:
                await claudecode.stream("b", "short", timeout=5).final_text()
            assert trio.current_time() - t0 == pytest.approx(5, abs=0.01)
        assert got["a"].endswith("#2")
        budget = (await claudecode.adapter_info("b"))["cli_budgets"][0]
        assert (await claudecode.CLIBudget.info(budget)).waiting == 0
        # with the slot free again, b is served
        assert (await claudecode.stream("b", "again", timeout=200).final_text()).endswith("#2")
        otpy.unlink(sup)
        await otpy.stop(sup)

    _run(main)


def test_an_abandoned_wait_gives_the_slot_request_back() -> None:
    world = World(capacity=1, turn_delay=50.0)

    async def main() -> None:
        sup = await claudecode.Supervisor.start_link(
            [{"name": n, "adapter": SimCLI(world)} for n in ("a", "b")], max_live_clis=1)
        budget = (await claudecode.adapter_info("a"))["cli_budgets"][0]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(claudecode.stream("a", "long").final_text)
            await trio.sleep(1)
            with trio.move_on_after(3):
                await claudecode.stream("b", "x").final_text()
            await trio.sleep(0.1)
            info = await claudecode.CLIBudget.info(budget)
            assert info.waiting == 0 and info.live == 1
            assert (await claudecode.adapter_info("b"))["state"] == "none"
        otpy.unlink(sup)
        await otpy.stop(sup)

    _run(main)


def test_a_killed_session_gives_its_slot_back_only_when_its_cli_is_gone() -> None:
    world = World(capacity=1, stop_delay=2.0)

    async def main() -> None:
        sup = await claudecode.Supervisor.start_link(
            [{"name": n, "adapter": SimCLI(world)} for n in ("a", "b")], max_live_clis=1,
            max_restarts=10)
        await claudecode.stream("a", "x").final_text()
        a = otpy.whereis("a")
        assert a is not None
        otpy.exit(a, otpy.Kill())
        # b asks at once; a's CLI takes 2 s to stop: b's starts only after
        assert (await claudecode.stream("b", "x").final_text()).endswith("#2")
        assert not world.violations and world.peak == 1
        otpy.unlink(sup)
        await otpy.stop(sup)

    _run(main)


def test_the_budget_dies_with_its_supervisor_and_no_cli_is_left() -> None:
    world = World(capacity=2)

    async def main() -> None:
        otpy.trap_exits(True)
        sup = await claudecode.Supervisor.start_link(
            [{"name": n, "adapter": SimCLI(world)} for n in ("a", "b")], max_live_clis=2)
        budget = (await claudecode.adapter_info("a"))["cli_budgets"][0]
        await claudecode.stream("a", "x").final_text()
        ref = otpy.monitor(sup)
        otpy.exit(budget, otpy.Kill())  # a bug in the budget: the whole group stops
        down = await otpy.receive(lambda m: isinstance(m, otpy.Down) and m.ref == ref)
        assert down.reason == otpy.Killed()
        assert not world.live

    _run(main)


def test_supervisor_rejects_bad_budgets() -> None:
    async def main() -> None:
        with pytest.raises(ValueError):
            await claudecode.Supervisor.start_link([], max_live_clis=0)
        with pytest.raises(ValueError):
            await claudecode.Supervisor.start_link([], max_live_clis=2, prewarm_spares=2)
        with pytest.raises(ValueError):
            await claudecode.Supervisor.start_link([], prewarm_spares=1)

    _run(main)


def test_sandbox_max_clis_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    from claudecode._cli import build_parser

    parser = build_parser()
    base = ["sandbox", "--name", "claude@host", "--workspace-root", "/srv/ws"]
    assert parser.parse_args([*base, "--max-clis", "3"]).max_clis == 3
    assert parser.parse_args(base).max_clis is None
    for bad in ("0", "-1", "many"):
        with pytest.raises(SystemExit):
            parser.parse_args([*base, "--max-clis", bad])
    assert "--max-clis" in capsys.readouterr().err


def test_book_spares_are_adopted_discarded_and_refilled() -> None:
    book = BudgetBook(3, 1)
    effects = book.acquire("t1", "a", key="K")
    assert effects[0] == ("grant", "t1", "a", None)
    assert effects[1][0] == "start_spare" and effects[1][2] == "K"  # one spare, from a's options
    spare = effects[1][1]
    assert book.live == 2
    book.spare_ready(spare)
    # b, a new conversation with the same options: adopts the spare
    effects = book.acquire("t2", "b", key="K")
    assert effects[0] == ("grant", "t2", "b", spare)
    assert effects[1][0] == "start_spare"  # refilled in the free slot
    second = effects[1][1]
    assert book.live == 3 and book.spares_adopted == 1
    assert book.claim("t1", "adapter-a")
    assert not book.claim("t2", "x")  # an adopted spare is claimed already
    book.idle("t1")
    # c must resume (no key): a's idle CLI hibernates; the spare (a start-up's
    # worth of CPU) stays
    effects = book.acquire("t3", "c")
    assert effects == [("hibernate", "t1", "a"), ("queued", "t3", "c")]
    assert book.adapter_down("adapter-a") == [("grant", "t3", "c", None)]
    assert book.claim("t3", "adapter-c")
    # d must resume and no CLI is idle: the spare goes, at once
    effects = book.acquire("t4", "d")
    assert effects == [("discard_spare", second), ("queued", "t4", "d")]
    assert book.adapter_down(second)[0] == ("grant", "t4", "d", None)
    assert book.claim("t4", "adapter-d")
    # no spare, no free slot: an idle CLI is not stopped to make a spare...
    assert book.idle("t3") == []
    # ...but a slot that comes free gets one again
    effects = book.adapter_down("adapter-c")
    assert effects and effects[0][0] == "start_spare"
    assert book.live == 3


def test_book_stops_making_spares_that_die_before_ready() -> None:
    book = BudgetBook(2, 1)
    effects = book.acquire("t1", "a", key="K")
    for _ in range(3):
        spare = next(e[1] for e in effects if e[0] == "start_spare")
        effects = book.adapter_down(spare)  # died before it was ready
    assert not any(e[0] == "start_spare" for e in effects)
    assert book.spare_by_id == {}
    # a new template (other options) is tried again
    effects = book.acquire("t2", "b", key="K2")
    assert ("grant", "t2", "b", None) in effects


def test_book_a_new_template_discards_the_old_spares() -> None:
    book = BudgetBook(3, 1)
    effects = book.acquire("t1", "a", key="K")
    old = next(e[1] for e in effects if e[0] == "start_spare")
    effects = book.acquire("t2", "b", key="K2")
    assert ("discard_spare", old) in effects and ("grant", "t2", "b", None) in effects


def test_a_budgeted_supervisor_inside_an_application_tree() -> None:
    world = World(capacity=1)

    async def main() -> None:
        spec = claudecode.Supervisor.child_spec(
            [{"name": n, "adapter": SimCLI(world)} for n in ("a", "b")], name="claude",
            max_live_clis=1)
        root = await otpy.Supervisor.start_link([spec])
        rows = await claudecode.Supervisor.list_sessions("claude")
        assert [r.id for r in rows] == ["a", "b"]  # the budget is not a child
        assert await claudecode.Supervisor.count_sessions("claude") == 2
        # a session added later gets the budget too, as does one added from a config
        await claudecode.Supervisor.start_session("claude", {"name": "c", "adapter": SimCLI(world)})
        for n in ("a", "b", "c", "a"):
            assert (await claudecode.stream(n, "x").final_text()).split("#")[1] in ("2", "4")
        assert world.peak == 1 and not world.violations
        budgets = {(await claudecode.adapter_info(n))["cli_budgets"][0] for n in ("a", "b", "c")}
        assert len(budgets) == 1
        otpy.unlink(root)
        await otpy.stop(root)
        assert not world.live

    _run(main)


def test_telemetry_cli_events_around_a_hibernation() -> None:
    world = World()
    events: list[tuple[str, Any]] = []

    def handler(event: Any, measurements: Any, metadata: Any) -> None:
        events.append((event[2], metadata.get("why", metadata.get("reason"))))

    async def main() -> None:
        s = await claudecode.start_link(adapter=SimCLI(world), cli_idle_timeout=5)
        await claudecode.stream(s, "one").final_text()
        await trio.sleep(10)
        await claudecode.stream(s, "two").final_text()
        await claudecode.stop(s)

    otpy.telemetry.attach("hibernation-test", [("claudecode", "cli")], handler)
    try:
        _run(main)
    finally:
        otpy.telemetry.detach("hibernation-test")
    assert events == [("start", None), ("hibernate", "idle"), ("exit", otpy.Shutdown()),
                      ("start", None), ("exit", otpy.Shutdown())]
