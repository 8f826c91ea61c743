"""Many conversations, few CLIs: hibernation and a live-CLI budget under load.

Phase ``run`` (the real CLI): ``--conversations`` sessions (200) under one
``claudecode.Supervisor`` with ``max_live_clis`` (8), all open from the start;
each conversation has ``--turns`` (3) turns: the first at a uniformly random
time in ``[0, --window)`` (420 s), each next one an exponential think time
(mean ``--think``, 30 s) after the previous answer. FakeAnthropic runs in its
own process and echoes (``echo #N: prompt``, N = messages the CLI sent), so
every answer proves the conversation was kept: turn k must answer ``#2k``.
Each turn is classified from the session's counters: *warm* (its CLI was up),
*resumed* (a CLI started with ``--resume`` after a hibernation), *cold* (a
first turn that started a CLI) or *spare* (a first turn that adopted a
budget's spare). Sampled every 0.25 s: live CLIs (``claude`` children, from
/proc), the app process's RSS, and the CLIs' RSS and USS (private memory,
from ``smaps_rollup``). One run per ``--spares`` value (default: 0 and 2),
with the sessions' ``cli_idle_timeout`` set by ``--idle-timeout`` (default
none).

Phase ``memory`` (a stub CLI, bench/_stub_cli.py, through the real Port
adapter): the app-node cost of ``--memory-sessions`` (1,000) *hibernated*
sessions — each had a CLI and a conversation, then hibernated — as the RSS
delta of a fresh process (and, in a second process, tracemalloc's count),
next to sessions that never started a CLI; a second batch of as many gives
the marginal cost.

    python bench/scaling_sessions.py                 # both phases (~30 minutes)
    python bench/scaling_sessions.py --phase run --spares 0,2 --idle-timeout 15
    python bench/scaling_sessions.py --phase memory  # (~8 minutes)
    python bench/scaling_sessions.py --smoke         # tiny sizes (a test runs this)

Results: one JSON line in bench/results/scaling-<time>.jsonl, and markdown
tables on stdout (bench/README.md, section 6).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _claudecode_bench import (  # noqa: E402
    ECHO,
    PAGE,
    SYSTEM_PROMPT,
    FakeServer,
    LoadMeter,
    cli_path,
    json_line,
    mem_available_kib,
    pct,
    private_env,
    read_result,
    rss_bytes,
    stub_executable,
    wait_quiet,
)


@attrs.define
class Turn:
    conversation: int
    index: int
    kind: str = ""
    latency: float = 0.0
    ok: bool = False
    error: str | None = None


def _children_clis() -> list[int]:
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        comm = stat[stat.index(b"(") + 1:stat.rindex(b")")]
        fields = stat[stat.rindex(b")") + 2:].split()
        if comm == b"claude" and fields[0] != b"Z" and int(fields[1]) == me:
            found.append(int(entry))
    return found


def _memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, USS) of a process in KiB, from smaps_rollup ((0, 0) if gone)."""
    rss = uss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key == "Rss":
                    rss = int(rest.split()[0])
                elif key in ("Private_Clean", "Private_Dirty"):
                    uss += int(rest.split()[0])
    except OSError:
        pass
    return rss, uss


# ------------------------------------------------------------------- run


