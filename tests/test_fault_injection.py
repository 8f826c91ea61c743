"""otpy.testing as a fault-injection toolkit: it finds bugs in broken trees, shrinks
them to a few faults, replays them exactly, and stays quiet on correct trees.

The three broken trees are the kinds of mistakes users make: a hand-rolled
restarter that gives up after one restart, a strategy too weak for a
dependency between siblings, and a name given once, to the first process
only. Each is found by hypothesis from `otpy.testing.faults()` and shrunk to
three faults or fewer.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

import otpy
import otpy.testing as ot
from otpy.testing import Fault

FIND = settings(max_examples=400, database=None, deadline=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)  # crash reports of injected faults


class Server(otpy.GenServer):
    """A worker that answers ``ping`` and ignores everything else."""

    async def handle_call(self, request: Any, caller: Any) -> Any:
        return "pong"

    async def handle_info(self, message: Any) -> None:
        return None


def fails(tree: Any) -> Any:
    def bad(schedule: list[Fault]) -> bool:
        return not ot.run(tree, schedule).ok

    return bad


# ------------------------------------------- broken tree 1: a forgetful restarter


async def db_loop() -> None:
    while True:
        await otpy.receive()


async def keeper(parent: otpy.Pid) -> None:
    """Keeps a named "db" process alive — but only restarts it once (the bug)."""
    otpy.trap_exits(True)
    restarted = False
    db = otpy.spawn(db_loop, link=True, name="db")
    while True:
        msg = await otpy.receive()
        if isinstance(msg, otpy.Exit) and msg.pid == parent:
            raise otpy.ProcessExit(msg.reason)
        if isinstance(msg, otpy.Exit) and msg.pid == db and not restarted:
            restarted = True
            db = otpy.spawn(db_loop, link=True, name="db")


async def start_keeper() -> otpy.Pid:
    return otpy.spawn(keeper, otpy.self(), link=True)


async def forgetful_tree(schedule: list[Fault]) -> ot.Report:
    sup = await otpy.Supervisor.start_link([otpy.ChildSpec("keeper", start_keeper)])
    return await ot.inject(sup, schedule)


def test_a_restarter_that_forgets_after_one_restart_is_found_in_two_faults() -> None:
    schedule = find(ot.faults(targets=st.just("db")), fails(forgetful_tree), settings=FIND)
    assert len(schedule) == 2
    report = ot.run(forgetful_tree, schedule)
    assert report.applied == 2
    assert report.violations == [
        "'db' is not registered any more: db <0.5.0> held it and exited (Killed()); the tree "
        "is running again but nobody registered the name again"]


def test_the_forgetful_restarter_is_also_found_from_any_process_of_the_tree() -> None:
    # Drawing targets among all the tree's processes finds it too (killing the keeper
    # itself only restarts it), and still shrinks to a few faults.
    schedule = find(ot.faults(), fails(forgetful_tree), settings=FIND)
    assert len(schedule) <= 3
    assert not ot.run(forgetful_tree, schedule).ok


# -------------------------------------------- broken tree 2: a strategy too weak


class Db(otpy.GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        return "row"


class Cache(otpy.GenServer):
    """Looks the db up once, at start, and keeps its pid (so it must restart with it)."""

    async def init(self) -> None:
        self.db = otpy.whereis("db")

    async def handle_call(self, request: Any, caller: Any) -> Any:
        return await otpy.call(self.db, request)


class WrongStrategy(ot.TreeMachine):
    """one_for_one where the cache depends on the db: rest_for_one is needed."""

    async def start(self) -> otpy.Pid:
        return await otpy.Supervisor.start_link(
            [Db.child_spec(name="db"), Cache.child_spec(name="cache")],
            strategy=self.strategy, max_restarts=100)

    strategy = "one_for_one"

    @ot.invariant()
    async def the_cache_answers(self) -> None:
        assert await otpy.call("cache", "get") == "row"


def test_a_wrong_strategy_is_found_by_a_tree_machine_and_shrunk() -> None:
    with pytest.raises(AssertionError) as info:
        run_state_machine_as_test(WrongStrategy, settings=settings(
            FIND, max_examples=200, stateful_step_count=10))
    message = str(info.value)
    assert "invariant the_cache_answers failed: CallError" in message
    faults = re.findall(r"otpy\.testing\.Fault\(", message.split("replay")[-1])
    assert 1 <= len(faults) <= 3


class RightStrategy(WrongStrategy):
    strategy = "rest_for_one"


def test_the_right_strategy_passes_the_same_machine() -> None:
    run_state_machine_as_test(RightStrategy, settings=settings(
        FIND, max_examples=30, stateful_step_count=10))


# -------------------------------------------- broken tree 3: a name given once


async def start_app() -> otpy.Pid:
    sup = await otpy.Supervisor.start_link([Server.child_spec(id="metrics")])
    [child] = await otpy.Supervisor.which_children(sup)
    assert child.pid is not None
    otpy.register("metrics", child.pid)  # the bug: only the first process gets the name
    return sup


async def named_once_tree(schedule: list[Fault]) -> ot.Report:
    return await ot.inject(await start_app(), schedule)


def test_a_name_not_registered_again_after_a_restart_is_found_in_one_fault() -> None:
    schedule = find(ot.faults(), fails(named_once_tree), settings=FIND)
    assert len(schedule) == 1
    report = ot.run(named_once_tree, schedule)
    assert "'metrics' is not registered any more" in report.violations[0]
    assert "restarted" in report.violations[0]


# ------------------------------------------------------------ correct trees


class Worker(otpy.GenServer):
    """Optionally traps exits, has a linked helper, or is slow to terminate."""

    async def init(self, helper: bool = False, trap: bool = False, slow: float = 0.0) -> None:
        otpy.trap_exits(trap)
        self.slow = slow
        self.helper = otpy.spawn(db_loop, link=True) if helper else None

    async def handle_call(self, request: Any, caller: Any) -> Any:
        return request

    async def handle_info(self, message: Any) -> None:
        return None

    async def terminate(self, reason: Any) -> None:
        if self.helper is not None:
            otpy.exit(self.helper, otpy.Shutdown())
        await trio.sleep(self.slow)


def app_tree() -> list[otpy.ChildSpec]:
    workers = [
        Worker.child_spec(id=f"w{i}", name=f"w{i}" if i % 2 else None, helper=i % 3 == 0,
                          trap=i % 2 == 1, slow=0.5 * (i % 2),
                          restart=("permanent", "transient", "temporary")[i % 3],
                          shutdown=(5.0, "brutal_kill", 0.25)[i % 3])
        for i in range(6)
    ]
    return [
        otpy.Registry.child_spec("names"),
        otpy.Supervisor.child_spec(workers[:3], "one_for_all", 3, 2.0, id="front"),
        otpy.Supervisor.child_spec(workers[3:], "rest_for_one", 5, 5.0, id="back"),
        otpy.DynamicSupervisor.child_spec(id="pool", name="pool"),
        Worker.child_spec(id="top", name=otpy.Via("names", "top"), helper=True),
    ]


async def start_app_tree() -> otpy.Pid:
    sup = await otpy.Supervisor.start_link(app_tree(), "rest_for_one", 10, 5.0)
    for k in range(3):
        await otpy.DynamicSupervisor.start_child(
            "pool", Worker.child_spec(id=None, helper=True,
                                      restart=("permanent", "transient", "temporary")[k]))
    return sup


async def correct_tree(schedule: list[Fault]) -> ot.Report:
    return await ot.inject(await start_app_tree(), schedule)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(ot.faults(max_faults=15))
def test_a_correct_tree_holds_every_invariant(schedule: list[Fault]) -> None:
    ot.run(correct_tree, schedule).check()


def test_the_same_seed_and_schedule_replay_the_same_timeline() -> None:
    actions = ("kill", "crash", "normal", "shutdown")
    schedule = [Fault(0.25 * (i % 3), 1 + (i * 7) % 40, actions[i % 4]) for i in range(30)]
    first = ot.run(correct_tree, schedule, seed=3)
    again = ot.run(correct_tree, schedule, seed=3)
    assert str(first.timeline) == str(again.timeline)
    assert first.ok and len(first.timeline) > 60


REPLAY = """
import hashlib, logging, sys
sys.path.insert(0, {tests!r})
logging.disable(logging.CRITICAL)
import otpy.testing as ot
from test_fault_injection import correct_tree
from otpy.testing import Fault
schedule = [Fault(0.25 * (i % 3), 1 + (i * 7) % 40, ("kill", "crash", "normal", "shutdown")[i % 4])
            for i in range(30)]
