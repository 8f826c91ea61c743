"""Model-based test: a pure reference model of supervisor semantics vs the real thing.

The model knows strategies (one_for_one / one_for_all / rest_for_one),
restart types (permanent / transient / temporary) and restart intensity
(more than max_restarts restarts within max_seconds -> the supervisor shuts
down). Hypothesis draws a tree and a schedule of child exits at given times;
the real `otpy.Supervisor` runs the same schedule on trio's MockClock, and
after every event the observable state must agree: is the supervisor alive,
which children (in order) it has, which are running, and which were
restarted (got a new pid).
"""

from __future__ import annotations

from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import otpy

RESTARTS = ("permanent", "transient", "temporary")
REASONS = {
    "normal": otpy.Normal(),
    "shutdown": otpy.Shutdown(),
    "crash": otpy.TermReason("boom"),
}


# ----------------------------------------------------------------- the model


@attrs.define
class ModelChild:
    id: str
    restart: str
    running: bool = True
    generation: int = 0


@attrs.define
class Model:
    strategy: str
    max_restarts: int
    max_seconds: float
    children: list[ModelChild]
    alive: bool = True
    restarts: list[float] = attrs.Factory(list)

    def child_exit(self, child_id: str, reason: str, now: float) -> None:
        child = next(c for c in self.children if c.id == child_id)
        child.running = False
        restart = child.restart == "permanent" or (
            child.restart == "transient" and reason == "crash"
        )
        if not restart:
            if child.restart == "temporary":
                self.children.remove(child)
            return
        self.restarts = [t for t in self.restarts if t >= now - self.max_seconds] + [now]
        if len(self.restarts) > self.max_restarts:
            self.alive = False
            self.children = []
            return
        if self.strategy == "one_for_one":
            group = [child]
        else:
            i = self.children.index(child)
            if self.strategy == "rest_for_one":
                others = self.children[i + 1:]
            else:
                others = [c for c in self.children if c is not child]
            for o in others:
                o.running = False
            self.children = [
                c for c in self.children if not (c in others and c.restart == "temporary")
            ]
            group = [c for c in self.children if c is child or c in others]
        for c in group:
            c.running = True
            c.generation += 1

    def observe(self) -> tuple[bool, list[tuple[str, bool, int]]]:
        return self.alive, [(c.id, c.running, c.generation) for c in self.children]


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
    generations = dict.fromkeys(pids, 0)
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
                generations[r.id] = generations.get(r.id, 0) + 1
                pids[r.id] = r.pid
            seen.append((r.id, r.pid is not None, generations.get(r.id, 0)))
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
    model = Model(strategy, max_restarts, max_seconds,
                  [ModelChild(f"c{i}", r) for i, r in enumerate(restarts)])
    now = 0.0
    for (dt, _, _), observed in zip(schedule, observations, strict=True):
        now += dt
        if observed is None:
            # supervisor already gone, or nothing left running to crash
            assert not model.alive or not any(c.running for c in model.children)
            continue
        child_id, reason, real_state = observed
        model.child_exit(child_id, reason, now)
        assert real_state == model.observe(), (child_id, reason, now)