def run_phase(args: argparse.Namespace, spares: int) -> dict[str, Any]:
    """One real-CLI run; returns its measurements."""
    import trio

    import claudecode
    import otpy

    cli = cli_path()
    rng = random.Random(args.seed)
    starts = [rng.uniform(0, args.window) for _ in range(args.conversations)]
    thinks = [[rng.expovariate(1 / args.think) for _ in range(args.turns)]
              for _ in range(args.conversations)]
    turns: list[Turn] = []
    samples: dict[str, list[float]] = {"live": [], "app_rss": [], "cli_rss": [], "cli_uss": [],
                                       "total_rss": []}
    per_cli: list[tuple[int, int]] = []

    with FakeServer(ECHO) as fake:
        env, cwd = private_env(fake.env, "cc-scaling-")
        options = {"env": env, "cwd": cwd, "cli_path": cli, "system_prompt": SYSTEM_PROMPT,
                   "timeout": 600.0, "cli_idle_timeout": args.idle_timeout}

        async def conversation(i: int) -> None:
            name = f"c{i}"
            await trio.sleep(starts[i])
            previous = {"cli_starts": 0, "resumes": 0, "spares_adopted": 0}
            for k in range(args.turns):
                turn = Turn(i, k)
                turns.append(turn)
                t0 = time.monotonic()
                try:
                    text = await claudecode.stream(name, f"turn {k} of {i}").final_text()
                    turn.ok = text == f"echo #{2 * (k + 1)}: turn {k} of {i}"
                    if not turn.ok:
                        turn.error = f"context lost: {text!r}"
                except claudecode.ClaudeCodeError as exc:
                    turn.error = repr(exc)
                turn.latency = time.monotonic() - t0
                info = await claudecode.adapter_info(name)
                if info["resumes"] > previous["resumes"]:
                    turn.kind = "resumed"
                elif info["spares_adopted"] > previous["spares_adopted"]:
                    turn.kind = "spare"
                elif info["cli_starts"] > previous["cli_starts"]:
                    turn.kind = "cold"
                else:
                    turn.kind = "warm"
                previous = {key: info[key] for key in previous}
                if k + 1 < args.turns:
                    await trio.sleep(thinks[i][k])

        async def sampler() -> None:
            while True:
                clis = _children_clis()
                mems = [_memory_kib(p) for p in clis]
                app = rss_bytes() / 1024
                samples["live"].append(len(clis))
                samples["app_rss"].append(app)
                samples["cli_rss"].append(sum(m[0] for m in mems))
                samples["cli_uss"].append(sum(m[1] for m in mems))
                samples["total_rss"].append(app + sum(m[0] for m in mems))
                per_cli.extend(m for m in mems if m[0])
                await trio.sleep(0.25)

        async def main() -> dict[str, Any]:
            sup = await claudecode.Supervisor.start_link(
                [{"name": f"c{i}", **options} for i in range(args.conversations)],
                max_live_clis=args.max_clis, prewarm_spares=spares)
            budget = (await claudecode.adapter_info("c0"))["cli_budgets"][0]
            t0 = time.monotonic()
            async with trio.open_nursery() as outer:
                outer.start_soon(sampler)
                async with trio.open_nursery() as nursery:
                    for i in range(args.conversations):
                        nursery.start_soon(conversation, i)
                outer.cancel_scope.cancel()
            wall = time.monotonic() - t0
            info = await claudecode.CLIBudget.info(budget)
            hibernated = sum(
                [await claudecode.health(f"c{i}") == "hibernated"
                 for i in range(args.conversations)])
            otpy.unlink(sup)
            await otpy.stop(sup, otpy.Shutdown(), 120)
            return {"wall_s": wall, "budget": attrs.asdict(info), "hibernated_at_end": hibernated}

        load = LoadMeter()
        load_before = os.getloadavg()
        out = otpy.run(main)
        out["load"] = load.report()
        out["loadavg_before"] = load_before
        out["loadavg_after"] = os.getloadavg()
    left = _children_clis()

    def stats(kind: str) -> dict[str, Any]:
        xs = [t.latency for t in turns if t.kind == kind and t.ok]
        if not xs:
            return {"n": 0}
        return {"n": len(xs), "p50_ms": pct(xs, 0.5) * 1000, "p99_ms": pct(xs, 0.99) * 1000}

    cli_rss = sorted(float(m[0]) for m in per_cli)
    cli_uss = sorted(float(m[1]) for m in per_cli)
    out.update({
        "spares": spares,
        "conversations": args.conversations, "turns_per_conversation": args.turns,
        "max_live_clis": args.max_clis, "window_s": args.window, "think_s": args.think,
        "cli_idle_timeout": args.idle_timeout,
        "turns": len(turns), "ok": sum(t.ok for t in turns),
        "errors": [t.error for t in turns if not t.ok][:10],
        "lost_context": sum(1 for t in turns if t.error and t.error.startswith("context lost")),
        "by_kind": {k: stats(k) for k in ("warm", "resumed", "cold", "spare")},
        "peak_live_clis_proc": max(samples["live"], default=0),
        "peak_app_rss_kib": max(samples["app_rss"], default=0),
        "peak_cli_rss_kib": max(samples["cli_rss"], default=0),
        "peak_total_rss_kib": max(samples["total_rss"], default=0),
        "cli_rss_kib_p50": pct(cli_rss, 0.5) if cli_rss else 0,
        "cli_uss_kib_p50": pct(cli_uss, 0.5) if cli_uss else 0,
        "mem_available_kib": mem_available_kib(),
        "clis_left": len(left),
    })
    return out


