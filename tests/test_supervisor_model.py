"""Model-based tests: otpy's supervisors against `otpy.testing.SupervisorModel`.

The model (public, in ``otpy.testing``) knows strategies (one_for_one /
one_for_all / rest_for_one), restart types (permanent / transient /
temporary) and restart intensity (more than max_restarts restarts within
max_seconds -> the supervisor shuts down). Two properties use it:

* by hand: hypothesis draws a flat tree and a schedule of child exits at
  given times; the real `otpy.Supervisor` runs it on trio's MockClock, the
  model is told each exit, and after every event the observable state must
  agree: is the supervisor alive, which children (in order) it has, which are
  running, and how often each was started (a new pid is a new start);
* through `otpy.testing.inject`: nested trees of supervisors and
  DynamicSupervisors under drawn fault schedules, where the model is kept in
  step with the live tree and every reaction (restarts in order, siblings
  shut down newest first, give-ups) is checked.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import otpy
import otpy.testing as ot
from otpy.testing import SupervisorModel

RESTARTS = ("permanent", "transient", "temporary")
REASONS = {
    "normal": otpy.Normal(),
    "shutdown": otpy.Shutdown(),
    "crash": otpy.TermReason("boom"),
}


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)  # the crash reports of the injected exits


# ------------------------------------------------------------ the real thing


class Child(otpy.GenServer):
    async def handle_call(self, request: Any, caller: Any) -> Any:
        raise otpy.Stop(request, reply="ok")


async def run_real(
    strategy: str,
    max_restarts: int,
    max_seconds: float,
    restarts: list[str],
    schedule: list[tuple[float, int, str]],
    clock: trio.testing.MockClock,
) -> list[Any]:
    otpy.trap_exits(True)
    specs = [
        otpy.ChildSpec(f"c{i}", (Child.start_link, (), {}), restart=r)  # type: ignore[arg-type]
        for i, r in enumerate(restarts)
    ]
    sup = await otpy.Supervisor.start_link(
        specs, strategy=strategy, max_restarts=max_restarts,  # type: ignore[arg-type]
        max_seconds=max_seconds,
    )
    pids = {c.id: c.pid for c in await otpy.Supervisor.which_children(sup)}
    generations = dict.fromkeys(pids, 1)  # starts so far
    observations = []
    for dt, index, reason in schedule:
        clock.jump(dt)
        if not otpy.is_alive(sup):
            observations.append(None)
            continue
        rows = await otpy.Supervisor.which_children(sup)
        running = [r for r in rows if r.pid is not None]
        if not running:
            observations.append(None)
            continue
        target = running[index % len(running)]
        await otpy.call(target.pid, REASONS[reason])
        await trio.testing.wait_all_tasks_blocked()
        if not otpy.is_alive(sup):
            exit_msg = await otpy.receive(otpy.Exit, timeout=0)
            assert exit_msg == otpy.Exit(sup, otpy.Shutdown())
            observations.append((target.id, reason, (False, [])))
            continue
        rows = await otpy.Supervisor.which_children(sup)
        seen = []
        for r in rows:
            if r.pid is not None and r.pid != pids.get(r.id):
                generations[r.id] = generations.get(r.id, 1) + 1
                pids[r.id] = r.pid
            seen.append((r.id, r.pid is not None, generations.get(r.id, 1)))
        observations.append((target.id, reason, (True, seen)))
    return observations


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    strategy=st.sampled_from(["one_for_one", "one_for_all", "rest_for_one"]),
    max_restarts=st.integers(0, 4),
    max_seconds=st.sampled_from([1.0, 2.0, 5.0, 10.0]),
    restarts=st.lists(st.sampled_from(RESTARTS), min_size=1, max_size=5),
    schedule=st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.5, 1.0, 2.5, 6.0]),
            st.integers(0, 4),
            st.sampled_from(sorted(REASONS)),
        ),
        max_size=20,
    ),
)
def test_supervisor_matches_reference_model(
    strategy: str,
    max_restarts: int,
    max_seconds: float,
    restarts: list[str],
    schedule: list[tuple[float, int, str]],
) -> None:
    clock = trio.testing.MockClock()
    observations = otpy.run(
        run_real, strategy, max_restarts, max_seconds, restarts, schedule, clock,
        clock=clock, shutdown_timeout=1.0,
    )
    model = SupervisorModel.of(
        [otpy.ChildSpec(f"c{i}", (Child.start_link, (), {}), restart=r)  # type: ignore[arg-type]
         for i, r in enumerate(restarts)],
        strategy, max_restarts, max_seconds)
    now = 0.0
    for (dt, _, _), observed in zip(schedule, observations, strict=True):
        now += dt
        if observed is None:
            # supervisor already gone, or nothing left running to crash
            assert not model.alive or not any(c.running for c in model.children)
            continue
        child_id, reason, real_state = observed
        model.exit(child_id, REASONS[reason], now)
        alive, children = model.observe()
        assert real_state == (alive, children if alive else []), (child_id, reason, now)


# --------------------------------------------- nested trees, through inject


class Worker(otpy.GenServer):
    """A worker; some trap exits (their terminate runs when their supervisor goes)."""

    async def init(self, trap: bool = False) -> None:
        otpy.trap_exits(trap)

    async def handle_info(self, message: Any) -> None:
        return None


@st.composite
def trees(draw: st.DrawFn, depth: int = 0, path: str = "r") -> otpy.ChildSpec:
    """A supervisor spec with workers, nested supervisors and DynamicSupervisors."""
    children = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from("wwsd")) if depth < 2 else "w"
        cid = f"{path}{i}"
        restart = draw(st.sampled_from(RESTARTS))
        if kind == "w":
            children.append(Worker.child_spec(
                id=f"w{cid}", restart=restart, trap=draw(st.booleans()),
                shutdown=draw(st.sampled_from([5.0, 0.5, "brutal_kill"]))))
        elif kind == "s":
            children.append(draw(trees(depth + 1, cid)))
        else:
            children.append(otpy.DynamicSupervisor.child_spec(
                max_restarts=draw(st.integers(0, 3)), max_seconds=draw(st.sampled_from([1, 5])),
                id=f"d{cid}", name=f"d{cid}", restart=restart))
    return otpy.Supervisor.child_spec(
        children, draw(st.sampled_from(["one_for_one", "one_for_all", "rest_for_one"])),
        draw(st.integers(0, 4)), draw(st.sampled_from([1.0, 2.0, 5.0])), id=f"s{path}",
        restart=draw(st.sampled_from(RESTARTS)))


async def run_tree(spec: otpy.ChildSpec, dynamic: int, schedule: list[ot.Fault]) -> ot.Report:
    fn, args, kwargs = spec.start
    sup = await fn(*args, **{k: v for k, v in kwargs.items() if k != "name"})
    for name in otpy.registered():
        for k in range(dynamic):
            await otpy.DynamicSupervisor.start_child(
                name, Worker.child_spec(id=None, restart=RESTARTS[k % 3]))
    return await ot.inject(sup, schedule)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(), st.integers(0, 3), ot.faults(max_faults=20))
def test_nested_trees_match_the_model_under_faults(
    spec: otpy.ChildSpec, dynamic: int, schedule: list[ot.Fault]
) -> None:
    ot.run(run_tree, spec, dynamic, schedule, shutdown_timeout=60.0).check()
