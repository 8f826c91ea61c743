"""Fault injection speed: faults per second into a live tree, hypothesis examples per second.

    python bench/fault_injection.py                  # 3 rounds, medians
    python bench/fault_injection.py --faults 500 --examples 50 --rounds 1

1. ``faults/s``: `otpy.testing.inject` applies N faults (kill / crash /
   normal / shutdown on drawn targets, 10 ms apart) to a 50-process tree on
   virtual time (once with one_for_one supervisors, once with mixed
   strategies, where a fault restarts ~5 processes) — every fault settled
   and checked against the model (names, leaks and tasks too). Next to it,
   the same faults applied by a bare loop (apply + `settle`, no checks): the
   cost of the checks.
2. ``examples/s``: hypothesis runs a property over a 3-level tree (root, three
   supervisors, a nested supervisor and a DynamicSupervisor; 20 processes)
   with schedules of exactly 20 faults, through `inject`. Next to it, the
   hand-driven model test of ``tests/test_supervisor_model.py`` (the shape the
   project's model test had before this toolkit: a flat supervisor, 0-20
   exits per example, each made by a call, compared with the model after
   each step).

Each measurement runs in a fresh OS process.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# ------------------------------------------------------------------ trees


def _worker_class() -> Any:
    import otpy

    class Worker(otpy.GenServer):
        async def handle_call(self, request: Any, caller: Any) -> Any:
            raise otpy.Stop(request, reply="ok")  # used by the hand-written test

        async def handle_info(self, message: Any) -> None:
            return None

    return Worker


def fifty(Worker: Any, mixed: bool = True) -> list[Any]:
    """Root + 4 supervisors + 44 workers (+ the caller): a 50-process tree.

    ``mixed``: the supervisors are one_for_one, one_for_all, rest_for_one and
    one_for_one (a fault restarts ~5 processes on average); otherwise all
    one_for_one (one restart per fault, eleven when a supervisor is hit).
    """
    import otpy

    b_strategy, c_strategy = ("one_for_all", "rest_for_one") if mixed else ("one_for_one",) * 2

    def workers(prefix: str, n: int) -> list[Any]:
        # all permanent: every fault is followed by a restart, the tree keeps its 49
        # processes, and a target index 1..48 is never the root
        return [Worker.child_spec(id=f"{prefix}{i}", name=f"{prefix}{i}" if i % 3 == 0 else None)
                for i in range(n)]

    return [
        otpy.Supervisor.child_spec(workers("a", 11), "one_for_one", 10**6, 1.0, id="a"),
        otpy.Supervisor.child_spec(workers("b", 11), b_strategy, 10**6, 1.0, id="b"),
        otpy.Supervisor.child_spec(workers("c", 11), c_strategy, 10**6, 1.0, id="c"),
        otpy.Supervisor.child_spec(workers("d", 11), "one_for_one", 10**6, 1.0, id="d"),
    ]


def three_level(Worker: Any) -> list[Any]:
    """A 3-level tree of 20 processes with every strategy and a DynamicSupervisor."""
    import otpy

    def workers(prefix: str, n: int, restart: str = "permanent") -> list[Any]:
        return [Worker.child_spec(id=f"{prefix}{i}", restart=restart) for i in range(n)]

    nested = otpy.Supervisor.child_spec(workers("n", 3, "transient"), "rest_for_one", 5, 5.0,
                                        id="nested")
    return [
        otpy.Supervisor.child_spec([*workers("a", 3), nested], "one_for_one", 5, 5.0, id="a"),
        otpy.Supervisor.child_spec(workers("b", 4), "one_for_all", 3, 2.0, id="b"),
        otpy.DynamicSupervisor.child_spec(id="dyn", name="dyn", max_restarts=5),
        otpy.Supervisor.child_spec(workers("c", 3, "temporary"), "rest_for_one", 3, 5.0, id="c"),
    ]


# ------------------------------------------------------------ measurements


def faults_per_second(n: int, checked: bool, mixed: bool = True) -> dict[str, float]:
    import trio

    import otpy
    import otpy.testing as ot

    logging.disable(logging.CRITICAL)
    Worker = _worker_class()
    rnd = random.Random(1)
    actions = ["kill", "crash", "normal", "shutdown"]
    # targets 1..48: any process of the tree but the root (killing it would end the run)
    schedule = [ot.Fault(0.01, 1 + rnd.randrange(48), rnd.choice(actions)) for _ in range(n)]

    async def main() -> dict[str, float]:
        otpy.trap_exits(True)
        sup = await otpy.Supervisor.start_link(fifty(Worker, mixed), "one_for_one", 10**6, 1.0)
        from otpy.testing._run import recorder as rec

        count = len(rec().node.procs)  # type: ignore[union-attr]
        t0 = time.perf_counter()
        c0 = time.process_time()
        if checked:
            report = await ot.inject(sup, schedule)
            skipped = [e for e in report.timeline if "skipped" in e.text]
            assert report.ok and report.applied == n and not skipped, str(report)[:2000]
        else:
            from otpy._process import current
            from otpy.testing._checker import Checker
            from otpy.testing._inject import _apply
            from otpy.testing._run import recorder

            checker = Checker(recorder())  # type: ignore[arg-type]
            checker.process(strict=False)
            checker.set_root(sup, "root")
            me = current()
            ctx = ot.FaultContext(me.node, me, checker, ot.Report([]))
            for fault in schedule:
                await trio.sleep(fault.at)
                pids = checker.tree_pids()
                await _apply(ctx, fault.action, pids[fault.target % len(pids)])
                await ot.settle()
                checker.process(strict=False)  # only to pick the next target
                checker.reset_expectations()
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - c0
        return {"faults_per_s": n / elapsed, "faults_per_cpu_s": n / cpu, "processes": count}

    return ot.run(main)


def examples_per_second(n: int) -> dict[str, float]:
    from hypothesis import HealthCheck, given, settings

    import otpy
    import otpy.testing as ot

    logging.disable(logging.CRITICAL)
    Worker = _worker_class()
    done = [0]

    async def main(schedule: list[Any]) -> ot.Report:
        sup = await otpy.Supervisor.start_link(three_level(Worker), "one_for_one", 5, 5.0)
        for k in range(3):
            await otpy.DynamicSupervisor.start_child("dyn", Worker.child_spec(
                id=None, restart=("permanent", "transient", "temporary")[k]))
        return await ot.inject(sup, schedule)

    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(ot.faults(max_faults=20, min_faults=20))
    def prop(schedule: list[Any]) -> None:
        ot.run(main, schedule).check()
        done[0] += 1

    t0 = time.perf_counter()
    c0 = time.process_time()
    prop()
    return {"examples_per_s": done[0] / (time.perf_counter() - t0),
            "examples_per_cpu_s": done[0] / (time.process_time() - c0), "examples": done[0]}


def hand_written_examples_per_second(n: int) -> dict[str, float]:
    """The hand-driven model test of ``tests/test_supervisor_model.py``, timed."""
    import trio.testing
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    import otpy
    from otpy.testing import SupervisorModel

    logging.disable(logging.CRITICAL)
    sys.path.insert(0, str(ROOT / "tests"))
    from test_supervisor_model import REASONS, Child, run_real

    done = [0]

    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(
        strategy=st.sampled_from(["one_for_one", "one_for_all", "rest_for_one"]),
        max_restarts=st.integers(0, 4),
        max_seconds=st.sampled_from([1.0, 2.0, 5.0, 10.0]),
        restarts=st.lists(st.sampled_from(("permanent", "transient", "temporary")),
                          min_size=1, max_size=5),
        schedule=st.lists(st.tuples(st.sampled_from([0.0, 0.5, 1.0, 2.5, 6.0]),
                                    st.integers(0, 4),
                                    st.sampled_from(["crash", "normal", "shutdown"])),
                          max_size=20),
    )
    def prop(strategy: str, max_restarts: int, max_seconds: float, restarts: list[str],
             schedule: list[tuple[float, int, str]]) -> None:
        clock = trio.testing.MockClock()
        observations = otpy.run(run_real, strategy, max_restarts, max_seconds, restarts,
                                schedule, clock, clock=clock, shutdown_timeout=1.0)
        model = SupervisorModel.of(
            [otpy.ChildSpec(f"c{i}", (Child.start_link, (), {}), restart=r)  # type: ignore[arg-type]
             for i, r in enumerate(restarts)], strategy, max_restarts, max_seconds)
        now = 0.0
        for (dt, _, _), observed in zip(schedule, observations, strict=True):
            now += dt
            if observed is None:
                continue
            child_id, reason, real_state = observed
            model.exit(child_id, REASONS[reason], now)
            alive, children = model.observe()
            assert real_state == (alive, children if alive else [])
        done[0] += 1

    t0 = time.perf_counter()
    c0 = time.process_time()
    prop()
    return {"examples_per_s": done[0] / (time.perf_counter() - t0),
            "examples_per_cpu_s": done[0] / (time.process_time() - c0), "examples": done[0]}


MEASURES = {
    "inject": lambda a: faults_per_second(a.faults, True),
    "bare": lambda a: faults_per_second(a.faults, False),
    "inject_1f1": lambda a: faults_per_second(a.faults, True, mixed=False),
    "bare_1f1": lambda a: faults_per_second(a.faults, False, mixed=False),
    "examples": lambda a: examples_per_second(a.examples),
    "hand": lambda a: hand_written_examples_per_second(a.examples),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faults", type=int, default=2000)
    ap.add_argument("--examples", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(MEASURES[args.one](args)))
        return
    results: dict[str, list[dict[str, float]]] = {}
    for r in range(args.rounds):
        for name in MEASURES:
            out = subprocess.run(
                [sys.executable, __file__, "--one", name, "--faults", str(args.faults),
                 "--examples", str(args.examples)],
                capture_output=True, text=True, check=True, cwd=ROOT)
            results.setdefault(name, []).append(json.loads(out.stdout))
            print(f"round {r + 1} {name}: {out.stdout.strip()}", file=sys.stderr)

    def med(name: str, key: str) -> float:
        return statistics.median(m[key] for m in results[name])

    inject, bare = med("inject", "faults_per_s"), med("bare", "faults_per_s")
    inject1, bare1 = med("inject_1f1", "faults_per_s"), med("bare_1f1", "faults_per_s")
    ex, hand = med("examples", "examples_per_s"), med("hand", "examples_per_s")
    procs = int(results["inject"][0]["processes"])
    def cpu(name: str, key: str) -> str:
        return f"{med(name, key):,.0f}"

    load = os.getloadavg()[0]
    print(f"\nMedians over {args.rounds} rounds (python {sys.version.split()[0]}; "
          f"load average {load:.1f} on {os.cpu_count()} cores at the end)\n")
    print("| measurement | per wall-clock s | per CPU s | goal | met (wall / CPU) |")
    print("|---|---|---|---|---|")

    def met(value: float, cpu_value: float, goal: float) -> str:
        return f"{'yes' if value >= goal else 'no'} / {'yes' if cpu_value >= goal else 'no'}"

    inject1c, injectc = med("inject_1f1", "faults_per_cpu_s"), med("inject", "faults_per_cpu_s")
    exc = med("examples", "examples_per_cpu_s")
    print(f"| inject, faults/s: {procs}-process tree, one_for_one supervisors, all checks | "
          f"{inject1:,.0f} | {inject1c:,.0f} | >= 2,000 | {met(inject1, inject1c, 2000)} |")
    print(f"| bare loop on the same tree (apply + settle, no checks) | {bare1:,.0f} | "
          f"{cpu('bare_1f1', 'faults_per_cpu_s')} | | |")
    print(f"| inject, faults/s: {procs}-process tree, mixed strategies, all checks | "
          f"{inject:,.0f} | {injectc:,.0f} | >= 2,000 | {met(inject, injectc, 2000)} |")
    print(f"| bare loop on the same tree (apply + settle, no checks) | {bare:,.0f} | "
          f"{cpu('bare', 'faults_per_cpu_s')} | | |")
    print(f"| hypothesis examples/s: 3-level tree, 20-fault schedules, inject | {ex:,.1f} | "
          f"{exc:,.1f} | >= 20 | {met(ex, exc, 20)} |")
    print(f"| hand-driven model test (flat tree, 0-20 exits) | {hand:,.1f} | "
          f"{med('hand', 'examples_per_cpu_s'):,.1f} | | |")


if __name__ == "__main__":
    main()