# ---------------------------------------------------------------- memory


def memory_runner(args: argparse.Namespace) -> None:
    """In a fresh process: the app-node cost of hibernated (and never-started) sessions."""
    import tracemalloc

    import trio

    import claudecode
    import otpy

    stub = stub_executable()
    n = args.memory_sessions
    env, cwd = private_env({"ANTHROPIC_API_KEY": "unused"}, "cc-scaling-mem-")
    options = {"env": env, "cwd": cwd, "cli_path": stub, "system_prompt": SYSTEM_PROMPT,
               "cli_idle_timeout": 0.2}

    async def main() -> dict[str, Any]:
        budget = await claudecode.CLIBudget.start_link(8)
        sessions: list[Any] = []

        async def batch(n: int, kind: str) -> tuple[int, int]:
            """``n`` more sessions; their RSS and traced bytes."""
            gc.collect()
            rss0 = rss_bytes()
            tm0 = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
            mine: list[Any] = []
            if kind == "hibernated":
                # 16 conversations in flight at a time, as users arrive (a burst of
                # 1,000 queued queries would measure the queue, not the sessions)
                arriving = trio.Semaphore(16)

                async def one() -> None:
                    async with arriving:
                        s = await claudecode.start(cli_budget=budget, **options)
                        mine.append(s)
                        await claudecode.stream(s, "hi").final_text()

                async with trio.open_nursery() as nursery:
                    for _ in range(n):
                        nursery.start_soon(one)
                while True:  # every CLI hibernates (idle timeout 0.2 s)
                    states = {(await claudecode.adapter_info(s))["state"] for s in mine}
                    if states == {"hibernated"}:
                        break
                    await trio.sleep(0.2)
            else:
                mine = [await claudecode.start(cli_budget=budget, **options) for _ in range(n)]
            sessions.extend(mine)
            gc.collect()
            await trio.sleep(0.5)
            tm = (tracemalloc.get_traced_memory()[0] - tm0) if tracemalloc.is_tracing() else 0
            return rss_bytes() - rss0, tm

        # Warm-up: the node runs its 8 CLIs at full tilt once (100 sessions that
        # then hibernate), so the baseline holds the working set of 8 live CLIs'
        # adapters, which every later batch reuses.
        await batch(100, "hibernated")
        if args.tracemalloc:
            tracemalloc.start()
        rss, tm = await batch(n, args.kind)
        # a second batch: the marginal cost of n more
        rss2, tm2 = await batch(n, args.kind)
        info = await claudecode.CLIBudget.info(budget)
        for s in sessions:
            otpy.exit(s, otpy.Kill())
        return {"kind": args.kind, "sessions": n, "rss_delta_bytes": rss,
                "rss_bytes_per_session": rss / n, "tracemalloc_bytes_per_session": tm / n,
                "rss_bytes_per_session_next": rss2 / n,
                "tracemalloc_bytes_per_session_next": tm2 / n, "budget_grants": info.grants}

    json_line(otpy.run(main))


def memory_phase(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kinds = ("hibernated",) if args.smoke else ("hibernated", "never_started")
    for kind in kinds:
        for tm in (True,) if args.smoke else (False, True):
            cmd = [sys.executable, __file__, "--runner", "memory", "--kind", kind,
                   "--memory-sessions", str(args.memory_sessions)]
            if tm:
                cmd.append("--tracemalloc")
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                                  env={**os.environ, "PYTHONPATH": str(HERE.parent)})
            if done.returncode != 0:
                raise RuntimeError(done.stderr[-3000:])
            result = read_result(done.stdout)
            for key in ("tracemalloc_bytes_per_session", "rss_bytes_per_session"):
                if (key == "tracemalloc_bytes_per_session") == tm:
                    out.setdefault(kind, {})[key] = result[key]
                    out[kind][key + "_next"] = result[key + "_next"]
            out[kind]["sessions"] = result["sessions"]
    return out


# ------------------------------------------------------------------ report


