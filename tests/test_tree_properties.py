"""otpy's own trees under drawn faults: Supervisor, DynamicSupervisor, TaskSupervisor,
Registry, Global and claudecode.Supervisor, checked by otpy.testing.inject.

Hypothesis draws a tree — nested supervisors with every strategy, restart
type and shutdown kind, DynamicSupervisors and TaskSupervisors with children,
workers that trap exits, own linked helpers or are slow to terminate, names
of every kind (local, `otpy.Global`, `otpy.Via` in a `Registry` that is
itself in the tree), and supervised Claude sessions (virtual time: their CLI
starts only on a first query, so none starts here) — and a schedule of up to
20 faults, and every built-in invariant must hold.

CI runs a few dozen examples per property. The deep run is the same file at
the ``deep`` profile (10,000 examples per property)::

    OTPY_DEEP=1 python -m pytest -p no:cacheprovider tests/test_tree_properties.py
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import claudecode
import otpy
import otpy.testing as ot
from claudecode._install import install_cli

DEEP = bool(os.environ.get("OTPY_DEEP"))
EXAMPLES = 10_000 if DEEP else 25
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), derandomize=not DEEP)
RESTARTS = ("permanent", "transient", "temporary")
ACTIONS = ("kill", "crash", "normal", "shutdown", otpy.Kill(), otpy.TermReason("signal"),
           otpy.Shutdown())


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)


async def helper_loop() -> None:
    while True:
        await otpy.receive()


class Worker(otpy.GenServer):
    """Traps exits or not, owns a linked helper or not, slow to terminate or not."""

    async def init(self, trap: bool = False, helper: bool = False, slow: float = 0.0) -> None:
        otpy.trap_exits(trap)
        self.slow = slow
        self.helper = otpy.spawn(helper_loop, link=True) if helper else None

    async def handle_call(self, request: Any, caller: Any) -> Any:
        return request

    async def handle_info(self, message: Any) -> None:
        if isinstance(message, otpy.Exit) and not isinstance(message.reason, otpy.Normal):
            # a linked process (its helper, its registry) died: so does it, as
            # a trapping server that cannot do without it should
            raise otpy.Stop(message.reason)

    async def terminate(self, reason: Any) -> None:
        if self.helper is not None:
            otpy.exit(self.helper, otpy.Shutdown())
        await trio.sleep(self.slow)


class Member(otpy.GenServer):
    """Registers itself under a duplicate key of the registry (a pubsub member)."""

    async def init(self, key: str) -> None:
        otpy.Registry.register("topics", key)

    async def handle_info(self, message: Any) -> None:
        return None


async def forever() -> None:
    await trio.sleep_forever()


NAMES = st.sampled_from(["local", "global", "via", None, None])


def name_of(kind: str | None, ident: str) -> Any:
    if kind == "local":
        return ident
    if kind == "global":
        return otpy.Global(ident)
    if kind == "via":
        return otpy.Via("names", ident)
    return None


@st.composite
def worker(draw: st.DrawFn, ident: str, names: bool) -> otpy.ChildSpec:
    shutdown = draw(st.sampled_from([5.0, 0.25, "brutal_kill", "infinity"]))
    slow = 0.0 if shutdown == "infinity" else draw(st.sampled_from([0.0, 0.0, 0.5]))
    return Worker.child_spec(
        id=ident, name=name_of(draw(NAMES), ident) if names else None,
        restart=draw(st.sampled_from(RESTARTS)), shutdown=shutdown,
        trap=draw(st.booleans()), helper=draw(st.booleans()), slow=slow)


@st.composite
def supervisor(draw: st.DrawFn, depth: int, path: str, names: bool) -> otpy.ChildSpec:
    children: list[otpy.ChildSpec] = []
    for i in range(draw(st.integers(1, 4))):
        ident = f"{path}{i}"
        kind = draw(st.sampled_from("wwwsdtm")) if depth < 2 else draw(st.sampled_from("wwm"))
        if kind == "w":
            children.append(draw(worker(f"w{ident}", names)))
        elif kind == "m" and names:
            children.append(Member.child_spec(draw(st.sampled_from(["a", "b"])), id=f"m{ident}",
                                              restart=draw(st.sampled_from(RESTARTS))))
        elif kind == "s":
            children.append(draw(supervisor(depth + 1, ident, names)))
        elif kind == "d":
            children.append(otpy.DynamicSupervisor.child_spec(
                max_restarts=draw(st.integers(0, 3)), max_seconds=draw(st.sampled_from([1, 5])),
                id=f"d{ident}", name=f"dyn{ident}", restart=draw(st.sampled_from(RESTARTS))))
        else:
            children.append(otpy.TaskSupervisor.child_spec(id=f"t{ident}", name=f"tasks{ident}"))
    return otpy.Supervisor.child_spec(
        children, draw(st.sampled_from(["one_for_one", "one_for_all", "rest_for_one"])),
        draw(st.integers(0, 4)), draw(st.sampled_from([1.0, 2.0, 5.0])), id=f"s{path}",
        restart=draw(st.sampled_from(RESTARTS)))


async def start_tree(spec: otpy.ChildSpec, registry: bool, dynamic: int) -> otpy.Pid:
    children, strategy, max_restarts, max_seconds = spec.start[1]
    if registry:  # the registries come first, as in an application (any strategy works:
        # a registry that crashes takes its registrants with it)
        children = [otpy.Registry.child_spec("names"),
                    otpy.Registry.child_spec("topics", keys="duplicate"), *children]
    sup = await otpy.Supervisor.start_link(children, strategy, max_restarts, max_seconds)
    for name in otpy.registered():
        if name.startswith("dyn"):
            for k in range(dynamic):
                await otpy.DynamicSupervisor.start_child(
                    name, Worker.child_spec(id=None, restart=RESTARTS[k % 3], helper=k == 1))
        elif name.startswith("tasks"):
            for _ in range(dynamic):
                await otpy.TaskSupervisor.start_child(name, forever)
    return sup


async def run_tree(spec: otpy.ChildSpec, registry: bool, dynamic: int,
                   schedule: list[ot.Fault]) -> ot.Report:
    return await ot.inject(await start_tree(spec, registry, dynamic), schedule)


def checked(report: ot.Report) -> None:
    """Fail on violations; label the example for ``--hypothesis-show-statistics``
    (how many faults hit a live target, whether a supervisor gave up)."""
    hits = sum(1 for e in report.timeline if e.kind == "fault" and "skipped" not in e.text)
    bucket = "0" if not hits else "1-4" if hits < 5 else "5-9" if hits < 10 else "10+"
    event(f"faults that hit a process: {bucket}")
    event("a supervisor gave up" if report.gave_up else "no supervisor gave up")
    report.check()


@PROPERTY
@given(supervisor(0, "r", names=False), st.integers(0, 3),
       ot.faults(max_faults=20, actions=ACTIONS))
def test_supervisors_dynamic_and_task_supervisors(
        spec: otpy.ChildSpec, dynamic: int, schedule: list[ot.Fault]) -> None:
    checked(ot.run(run_tree, spec, False, dynamic, schedule, shutdown_timeout=60.0))


@PROPERTY
@given(supervisor(0, "r", names=True), st.integers(0, 2),
       ot.faults(max_faults=20, actions=ACTIONS))
def test_trees_with_local_global_and_registry_names(
        spec: otpy.ChildSpec, dynamic: int, schedule: list[ot.Fault]) -> None:
    checked(ot.run(run_tree, spec, True, dynamic, schedule, shutdown_timeout=60.0))


CLI = install_cli().path


async def run_sessions(kinds: list[str | None], restarts: int, schedule: list[ot.Fault]
                       ) -> ot.Report:
    configs = [{"name": name_of(kind, f"agent{i}"), "cli_path": CLI}
               if kind else {"cli_path": CLI} for i, kind in enumerate(kinds)]
    # Sessions trap exits: a registry that goes does not take them along, so
    # the registry comes first and rest_for_one starts them again after it.
    sup = await otpy.Supervisor.start_link(
        [otpy.Registry.child_spec("names"),
         claudecode.Supervisor.child_spec(configs, max_restarts=restarts, max_seconds=5,
                                          id="sessions")],
        strategy="rest_for_one", max_restarts=restarts, max_seconds=5)
    return await ot.inject(sup, schedule)


@PROPERTY
@given(st.lists(NAMES, min_size=1, max_size=4), st.integers(0, 5),
       ot.faults(max_faults=20, actions=ACTIONS))
def test_claudecode_supervisor_of_named_sessions(
        kinds: list[str | None], restarts: int, schedule: list[ot.Fault]) -> None:
    checked(ot.run(run_sessions, kinds, restarts, schedule, shutdown_timeout=60.0))
