"""Per-turn overhead of a warm session, and memory of idle sessions: claudecode vs raw vs SDK.

Per-turn latency: the same pinned CLI, the same flags (``to_cli_args`` of the
same options: stream-json in/out, one explicit system prompt, no setting
sources), the same environment, against one FakeAnthropic that answers every
turn with the same short text. Three implementations, each in its own OS
process (fresh each round), driven side by side in lock step — one timed
turn of each, first mover rotated — so load from elsewhere on the machine
hits all three alike; the ratio to raw is the median of per-turn ratios:

* raw — a minimal trio driver of the CLI process: write a user line to its
  stdin, read stdout lines (``json.loads`` each) until ``result``;
* claudecode — ``claudecode.start_link`` + ``stream(...).final_result()``
  inside ``otpy.run`` (Port adapter: session GenServer + adapter process);
* claude-agent-sdk — ``ClaudeSDKClient.query`` + ``receive_response`` with
  ``cli_path`` set to the same CLI (in the SDK's own virtualenv).

Each does ``--warmup`` turns, then ``--turns`` timed turns on one warm
session; also reported: the driving process's own CPU time per turn. A
second phase repeats the lock step with a stub CLI (bench/_stub_cli.py:
recorded lines, sent at once) so only the driver's own overhead is left.
FakeAnthropic runs in a separate process shared by all runners, so
its cost is outside every measured process and the same for all.

Idle memory: RSS delta (``/proc/self/statm``) of one node after
``claudecode.start_link`` of ``--sessions`` sessions (the CLI starts on the
first query, so none runs), divided by the count; fresh process per round.

    python bench/claudecode_turns.py                 # 5 rounds, 5 + 40 turns
    python bench/claudecode_turns.py --rounds 3 --turns 20
    python bench/claudecode_turns.py --runner raw|claudecode|sdk|mem ...  # one runner

The SDK virtualenv is ``$BENCH_DIR/venv-sdk`` (default /tmp/otpy-bench),
created on first use as bench/claudecode_parse.py does.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _claudecode_bench import (  # noqa: E402
    REPLY,
    SDK_VERSION,
    SYSTEM_PROMPT,
    FakeServer,
    LoadMeter,
    cli_path,
    json_line,
    median,
    median_ci,
    pct,
    private_env,
    read_result,
    rss_bytes,
    sdk_python,
    stub_executable,
    wait_quiet,
)

IMPLS = ("raw", "claudecode", "sdk")
LABELS = {
    "raw": "raw CLI (trio pipe driver)",
    "claudecode": "claudecode (Port adapter)",
    "sdk": "claude-agent-sdk {v} ClaudeSDKClient",
}

def session_options(fake_env: dict[str, str]) -> dict[str, Any]:
    """The claudecode options every runner derives its CLI from.

    The CLI path comes from ``$BENCH_CLI`` (set by the orchestrator, so the
    SDK runner does not need claudecode).

    Args:
        fake_env: FakeAnthropic's variables.

    Returns:
        ``start_link`` keyword options (private HOME and cwd).
    """
    env, cwd = private_env(fake_env, "cc-turns-")
    return {"system_prompt": SYSTEM_PROMPT, "cwd": cwd, "env": env,
            "cli_path": os.environ["BENCH_CLI"]}


# ---------------------------------------------------------------- runners
#
# A runner sets its session up, does the warm-up turns, prints ``@@READY``,
# then does one timed turn per ``turn`` line on stdin (printing ``@@T <ms>``)
# until ``quit``, when it prints its ``@@RESULT`` (CPU per timed turn). The
# orchestrator drives the three runners in lock step, so each timed turn of
# one implementation sits next to one of each other's.


class _TrioLines:
    """Lines from stdin, read without blocking the trio loop."""

    def __init__(self) -> None:
        import trio

        self.stream = trio.lowlevel.FdStream(os.dup(0))
        self.buf = b""

    async def readline(self) -> str:
        """The next line without its newline (``""`` at end of input)."""
        while b"\n" not in self.buf:
            chunk = await self.stream.receive_some(4096)
            if not chunk:
                return ""
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def _report(cpu0: float, turns: int) -> None:
    json_line({"cpu_ms_per_turn": (time.process_time() - cpu0) * 1000 / max(1, turns)})


def run_raw(fake_env: dict[str, str], warmup: int) -> None:
    """Drive the CLI process directly (write a user line, read lines until ``result``).

    Args:
        fake_env: FakeAnthropic's variables.
        warmup: untimed turns first.
    """
    import trio

    from claudecode._callbacks import CallbackHandler
    from claudecode._options import Options, to_cli_args, to_cli_env

    opts = session_options(fake_env)
    options = Options.from_kwargs(**opts)
    argv = [opts["cli_path"], *to_cli_args(options)]
    env = to_cli_env(options)
    init = CallbackHandler(options).initialize_payload()

    async def main() -> None:
        proc = await trio.lowlevel.open_process(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=env, cwd=opts["cwd"])
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout
        buf = b""

        async def until(kind: str) -> dict[str, Any]:
            nonlocal buf
            while True:
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        obj = json.loads(line)
                        if obj.get("type") == kind:
                            return obj  # type: ignore[no-any-return]
                chunk = await stdout.receive_some(65536)
                if not chunk:
                    raise RuntimeError("the CLI exited")
                buf += chunk

        async def turn(i: int) -> float:
            t0 = time.perf_counter()
            await stdin.send_all(json.dumps({
                "type": "user", "message": {"role": "user", "content": f"turn {i}"},
                "parent_tool_use_id": None, "session_id": "default"}).encode() + b"\n")
            result = await until("result")
            dt = time.perf_counter() - t0
            assert result.get("result") == REPLY, result
            return dt * 1000

        try:
            await stdin.send_all(json.dumps({
                "type": "control_request", "request_id": "req_init",
                "request": {"subtype": "initialize", **init}}).encode() + b"\n")
            await until("control_response")
            await serve_trio(turn, warmup)
        finally:
            await stdin.aclose()
            with trio.move_on_after(5):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    trio.run(main)


async def serve_trio(turn: Any, warmup: int) -> None:
    """Warm up, then answer ``turn`` lines until ``quit`` (trio runners).

    Args:
        turn: ``async (i) -> ms``.
        warmup: untimed turns first.
    """
    for i in range(warmup):
        await turn(i)
    lines = _TrioLines()
    print("@@READY", flush=True)
    cpu0 = time.process_time()
    n = 0
    while (await lines.readline()) == "turn":
        ms = await turn(warmup + n)
        n += 1
        print(f"@@T {ms:.4f}", flush=True)
    _report(cpu0, n)


def run_claudecode(fake_env: dict[str, str], warmup: int) -> None:
    """One claudecode session (Port adapter) in an otpy node.

    Args:
        fake_env: FakeAnthropic's variables.
        warmup: untimed turns first.
    """
    import claudecode
    import otpy

    opts = session_options(fake_env)

    async def main() -> None:
        session = await claudecode.start_link(**opts)

        async def turn(i: int) -> float:
            t0 = time.perf_counter()
            result = await claudecode.stream(session, f"turn {i}").final_result()
            dt = time.perf_counter() - t0
            assert result.result == REPLY, result
            return dt * 1000

        await serve_trio(turn, warmup)
        await claudecode.stop(session)

    otpy.run(main)


def run_sdk(fake_env: dict[str, str], warmup: int) -> None:
    """One ``ClaudeSDKClient`` over the same CLI (needs the SDK virtualenv).

    Args:
        fake_env: FakeAnthropic's variables.
        warmup: untimed turns first.
    """
    import asyncio

    from claude_agent_sdk import (  # type: ignore[import-not-found]
        ClaudeAgentOptions,
        ClaudeSDKClient,
        ResultMessage,
    )

    opts = session_options(fake_env)
    options = ClaudeAgentOptions(system_prompt=SYSTEM_PROMPT, setting_sources=[],
                                 cli_path=opts["cli_path"], cwd=opts["cwd"], env=opts["env"])

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                     os.fdopen(os.dup(0), "rb"))
        async with ClaudeSDKClient(options) as client:

            async def turn(i: int) -> float:
                t0 = time.perf_counter()
                await client.query(f"turn {i}")
                result = None
                async for msg in client.receive_response():
                    if isinstance(msg, ResultMessage):
                        result = msg
                dt = time.perf_counter() - t0
                assert result is not None and result.result == REPLY, result
                return dt * 1000

            for i in range(warmup):
                await turn(i)
            print("@@READY", flush=True)
            cpu0 = time.process_time()
            n = 0
            while (await reader.readline()).strip() == b"turn":
                ms = await turn(warmup + n)
                n += 1
                print(f"@@T {ms:.4f}", flush=True)
            _report(cpu0, n)

    asyncio.run(main())


def run_mem(fake_env: dict[str, str], sessions: int) -> dict[str, float]:
    """RSS delta of ``sessions`` idle claudecode sessions on one node.

    Args:
        fake_env: FakeAnthropic's variables.
        sessions: how many.

    Returns:
        ``rss_delta_bytes`` and ``bytes_per_session``.
    """
    import claudecode
    import otpy

    opts = session_options(fake_env)
    out: dict[str, float] = {}

    async def main() -> None:
        # Warm the code paths (imports, caches) with a few sessions first.
        warm = [await claudecode.start_link(**opts) for _ in range(20)]
        for pid in warm:
            await claudecode.stop(pid)
        gc.collect()
        before = rss_bytes()
        pids = [await claudecode.start_link(**opts) for _ in range(sessions)]
        gc.collect()
        after = rss_bytes()
        assert all(otpy.is_alive(p) for p in pids)
        out["rss_delta_bytes"] = after - before
        out["bytes_per_session"] = (after - before) / sessions
        info = await claudecode.adapter_info(pids[0])
        assert info["state"] == "none", info  # no CLI was started

    otpy.run(main)
    return out


# ---------------------------------------------------------------- orchestrator


class Runner:
    """A runner in its own process, driven line by line (see the runner protocol above).

    Args:
        python: the interpreter (the SDK runner uses the SDK's virtualenv).
        name: ``raw``, ``claudecode`` or ``sdk``.
        fake_env: FakeAnthropic's variables.
        args: the parsed command line.
        cli: the CLI path.
    """

    def __init__(self, python: str, name: str, fake_env: dict[str, str],
                 args: argparse.Namespace, cli: str) -> None:
        self.name = name
        # a file, not a pipe: a chatty runner never blocks
        self.stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 - lives as long as the runner
        self.proc = subprocess.Popen(
            [python, __file__, "--runner", name, "--fake-env", json.dumps(fake_env),
             "--warmup", str(args.warmup), "--sessions", str(args.sessions)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
            env={**os.environ, "PYTHONPATH": str(HERE.parent), "BENCH_CLI": cli})

    def expect(self, prefix: str) -> str:
        """Read stdout up to the next line starting with ``prefix``.

        Args:
            prefix: e.g. ``@@T ``.

        Returns:
            The rest of that line.
        """
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        self.stderr.seek(0)
        raise RuntimeError(f"runner {self.name} failed:\n{self.stderr.read()[-2000:]}")

    def send(self, line: str) -> None:
        """Write one command line.

        Args:
            line: the command.
        """
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def turn(self) -> float:
        """Have the runner do one timed turn.

        Returns:
            Its latency in ms, as the runner measured it.
        """
        self.send("turn")
        return float(self.expect("@@T "))

    def finish(self) -> dict[str, Any]:
        """Stop the runner.

        Returns:
            Its result (``cpu_ms_per_turn``).
        """
        self.send("quit")
        result: dict[str, Any] = json.loads(self.expect("@@RESULT "))
        self.proc.wait(30)
        return result


def run_one(python: str, name: str, fake_env: dict[str, str], args: argparse.Namespace,
            cli: str) -> dict[str, Any]:
    """Run a one-shot runner (``mem``) in a fresh process.

    Args:
        python: the interpreter.
        name: the runner.
        fake_env: FakeAnthropic's variables.
        args: the parsed command line.
        cli: the CLI path.

    Returns:
        Its result line.
    """
    proc = subprocess.run(
        [python, __file__, "--runner", name, "--fake-env", json.dumps(fake_env),
         "--warmup", str(args.warmup), "--sessions", str(args.sessions)],
        capture_output=True, text=True, timeout=170,
        env={**os.environ, "PYTHONPATH": str(HERE.parent), "BENCH_CLI": cli})
    if proc.returncode != 0:
        raise RuntimeError(f"runner {name} failed:\n{proc.stderr[-2000:]}")
    return read_result(proc.stdout)


@attrs.define
class Phase:
    """Lock-step results of one CLI kind.

    Attributes:
        samples: turn latencies (ms) per implementation.
        paired: each turn's latency over the raw turn of the same step.
        cpu: driving-process CPU ms per turn, one value per round.
    """

    samples: dict[str, list[float]] = attrs.field(factory=lambda: {i: [] for i in IMPLS})
    paired: dict[str, list[float]] = attrs.field(factory=lambda: {i: [] for i in IMPLS})
    cpu: dict[str, list[float]] = attrs.field(factory=lambda: {i: [] for i in IMPLS})


def lockstep(pythons: dict[str, str], fake_env: dict[str, str], args: argparse.Namespace,
             cli: str, rounds: int, turns: int, tag: str) -> Phase:
    """Drive the three runners side by side, one turn each per step, first mover rotated.

    Args:
        pythons: interpreter per implementation.
        fake_env: FakeAnthropic's variables.
        args: the parsed command line.
        cli: the CLI executable.
        rounds: rounds (fresh processes each).
        turns: timed turns per round.
        tag: label for progress lines.

    Returns:
        The results.
    """
    out = Phase()
    for r in range(rounds):
        runners = {i: Runner(pythons[i], i, fake_env, args, cli) for i in IMPLS}
        try:
            for run in runners.values():  # set up and warm up one at a time
                run.expect("@@READY")
            for t in range(turns):
                k = t % 3
                got = {i: runners[i].turn() for i in IMPLS[k:] + IMPLS[:k]}
                for i in IMPLS:
                    out.samples[i].append(got[i])
                    out.paired[i].append(got[i] / got["raw"])
            for i, run in runners.items():
                out.cpu[i].append(run.finish()["cpu_ms_per_turn"])
        finally:
            for run in runners.values():
                if run.proc.poll() is None:
                    run.proc.kill()
                    run.proc.wait(5)
        print(f"{tag} round {r + 1}: " + ", ".join(
            f"{i} {median(out.samples[i][-turns:]):.2f} ms / {out.cpu[i][-1]:.2f} ms CPU"
            for i in IMPLS), file=sys.stderr)
    return out


def table(ph: Phase) -> None:
    """Print one phase's markdown table.

    Args:
        ph: the results.
    """
    raw_med = median(ph.samples["raw"])
    print("| implementation | median ms | p95 ms | median - raw ms "
          "| ratio to raw (median of paired per-turn ratios) "
          "| host-process CPU ms/turn (median of rounds) |")
    print("|---|---|---|---|---|---|")
    for impl in IMPLS:
        s = ph.samples[impl]
        label = LABELS[impl].format(v=SDK_VERSION)
        print(f"| {label} | {median(s):.2f} | {pct(s, 0.95):.2f} | "
              f"{median(s) - raw_med:+.2f} | {median(ph.paired[impl]):.3f}x "
              f"| {median(ph.cpu[impl]):.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--turns", type=int, default=40)
    ap.add_argument("--stub-rounds", type=int, default=3)
    ap.add_argument("--stub-turns", type=int, default=300)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--mem-rounds", type=int, default=3)
    ap.add_argument("--runner", choices=[*IMPLS, "mem"])
    ap.add_argument("--fake-env")
    args = ap.parse_args()
    if args.runner:
        fake_env = json.loads(args.fake_env)
        if args.runner == "mem":
            json_line(run_mem(fake_env, args.sessions))
        else:
            {"raw": run_raw, "claudecode": run_claudecode, "sdk": run_sdk}[args.runner](
                fake_env, args.warmup)
        return

    from claudecode._install import PINNED_CLI_VERSION

    cli = cli_path()
    pythons = {"raw": sys.executable, "claudecode": sys.executable, "sdk": sdk_python()}
    quiet = wait_quiet()
    meter = LoadMeter()
    t_start = time.monotonic()
    mem: list[dict[str, float]] = []
    with FakeServer() as fake:
        real = lockstep(pythons, fake.env, args, cli, args.rounds, args.turns, "real CLI")
        stub = lockstep(pythons, fake.env, args, stub_executable(), args.stub_rounds,
                        args.stub_turns, "stub CLI")
        for r in range(args.mem_rounds):
            mem.append(run_one(sys.executable, "mem", fake.env, args, cli))
            print(f"mem round {r + 1}: {mem[-1]['bytes_per_session']:,.0f} B/session",
                  file=sys.stderr)
    elapsed = time.monotonic() - t_start
    load = meter.report()

    print(f"\n### Per-turn latency of one warm session: real CLI {PINNED_CLI_VERSION} + "
          f"FakeAnthropic (own process, reply {REPLY!r})\n")
    print(f"{args.rounds} rounds x {args.turns} timed turns after {args.warmup} warm-up turns; "
          f"the three run side by side in lock step (one turn each, first mover rotated), "
          f"fresh processes each round; python {sys.version.split()[0]}.\n")
    table(real)
    print(f"\n### Host-side overhead alone: stub CLI (bench/_stub_cli.py answers at once with "
          f"recorded lines)\n\n{args.stub_rounds} rounds x {args.stub_turns} timed turns, same "
          f"lock step; the CLI's ~30 ms is gone, so the latency left is the driver's own.\n")
    table(stub)
    ours, sdk = median(real.paired["claudecode"]), median(real.paired["sdk"])
    spread = {i: [median(real.paired[i][k:k + args.turns])
                  for k in range(0, len(real.paired[i]), args.turns)] for i in IMPLS}
    s_ours, s_sdk = median(stub.samples["claudecode"]), median(stub.samples["sdk"])
    c_ours, c_sdk = median(real.cpu["claudecode"]), median(real.cpu["sdk"])
    vs_sdk = [c / k for c, k in zip(real.paired["claudecode"], real.paired["sdk"], strict=True)]
    lo, hi = median_ci(vs_sdk)
    print(f"\nGoals (real CLI unless noted):\n\n"
          f"- claudecode <= 1.1x raw: {'met' if ours <= 1.1 else 'NOT met'} ({ours:.3f}x; "
          f"per-round {min(spread['claudecode']):.3f}..{max(spread['claudecode']):.3f}x)\n"
          f"- claudecode below claude-agent-sdk: real CLI {ours:.3f}x vs {sdk:.3f}x "
          f"(SDK per-round {min(spread['sdk']):.3f}..{max(spread['sdk']):.3f}x) — "
          f"{'below' if ours < sdk else 'not below'}; per-step claudecode / SDK "
          f"{median(vs_sdk):.3f}x (95% CI of the median {lo:.3f}..{hi:.3f}x); "
          f"driver alone (stub CLI) "
          f"{s_ours:.2f} vs {s_sdk:.2f} ms — {'below' if s_ours < s_sdk else 'not below'}; "
          f"host CPU {c_ours:.2f} vs {c_sdk:.2f} ms/turn — "
          f"{'below' if c_ours < c_sdk else 'not below'}")
    print("\n(host-process CPU: user+sys of the driving Python process from the first to the "
          "last timed turn, divided by the turns; the CLI's own CPU is not included)")

    per = [m["bytes_per_session"] for m in mem]
    per_med = median(per)
    print(f"\nIdle sessions: RSS delta after claudecode.start_link x {args.sessions:,} on one "
          f"node (no CLI started), {args.mem_rounds} fresh processes\n")
    print("| sessions | RSS delta (median) | per session (median) | min..max per session "
          "| goal | met |")
    print("|---|---|---|---|---|---|")
    deltas = [m["rss_delta_bytes"] for m in mem]
    print(f"| {args.sessions:,} | {median(deltas) / 2**20:.1f} MiB | {per_med / 1024:.1f} KiB "
          f"| {min(per) / 1024:.1f}..{max(per) / 1024:.1f} KiB | <= 20 KB "
          f"| {'yes' if per_med <= 20_000 else f'no (+{per_med / 20_000 - 1:.0%})'} |")
    print(f"\nMachine: {os.cpu_count()} CPUs (shared VM); {quiet}; during the run {load}; "
          f"total run time {elapsed:.0f} s.")


if __name__ == "__main__":
    main()