print(hashlib.sha1(str(ot.run(correct_tree, schedule, seed=3).timeline).encode()).hexdigest())
"""


def test_a_replay_in_another_interpreter_gives_the_same_timeline() -> None:
    code = REPLAY.format(tests=str(__import__("pathlib").Path(__file__).parent))
    digests = set()
    for hashseed in ("1", "2"):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={"PYTHONHASHSEED": hashseed, "PATH": "/usr/bin:/bin"},
                              timeout=120, check=True)
        digests.add(done.stdout.strip())
    assert len(digests) == 1


# ------------------------------------------------------- settle and reports


class Slow(otpy.GenServer):
    trap_exits = True

    async def terminate(self, reason: Any) -> None:
        await trio.sleep(3)  # longer than its 1 s shutdown: it is killed


def test_settle_waits_for_slow_shutdowns_on_virtual_time() -> None:
    async def main() -> tuple[float, list[Any]]:
        sup = await otpy.Supervisor.start_link(
            [Server.child_spec(id="a"), Slow.child_spec(id="b", shutdown=1.0),
             Server.child_spec(id="c")], strategy="one_for_all")
        before = await otpy.Supervisor.which_children(sup)
        t0 = trio.current_time()
        otpy.exit(before[0].pid, otpy.Kill())  # type: ignore[arg-type]
        await ot.settle()
        after = await otpy.Supervisor.which_children(sup)
        assert all(r.pid is not None for r in after)
        assert not {r.pid for r in after} & {r.pid for r in before}
        return trio.current_time() - t0, after

    elapsed, _ = ot.run(main)
    assert elapsed == 1.0  # b's shutdown timeout passed, virtually, and nothing else


def test_a_report_prints_its_timeline_and_a_replayable_call() -> None:
    async def main() -> ot.Report:
        return await ot.inject(await start_app(), [Fault(0.5, ("metrics",), "crash")],
                               root_name="app")

    report = ot.run(main)
    text = str(report)
    assert "0.500  fault     #1 crash app/metrics <0.3.0>" in text
    assert "0.500  exit      app/metrics <0.3.0> Crash(InjectedFault())" in text
    assert "0.500  restart   app/metrics after Crash(InjectedFault())" in text
    assert "report = await otpy.testing.inject(app, [\n    otpy.testing.Fault(at=0.5, " \
           "target=('metrics',), action='crash'),\n])" in text
    with pytest.raises(AssertionError, match="not registered any more"):
        report.check()


def test_a_supervisor_that_gives_up_is_reported_and_the_caller_survives() -> None:
    async def main() -> ot.Report:
        sup = await otpy.Supervisor.start_link(
            [Server.child_spec(id="a")], max_restarts=1, max_seconds=5)
        report = await ot.inject(sup, [Fault(1, ("a",), "kill"), Fault(1, ("a",), "kill"),
                                       Fault(1, ("a",), "kill")])
        assert not otpy.is_alive(sup)
        assert not otpy.registered()
        return report

    report = ot.run(main)
    assert report.ok, report
    assert report.gave_up == ["root"]
    assert "2.000  GIVE UP   root (more than 1 restarts in 5 s)" in str(report)
    assert "no live target" in str(report.timeline[-1])


def test_a_leaked_process_and_a_stuck_exit_are_violations() -> None:
    class Leaky(otpy.GenServer):
        async def init(self) -> None:
            otpy.spawn(db_loop)  # not linked: outlives this server

        async def handle_info(self, message: Any) -> None:
            return None

    async def main() -> ot.Report:
        sup = await otpy.Supervisor.start_link([Leaky.child_spec(id="leaky")])
        return await ot.inject(sup, [Fault(0, ("leaky",), "kill")])

    report = ot.run(main)
    assert len(report.violations) == 1
    assert "was left behind: spawned by <0.3.0>" in report.violations[0]


def test_inject_needs_recorded_events_and_known_actions() -> None:
    async def unrecorded() -> None:
        sup = await otpy.Supervisor.start_link([])
        with pytest.raises(RuntimeError, match="needs the node's events"):
            await ot.inject(sup, [])

    otpy.run(unrecorded)

    async def bad_action() -> None:
        sup = await otpy.Supervisor.start_link([])
        with pytest.raises(ValueError, match="unknown fault action 'explode'"):
            await ot.inject(sup, [Fault(0, 0, "explode")])

    ot.run(bad_action)


def test_exit_reasons_as_actions_follow_erlangs_signal_rules() -> None:
    class Trapper(otpy.GenServer):
        trap_exits = True

        async def handle_info(self, message: Any) -> None:
            self.seen = message

    async def main() -> ot.Report:
        sup = await otpy.Supervisor.start_link([Trapper.child_spec(id="t"),
                                                Server.child_spec(id="s")])
        # a trapping server gets the signal as a message and lives; the other dies
        return await ot.inject(sup, [Fault(0, ("t",), otpy.TermReason("boo")),
                                     Fault(0, ("s",), otpy.TermReason("boo"))])

    report = ot.run(main)
    assert report.ok, report
    assert [e.kind for e in report.timeline].count("restart") == 1
    assert "otpy.TermReason(term='boo')" in report.replay()


def test_docs_example_is_self_contained() -> None:
    # the opening example of docs/otpy/testing.md, run as a user would
    page = (__import__("pathlib").Path(__file__).parent.parent / "docs" / "otpy" /
            "testing.md").read_text()
    first = page.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(textwrap.dedent(first).strip().splitlines()) <= 15
