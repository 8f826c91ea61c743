"""Distributed sessions: remote (Node adapter) vs local (Port adapter), idle memory, Pool load.

All on loopback, one command. This process is the app node; two sandboxes
(``python -m claudecode._cli sandbox``) are separate OS processes on a
private epmd (free port); FakeAnthropic runs in its own process and answers
every turn with the same short text. Every session uses the same pinned CLI
and the same options (explicit system prompt, private HOME and cwd).

1. Per-turn overhead: one session with ``adapter=Node(sandbox)`` and one with
   the local Port adapter, turns alternated (order flipped every turn),
   ``--warmup`` + ``--turns`` per round, fresh sessions each round; median and
   p95 turn latency, the difference of the medians and the median of the
   paired differences (remote turn minus the local turn next to it). Repeated
   with the stub CLI (bench/_stub_cli.py, answers at once) to see the
   distribution hop without the CLI's own ~30 ms of noise.
2. Idle memory on the app node: RSS delta (``/proc/self/statm``) after
   ``start_link`` of ``--sessions`` sessions that never start their CLI, with
   the Node adapter and, for reference, the Port adapter; a fresh app-node
   process each.
3. ``--live`` concurrent live sessions over both sandboxes with
   ``claudecode.adapters.Pool``: one otpy process per session starts it and
   runs ``--live-turns`` turns, all at once. Two placements (``--placement``):
   ``concurrent`` (every process calls ``start_link`` at once, the first turn
   starts the CLI) and ``staggered`` (``start_link`` + ``prewarm`` one session
   at a time, then all turns together). Reported: first-turn and later-turn
   latency p50/p99, sessions per sandbox, the CLIs' total RSS and the CPU
   seconds of the CLIs vs our Python processes. The count is first checked
   against the RSS of one warm CLI and ``MemAvailable``; if it does not fit
   comfortably, the largest count that does is run instead, and the output
   says so.

At the end the sandboxes get SIGTERM and the script checks that no CLI it
saw (or any ``claude`` child of its processes) is still alive.

    python bench/remote_sessions.py
    python bench/remote_sessions.py --rounds 2 --turns 20 --live 20
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _claudecode_bench import (  # noqa: E402
    REPLY,
    SYSTEM_PROMPT,
    FakeServer,
    LoadMeter,
    claude_processes,
    cli_path,
    json_line,
    median,
    median_ci,
    mem_available_kib,
    pct,
    private_env,
    proc_cpu_seconds,
    proc_rss_kib,
    read_result,
    rss_bytes,
    stub_executable,
    temp_dir,
    wait_quiet,
)

COOKIE = "remote-bench-cookie"
MEM_FRACTION = 0.6
"""Live CLIs may use at most this share of ``MemAvailable`` (with 25% growth margin)."""


def free_port() -> int:
    """A free TCP port on loopback (for the private epmd).

    Returns:
        The port.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    """Wait until something listens on ``port`` (loopback).

    Args:
        port: the port.
        timeout: seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Sandbox:
    """``claudecode sandbox`` in its own OS process (private epmd).

    Args:
        label: node name prefix.
        epmd_port: the private epmd.
        tmp: where the cookie file goes.
    """

    def __init__(self, label: str, epmd_port: int, tmp: Path) -> None:
        self.name = f"{label}_{secrets.token_hex(3)}@localhost"
        cookie_file = tmp / f"{label}.cookie"
        cookie_file.write_text(COOKIE)
        cookie_file.chmod(0o400)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "claudecode._cli", "sandbox", "--name", self.name,
             "--cookie-file", str(cookie_file), "--epmd-port", str(epmd_port),
             "--workspace-root", tempfile.gettempdir(), "--allow-env", "ANTHROPIC_BASE_URL",
             "--log-level", "WARNING"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(b"@@READY"):
                break
        else:
            raise RuntimeError(f"sandbox {self.name} did not start")
        # Drain its log so a chatty sandbox never blocks on a full pipe.
        import threading

        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    @property
    def pid(self) -> int:
        """The sandbox's OS pid."""
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """user + sys CPU time of the sandbox process so far."""
        return proc_cpu_seconds(self.pid)

    def stop(self) -> int:
        """SIGTERM, wait (bounded), SIGKILL if needed.

        Returns:
            The exit status.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def options(fake_env: dict[str, str], cli: str) -> dict[str, Any]:
    """Session options: the shared system prompt, a private HOME and cwd.

    Args:
        fake_env: FakeAnthropic's variables.
        cli: the CLI path.

    Returns:
        ``start_link`` keyword options.
    """
    env, cwd = private_env(fake_env, "cc-remote-")
    return {"system_prompt": SYSTEM_PROMPT, "cwd": cwd, "env": env, "cli_path": cli}


# ------------------------------------------------------------ 1. overhead


async def overhead(cfg: dict[str, Any], boxes: list[Sandbox], cli: str, rounds: int,
                   turns: int, key: str, out: dict[str, Any]) -> None:
    """Alternate turns between a local and a remote session; record latencies in ``out``.

    Args:
        cfg: fake env, warm-up turns.
        boxes: the sandboxes (the first one hosts the remote session).
        cli: the CLI executable (the real one or the stub).
        rounds: rounds (fresh sessions each).
        turns: timed turns per round and session.
        key: where in ``out`` the results go.
        out: results.
    """
    import claudecode
    from claudecode.adapters import Node

    local_s: list[float] = []
    remote_s: list[float] = []
    paired: list[float] = []
    round_meds: list[tuple[float, float]] = []
    sandbox_cpu: list[float] = []
    warm = cfg["warmup"]
    for _ in range(rounds):
        local = await claudecode.start_link(**options(cfg["fake_env"], cli))
        remote = await claudecode.start_link(adapter=Node(boxes[0].name),
                                             **options(cfg["fake_env"], cli))
        lr: list[float] = []
        rr: list[float] = []
        cpu0 = 0.0
        for i in range(warm + turns):
            if i == warm:
                cpu0 = boxes[0].cpu_seconds()
            pair: dict[str, float] = {}
            for which in (("local", "remote") if i % 2 == 0 else ("remote", "local")):
                session = local if which == "local" else remote
                t0 = time.perf_counter()
                result = await claudecode.stream(session, f"turn {i}").final_result()
                pair[which] = (time.perf_counter() - t0) * 1000
                assert result.result == REPLY, result
            if i >= warm:
                lr.append(pair["local"])
                rr.append(pair["remote"])
                paired.append(pair["remote"] - pair["local"])
        sandbox_cpu.append((boxes[0].cpu_seconds() - cpu0) * 1000 / turns)
        info = await claudecode.adapter_info(remote)
        assert info["adapter_pid"].node.name == boxes[0].name
        out.setdefault("cli_pids", []).extend(
            [info["os_pid"], (await claudecode.adapter_info(local))["os_pid"]])
        if key == "overhead":
            out["cli_rss_kib"] = proc_rss_kib(info["os_pid"])  # a warm CLI, for section 3
        await claudecode.stop(local)
        await claudecode.stop(remote)
        local_s += lr
        remote_s += rr
        round_meds.append((median(lr), median(rr)))
    out[key] = {"local": local_s, "remote": remote_s, "paired": paired,
                       "round_meds": round_meds, "sandbox_cpu_ms_per_turn": sandbox_cpu}


# ------------------------------------------------------------ 3. live sessions


async def live_session(main: Any, i: int, cfg: dict[str, Any], pool: Any, mode: str) -> None:
    """One live session: place it, run the turns, report, wait for the stop word.

    ``concurrent``: start_link and run the turns at once (the first turn starts
    the CLI). ``staggered``: wait for a token from ``main``, start_link +
    prewarm (so the Pool sees this CLI when it places the next session), hand
    the token back, wait for ``go``, then run the turns with everyone else.

    Args:
        main: the coordinating process.
        i: the session's index.
        cfg: fake env, CLI, turns.
        pool: the Pool adapter.
        mode: ``concurrent`` or ``staggered``.
    """
    import claudecode
    import otpy

    me = otpy.self()
    if mode == "staggered":
        await otpy.receive(lambda m: m == "token")
    t0 = time.perf_counter()
    session = await claudecode.start_link(adapter=pool, **options(cfg["fake_env"], cfg["cli"]))
    if mode == "staggered":
        await claudecode.prewarm(session)
    placed = (time.perf_counter() - t0) * 1000
    if mode == "staggered":
        otpy.send(main, ("placed", i))
        await otpy.receive(lambda m: m == "go")
    times = []
    for j in range(cfg["live_turns"]):
        t0 = time.perf_counter()
        result = await claudecode.stream(session, f"turn {j}").final_result()
        times.append((time.perf_counter() - t0) * 1000)
        assert result.result == REPLY, result
    info = await claudecode.adapter_info(session)
    otpy.send(main, ("live", i, me, placed, times, info["adapter_pid"].node.name,
                     info["os_pid"]))
    await otpy.receive(lambda m: m == "stop")
    await claudecode.stop(session)
    otpy.send(main, ("stopped", i))


def _tagged(tag: str) -> Any:
    return lambda m: type(m) is tuple and m[0] == tag


async def live(cfg: dict[str, Any], boxes: list[Sandbox], count: int, mode: str,
               out: dict[str, Any]) -> None:
    """Run ``count`` live sessions over a Pool of both sandboxes, turns concurrently.

    Args:
        cfg: fake env, CLI, turns per session.
        boxes: the sandboxes.
        count: how many sessions.
        mode: ``concurrent`` or ``staggered`` (see `live_session`).
        out: where results go (``out["live"][mode]``).
    """
    import otpy
    from claudecode.adapters import Pool

    pool = Pool([b.name for b in boxes])
    me = otpy.self()
    cpu0 = {"app node": time.process_time(), "sandboxes": sum(b.cpu_seconds() for b in boxes),
            "FakeAnthropic": proc_cpu_seconds(cfg["fake_pid"])}
    t0 = time.perf_counter()
    pids = [otpy.spawn(live_session, me, i, cfg, pool, mode, link=True) for i in range(count)]
    if mode == "staggered":
        for pid in pids:
            otpy.send(pid, "token")
            await otpy.receive(_tagged("placed"), timeout=60)
        t_placed = time.perf_counter()
        for pid in pids:
            otpy.send(pid, "go")
    else:
        t_placed = t0
    reports = [await otpy.receive(_tagged("live"), timeout=170) for _ in range(count)]
    t_done = time.perf_counter()
    cli_pids = [r[6] for r in reports]
    rss = [proc_rss_kib(p) for p in cli_pids]
    cpu = {"CLIs": sum(proc_cpu_seconds(p) for p in cli_pids),  # all started in this phase
           "app node": time.process_time() - cpu0["app node"],
           "sandboxes": sum(b.cpu_seconds() for b in boxes) - cpu0["sandboxes"],
           "FakeAnthropic": proc_cpu_seconds(cfg["fake_pid"]) - cpu0["FakeAnthropic"]}
    for r in reports:
        otpy.send(r[2], "stop")
    for _ in range(count):
        await otpy.receive(_tagged("stopped"), timeout=60)
    out.setdefault("cli_pids", []).extend(cli_pids)
    out.setdefault("live", {})[mode] = {
        "count": count,
        "place_s": t_placed - t0,
        "turns_s": t_done - t_placed,
        "placed_ms": [r[3] for r in reports],
        "first_ms": [r[4][0] for r in reports],
        "warm_ms": [t for r in reports for t in r[4][1:]],
        "all_ms": [t for r in reports for t in r[4]],
        "nodes": [r[5] for r in reports],
        "rss_kib": rss,
        "cpu_s": cpu,
    }


def live_count(wanted: int, cli_rss: dict[str, int]) -> tuple[int, str]:
    """How many live CLIs fit comfortably, and why.

    Each CLI needs its private memory (``RssAnon``) plus 25% for growth; the
    file-backed part (the executable's pages) is shared by all of them.

    Args:
        wanted: the requested count.
        cli_rss: ``VmRSS``/``RssAnon``/``RssFile`` of one warm CLI (KiB).

    Returns:
        ``(count, explanation)``.
    """
    avail = mem_available_kib()
    per = cli_rss["RssAnon"] * 1.25
    budget = avail * MEM_FRACTION - cli_rss["RssFile"]
    fits = max(1, int(budget // per))
    note = (f"one warm CLI: VmRSS {cli_rss['VmRSS'] / 1024:.0f} MiB (RssAnon "
            f"{cli_rss['RssAnon'] / 1024:.0f} MiB private, RssFile "
            f"{cli_rss['RssFile'] / 1024:.0f} MiB shared); MemAvailable "
            f"{avail / 2**20:.1f} GiB; budget {MEM_FRACTION:.0%} of it at "
            f"{per / 1024:.0f} MiB per CLI -> {fits} fit")
    if fits >= wanted:
        return wanted, note + f"; running the requested {wanted}"
    return fits, note + f"; running {fits} instead of {wanted}"


# ------------------------------------------------------------ 2. idle memory


def run_mem(adapter: str, sandbox: str, epmd_port: int, fake_env: dict[str, str], cli: str,
            sessions: int) -> dict[str, float]:
    """RSS delta per idle session on a fresh distributed app node.

    Args:
        adapter: ``node`` or ``port``.
        sandbox: the sandbox node (for ``node``).
        epmd_port: the private epmd.
        fake_env: FakeAnthropic's variables.
        cli: the CLI path.
        sessions: how many.

    Returns:
        ``bytes_per_session`` and ``rss_delta_bytes``.
    """
    import gc

    import claudecode
    import otpy
    from claudecode.adapters import Node

    opts = options(fake_env, cli)
    if adapter == "node":
        opts["adapter"] = Node(sandbox)
    out: dict[str, float] = {}

    async def main() -> None:
        warm = [await claudecode.start_link(**opts) for _ in range(20)]
        for pid in warm:
            await claudecode.stop(pid)
        gc.collect()
        before = rss_bytes()
        pids = [await claudecode.start_link(**opts) for _ in range(sessions)]
        gc.collect()
        after = rss_bytes()
        info = await claudecode.adapter_info(pids[-1])
        assert info["state"] == "none", info  # no CLI started
        out["rss_delta_bytes"] = after - before
        out["bytes_per_session"] = (after - before) / sessions

    otpy.run(main, node=f"mem_{secrets.token_hex(3)}@localhost", cookie=COOKIE,
             epmd_port=epmd_port)
    return out


def mem_runner(adapter: str, sandbox: str, epmd_port: int, fake_env: dict[str, str],
               cli: str, sessions: int) -> dict[str, Any]:
    """`run_mem` in a fresh process (arguments as for `run_mem`).

    Returns:
        Its result.
    """
    proc = subprocess.run(
        [sys.executable, __file__, "--runner", "mem", "--adapter", adapter, "--sandbox",
         sandbox, "--epmd-port", str(epmd_port), "--fake-env", json.dumps(fake_env),
         "--cli", cli, "--sessions", str(sessions)],
        capture_output=True, text=True, timeout=170,
        env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    if proc.returncode != 0:
        raise RuntimeError(f"mem runner ({adapter}) failed:\n{proc.stderr[-2000:]}")
    return read_result(proc.stdout)


# ------------------------------------------------------------ main


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live (non-zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:].split()[0] != b"Z"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--turns", type=int, default=40)
    ap.add_argument("--stub-rounds", type=int, default=2)
    ap.add_argument("--stub-turns", type=int, default=300)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--live", type=int, default=50)
    ap.add_argument("--live-turns", type=int, default=4)
    ap.add_argument("--placement", default="concurrent,staggered",
                    help="comma-separated: concurrent (start_link + turns at once), "
                    "staggered (start_link + prewarm one at a time, then turns together)")
    ap.add_argument("--runner", choices=["mem"])
    ap.add_argument("--adapter", choices=["node", "port"])
    ap.add_argument("--sandbox")
    ap.add_argument("--epmd-port", type=int)
    ap.add_argument("--fake-env")
    ap.add_argument("--cli")
    args = ap.parse_args()
    if args.runner == "mem":
        json_line(run_mem(args.adapter, args.sandbox, args.epmd_port,
                          json.loads(args.fake_env), args.cli, args.sessions))
        return

    import logging

    import otpy
    from claudecode._install import PINNED_CLI_VERSION

    logging.getLogger("otpy").setLevel(logging.ERROR)
    logging.getLogger("claudecode").setLevel(logging.ERROR)
    cli = cli_path()
    quiet = wait_quiet()
    meter = LoadMeter()
    t_start = time.monotonic()
    port = free_port()
    epmd = subprocess.Popen(["epmd", "-port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    out: dict[str, Any] = {}
    boxes: list[Sandbox] = []
    statuses: list[int] = []
    live_note = ""
    tmp = temp_dir("cc-remote-bench-")
    try:
        wait_port(port)
        with FakeServer() as fake:
            boxes = [Sandbox("sbx1", port, tmp), Sandbox("sbx2", port, tmp)]
            assert fake.proc is not None
            cfg = {"fake_env": fake.env, "fake_pid": fake.proc.pid, "cli": cli,
                   "warmup": args.warmup, "live_turns": args.live_turns}

            async def app_main() -> None:
                nonlocal live_note
                await overhead(cfg, boxes, cli, args.rounds, args.turns, "overhead", out)
                await overhead(cfg, boxes, stub_executable(), args.stub_rounds,
                               args.stub_turns, "overhead_stub", out)
                print("overhead done", file=sys.stderr)
                count, live_note = live_count(args.live, out["cli_rss_kib"])
                print(live_note, file=sys.stderr)
                for mode in args.placement.split(","):
                    await live(cfg, boxes, count, mode, out)
                    print(f"live {mode} done", file=sys.stderr)

            otpy.run(app_main, node=f"app_{secrets.token_hex(3)}@localhost", cookie=COOKIE,
                     epmd_port=port)
            mem = {a: mem_runner(a, boxes[0].name, port, fake.env, cli, args.sessions)
                   for a in ("node", "port")}
            print("mem done", file=sys.stderr)
    finally:
        statuses = [b.stop() for b in boxes]
        epmd.kill()
        epmd.wait(5)
    elapsed = time.monotonic() - t_start
    load = meter.report()
    ours = {os.getpid(), *(b.pid for b in boxes)}
    seen = set(out.get("cli_pids", []))
    left = sorted({p for p, pp in claude_processes().items() if pp in ours}
                  | {p for p in seen if _alive(p)})

    print(f"\n## Remote vs local per-turn latency (python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs)\n")
    print(f"Real CLI {PINNED_CLI_VERSION} + FakeAnthropic (reply {REPLY!r}): {args.rounds} "
          f"rounds x ({args.warmup} warm-up + {args.turns} timed turns) per adapter. Stub CLI "
          f"(bench/_stub_cli.py, answers at once): {args.stub_rounds} rounds x "
          f"{args.stub_turns} turns. Turns of the two sessions alternate, order flipped every "
          f"turn; fresh sessions each round.\n")
    print("| CLI | adapter | median ms | p95 ms | per-round medians ms "
          "| remote - local: difference of medians / median of paired differences ms "
          "| sandbox process CPU ms/turn |")
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for key, kind in (("overhead", "real"), ("overhead_stub", "stub")):
        o = out[key]
        loc, rem, paired = o["local"], o["remote"], o["paired"]
        diff = median(rem) - median(loc)
        lo, hi = median_ci(paired)
        worst = max(worst, diff, hi)
        print(f"| {kind} | Port (local CLI) | {median(loc):.2f} | {pct(loc, 0.95):.2f} | "
              + ", ".join(f"{m[0]:.2f}" for m in o["round_meds"]) + " | | |")
        print(f"| {kind} | Node (CLI on a sandbox node) | {median(rem):.2f} | "
              f"{pct(rem, 0.95):.2f} | " + ", ".join(f"{m[1]:.2f}" for m in o["round_meds"])
              + f" | {diff:+.2f} / {median(paired):+.2f} (95% CI {lo:+.2f}..{hi:+.2f}) "
              f"| {median(o['sandbox_cpu_ms_per_turn']):.2f} |")
    print(f"\nGoal: remote overhead <= 10 ms over local: {'met' if worst <= 10 else 'NOT met'} "
          f"(largest estimate, incl. the CI's upper end: {worst:+.2f} ms)")

    print(f"\n## Idle sessions on the app node ({args.sessions:,} x start_link, no CLI "
          f"started; fresh distributed app node each)\n")
    print("| adapter | RSS delta | per session | goal | met |")
    print("|---|---|---|---|---|")
    for a, label in (("node", "Node(sandbox)"), ("port", "Port (reference)")):
        per = mem[a]["bytes_per_session"]
        goal = "<= 20 KB" if a == "node" else ""
        met = ("yes" if per <= 20_000 else f"no (+{per / 20_000 - 1:.0%})") if goal else ""
        print(f"| {label} | {mem[a]['rss_delta_bytes'] / 2**20:.1f} MiB | {per / 1024:.1f} KiB "
              f"| {goal} | {met} |")

    count = next(iter(out["live"].values()))["count"]
    print(f"\n## {count} live sessions on a Pool of 2 sandboxes, {args.live_turns} turns each, "
          f"turns of all sessions concurrently\n")
    print(f"Sizing: {live_note}.\n")
    print("| placement | sessions per sandbox | start_link(+prewarm) p50 / p99 ms "
          "| first turn p50 / p99 ms | later turns p50 / p99 ms | all turns p50 / p99 ms "
          "| placement s / turns s | live CLIs' RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, lv in out["live"].items():
        spread = " / ".join(str(lv["nodes"].count(b.name)) for b in boxes)
        rss_total = sum(r["VmRSS"] for r in lv["rss_kib"]) / 2**20
        anon_total = sum(r["RssAnon"] for r in lv["rss_kib"]) / 2**20

        def pp(key: str, lv: dict[str, Any] = lv) -> str:
            return f"{median(lv[key]):.0f} / {pct(lv[key], 0.99):.0f}"

        label = {"concurrent": "concurrent (start_link, then turns at once)",
                 "staggered": "staggered (start_link + prewarm one at a time)"}[mode]
        print(f"| {label} | {spread} | {pp('placed_ms')} | {pp('first_ms')} "
              f"| {pp('warm_ms')} | {pp('all_ms')} | {lv['place_s']:.1f} / {lv['turns_s']:.1f} "
              f"| {rss_total:.1f} GiB ({anon_total:.1f} GiB private) |")
    print("\n(concurrent: the first turn includes the CLI's start-up; staggered: every CLI "
          "is up before the turns start)\n")
    print("CPU seconds used from the first start_link to the last turn (2 CPUs):\n")
    kinds = ["CLIs", "sandboxes", "app node", "FakeAnthropic"]
    print("| placement | wall s | " + " | ".join(kinds) + " |")
    print("|---|---|" + "---|" * len(kinds))
    for mode, lv in out["live"].items():
        print(f"| {mode} | {lv['place_s'] + lv['turns_s']:.1f} | "
              + " | ".join(f"{lv['cpu_s'][k]:.2f}" for k in kinds) + " |")
    print(f"\nCleanup: sandboxes exited with {statuses} after SIGTERM; claude processes left: "
          f"{len(left)}{' ' + str(left) if left else ''}.")
    print(f"\nMachine: {os.cpu_count()} CPUs (shared VM); {quiet}; during the run {load}; "
          f"total run time {elapsed:.0f} s.")


if __name__ == "__main__":
    main()