def report(runs: list[dict[str, Any]], memory: dict[str, Any] | None, note: str) -> None:
    print(f"\n_{note}_\n")
    if runs:
        print("| spares, idle timeout | turns ok / total | lost context "
              "| peak live CLIs (/proc, budget) "
              "| peak RSS app + CLIs (MiB) | peak app RSS (MiB) | warm p50 / p99 ms (n) "
              "| resumed p50 / p99 ms (n) | cold p50 / p99 ms (n) | spare p50 / p99 ms (n) "
              "| wall s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in runs:
            cells = []
            for kind in ("warm", "resumed", "cold", "spare"):
                s = r["by_kind"][kind]
                cells.append(f"{s['p50_ms']:.0f} / {s['p99_ms']:.0f} ({s['n']})" if s["n"]
                             else "—")
            print(f"| {r['spares']}, {r['cli_idle_timeout'] or '—'} | {r['ok']} / {r['turns']} | "
                  f"{r['lost_context']} | "
                  f"{r['peak_live_clis_proc']}, {r['budget']['peak_live']} | "
                  f"{r['peak_total_rss_kib'] / 1024:.0f} | {r['peak_app_rss_kib'] / 1024:.0f} | "
                  + " | ".join(cells) + f" | {r['wall_s']:.0f} |")
        for r in runs:
            print(f"\nspares={r['spares']}: one live CLI RSS p50 {r['cli_rss_kib_p50'] / 1024:.0f} "
                  f"MiB, USS p50 {r['cli_uss_kib_p50'] / 1024:.0f} MiB; hibernations asked "
                  f"{r['budget']['hibernations_asked']}, spares started "
                  f"{r['budget']['spares_started']} / adopted {r['budget']['spares_adopted']}; "
                  f"load: {r['load']}; loadavg before {r['loadavg_before'][0]:.2f}, after "
                  f"{r['loadavg_after'][0]:.2f}; errors: {r['errors'][:3]}")
    if memory:
        print("\n| app node, per session | RSS delta, first n | RSS delta, next n "
              "| tracemalloc, first n | tracemalloc, next n |")
        print("|---|---|---|---|---|")
        for kind, m in memory.items():
            cells = [f"{m[key] / 1024:.1f} KiB" if key in m else "—" for key in (
                "rss_bytes_per_session", "rss_bytes_per_session_next",
                "tracemalloc_bytes_per_session", "tracemalloc_bytes_per_session_next")]
            print(f"| n = {m['sessions']} {kind.replace('_', ' ')} sessions | "
                  + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phase", choices=["all", "run", "memory"], default="all")
    ap.add_argument("--conversations", type=int, default=200)
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--max-clis", type=int, default=8)
    ap.add_argument("--spares", default="0,2",
                    help="prewarm_spares of each run, comma-separated (default 0,2)")
    ap.add_argument("--window", type=float, default=420.0)
    ap.add_argument("--think", type=float, default=30.0)
    ap.add_argument("--idle-timeout", type=float, default=None,
                    help="the sessions' cli_idle_timeout (default: none)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--memory-sessions", type=int, default=1000)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, for a test")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--runner", choices=["memory"], help=argparse.SUPPRESS)
    ap.add_argument("--kind", choices=["hibernated", "never_started"], help=argparse.SUPPRESS)
    ap.add_argument("--tracemalloc", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.runner == "memory":
        memory_runner(args)
        return
    if args.smoke:  # one run without spares (tests cover them), one memory measurement
        args.conversations, args.turns, args.max_clis, args.spares = 3, 2, 2, "0"
        args.window, args.think, args.memory_sessions = 1.0, 0.5, 20
    note = "smoke run" if args.smoke else wait_quiet(limit=60)
    note += f"; loadavg {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; page {PAGE} B"
    runs: list[dict[str, Any]] = []
    memory = None
    if args.phase in ("all", "run"):
        for spares in args.spares.split(","):
            runs.append(run_phase(args, int(spares)))
    if args.phase in ("all", "memory"):
        memory = memory_phase(args)
    report(runs, memory, note)
    result = {"time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "note": note,
              "runs": runs, "memory": memory, "args": vars(args)}
    if not args.no_save and not args.smoke:
        path = HERE / "results" / f"scaling-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
        path.write_text(json.dumps(result) + "\n")
        print(f"\nraw results: {path.relative_to(HERE.parent)}")
    json_line(result)


if __name__ == "__main__":
    main()
