"""Faults for Claude sessions, as actions of ``otpy.testing`` schedules, and their invariants.

Actions (use them in ``otpy.testing.Fault(at, target, action)``):

* `KillCLI` — SIGKILL the target session's CLI process;
* `APIFault` — the next model request(s) get an HTTP error from
  `FakeAnthropic` (429 rate limited, 529 overloaded, 500, ...);
* `StreamCut` — the next model response is cut mid-stream (the connection
  drops after a few SSE events);
* `KillSandbox` — SIGKILL a sandbox node (the CLIs of remote sessions).

Invariants (pass them to ``otpy.testing.inject(..., invariants=[...])``):

* `Turns` runs a workload of turns on named sessions in the background and
  checks that every turn hit by a fault ended typed: it completed (possibly
  with an error result) or raised `StreamError` with a typed reason — never
  another exception, never a hang;
* `sessions_reachable` — the named sessions answer after the tree settled;
* `no_orphan_clis` — every CLI process running against the fake belongs to a
  live session.

These run on the real clock (real CLIs, real sockets): give faults ``at``
gaps of real seconds.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

import otpy
from claudecode._errors import ResultError, StreamError
from claudecode._session import adapter_info, alive
from claudecode._stream import stream
from claudecode.testing._replies import APIError, Text, Turn
from otpy.testing import Action, FaultContext

__all__ = [
    "APIFault",
    "KillCLI",
    "KillSandbox",
    "StreamCut",
    "TurnOutcome",
    "Turns",
    "cli_processes",
    "no_orphan_clis",
    "sessions_reachable",
]

SESSION_MODULE = "claudecode.Session"


def _is_session(ctx: FaultContext, pid: otpy.Pid) -> bool:
    spec = ctx.spec(pid)
    return spec is not None and SESSION_MODULE in (spec.modules or ())


def alive_os(pid: int) -> bool:
    """Whether OS process ``pid`` is alive (not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:][:1] != b"Z"


def cli_processes(fake: Any) -> list[int]:
    """Live OS processes running against ``fake`` (their environment has its URL).

    Args:
        fake: a running `FakeAnthropic`.

    Returns:
        Their OS process ids (zombies excluded).
    """
    return processes_using(fake.base_url)


def processes_using(base_url: str) -> list[int]:
    """Live OS processes whose environment points at ``base_url`` (zombies excluded)."""
    needle = f"ANTHROPIC_BASE_URL={base_url}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in environ and alive_os(int(entry)):
            found.append(int(entry))
    return found


@attrs.frozen
class KillCLI(Action):
    """SIGKILL the target session's CLI; the session exits `CLIExited` and its
    supervisor restarts it. A target that is not a session, or has no CLI
    running yet, is left alone (noted in the timeline)."""

    async def apply(self, ctx: FaultContext, pid: otpy.Pid | None) -> None:
        """Kill the CLI process of the session ``pid``."""
        assert pid is not None
        if not _is_session(ctx, pid):
            ctx.report.note("note", f"{ctx.describe(pid)} is not a session: no CLI to kill")
            return
        try:
            info = await adapter_info(pid, timeout=5)
        except otpy.CallError as err:
            ctx.report.note("note", f"{ctx.describe(pid)} did not answer: {err.reason!r}")
            return
        os_pid = info.get("os_pid")
        if os_pid is None:
            ctx.report.note("note", f"{ctx.describe(pid)} has no CLI running")
            return
        os.kill(os_pid, signal.SIGKILL)
        ctx.report.note("killed", f"CLI {os_pid} of {ctx.describe(pid)}")


@attrs.frozen(repr=False)
class APIFault(Action):
    """The next model request(s) get an HTTP error from the fake.

    Attributes:
        fake: the `FakeAnthropic` the sessions use.
        status: 429 (rate limited), 529 (overloaded), 500, ...
        times: how many requests get it.
    """

    fake: Any
    status: int = 529
    times: int = 1
    needs_target = False

    def __repr__(self) -> str:
        return f"APIFault(fake, status={self.status}, times={self.times})"

    async def apply(self, ctx: FaultContext, pid: otpy.Pid | None) -> None:
        """Script the error."""
        self.fake.script(APIError(self.status), times=self.times)


@attrs.frozen(repr=False)
class StreamCut(Action):
    """The next model response is cut: the connection drops after ``after``
    SSE events of a slow answer.

    Attributes:
        fake: the `FakeAnthropic` the sessions use.
        after: SSE events sent before the drop.
    """

    fake: Any
    after: int = 4
    needs_target = False

    def __repr__(self) -> str:
        return f"StreamCut(fake, after={self.after})"

    async def apply(self, ctx: FaultContext, pid: otpy.Pid | None) -> None:
        """Script the cut response."""
        self.fake.script(Turn([Text("cut " * 20, chunks=20)], chunk_delay=0.02,
                              disconnect_after=self.after))


def _parent_of(os_pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{os_pid}/stat").read_bytes()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2:].split()[1])


@attrs.frozen(repr=False, init=False)
class KillSandbox(Action):
    """SIGKILL a sandbox node: its remote sessions' turns fail with
    `otpy.NoConnection` and their supervisors restart them.

    With one sandbox, that one is killed (the target does not matter). With
    several, the one running the target session's CLI is (nothing happens
    if the session has no CLI running).

    Attributes:
        sandboxes: the candidates (anything with ``os_pid``, e.g. the
            ``sandbox_node`` fixture's `SandboxNode`).
    """

    sandboxes: tuple[Any, ...]

    def __init__(self, *sandboxes: Any) -> None:
        if not sandboxes:
            raise ValueError("KillSandbox needs a sandbox")
        object.__setattr__(self, "sandboxes", tuple(sandboxes))

    @property
    def needs_target(self) -> bool:  # type: ignore[override]
        """A target is needed to choose among several sandboxes."""
        return len(self.sandboxes) > 1

    def __repr__(self) -> str:
        names = ", ".join(f"sandbox_{i}" for i in range(len(self.sandboxes)))
        return "KillSandbox(sandbox_node)" if len(self.sandboxes) == 1 else \
            f"KillSandbox({names})"

    async def apply(self, ctx: FaultContext, pid: otpy.Pid | None) -> None:
        """Kill the sandbox (the target session's, among several)."""
        victim = self.sandboxes[0]
        if len(self.sandboxes) > 1:
            assert pid is not None
            info = await adapter_info(pid, timeout=5) if _is_session(ctx, pid) else {}
            host = _parent_of(info["os_pid"]) if info.get("os_pid") else None
            found = [s for s in self.sandboxes if s.os_pid == host]
            if not found:
                ctx.report.note("note", f"{ctx.describe(pid)} runs no CLI on these sandboxes")
                return
            victim = found[0]
        try:
            os.kill(victim.os_pid, signal.SIGKILL)
        except ProcessLookupError:
            ctx.report.note("note", "the sandbox was gone already")
            return
        ctx.report.note("killed", f"sandbox {getattr(victim, 'name', victim.os_pid)}")


# ---------------------------------------------------------------- invariants


@attrs.define
class TurnOutcome:
    """How one turn of the workload ended.

    Attributes:
        session: the session's name.
        outcome: "completed", "result_error" (an error result),
            "stream_error" (`StreamError` with a typed reason) or "error"
            (anything else: an invariant violation).
        detail: the reason or the exception.
        started: when it began (trio clock).
        ended: when it ended.
    """

    session: Any
    outcome: str
    detail: Any
    started: float
    ended: float


class Turns:
    """A background workload of turns on named sessions, and its invariant.

    Start it with ``turns.start()`` from the test process (one unlinked otpy
    process per session, outside the tree), pass ``turns.check`` to
    ``inject``'s invariants, and ``turns.stop()`` at the end.

    Args:
        sessions: the names of the sessions to talk to, each in its own task.
        prompt: what to say.
        pause: seconds between two turns of one session.
        hang: seconds after which a turn still running is a violation.
    """

    def __init__(self, sessions: Sequence[Any], prompt: str = "work", *, pause: float = 0.05,
                 hang: float = 30.0) -> None:
        self.sessions = list(sessions)
        self.prompt = prompt
        self.pause = pause
        self.hang = hang
        self.outcomes: list[TurnOutcome] = []
        self.running: dict[Any, float] = {}
        self.pids: list[otpy.Pid] = []

    def start(self) -> list[otpy.Pid]:
        """Spawn the workload processes (one per session)."""
        self.pids = [otpy.spawn(self._loop, name) for name in self.sessions]
        return self.pids

    def stop(self) -> None:
        """Stop the workload processes."""
        for pid in self.pids:
            otpy.exit(pid, otpy.Kill())

    async def _loop(self, name: Any) -> None:
        n = 0
        while True:
            n += 1
            t0 = trio.current_time()
            self.running[name] = t0
            outcome: str = "completed"
            detail: Any = None
            try:
                detail = await stream(name, f"{self.prompt} {n}").final_text()
            except StreamError as err:
                outcome, detail = "stream_error", err.reason
                if not isinstance(err.reason, otpy.ExitReason):
                    outcome = "error"
            except ResultError as err:
                outcome, detail = "result_error", err
            except Exception as exc:
                outcome, detail = "error", exc
            del self.running[name]
            self.outcomes.append(TurnOutcome(name, outcome, detail, t0, trio.current_time()))
            await trio.sleep(self.pause)

    async def check(self) -> None:
        """Every finished turn ended typed; none has run longer than ``hang``.

        Raises:
            AssertionError: a turn ended with another exception, or hangs.
        """
        bad = [o for o in self.outcomes if o.outcome == "error"]
        assert not bad, f"turns ended untyped: {bad}"
        now = trio.current_time()
        stuck = {n: now - t for n, t in self.running.items() if now - t > self.hang}
        assert not stuck, f"turns running for too long: {stuck}"

    def counts(self) -> dict[str, int]:
        """How many turns ended each way."""
        found: dict[str, int] = {}
        for o in self.outcomes:
            found[o.outcome] = found.get(o.outcome, 0) + 1
        return found


def sessions_reachable(names: Sequence[Any], timeout: float = 10.0
                       ) -> Callable[[], Awaitable[None]]:
    """An invariant: every named session answers (``claudecode.alive``) after settling.

    Args:
        names: the sessions' names (local, ``otpy.Global`` or ``otpy.Via``).
        timeout: seconds each may take to answer.

    Returns:
        The async invariant.
    """

    async def sessions_reachable() -> None:
        for name in names:
            assert otpy.whereis(name) is not None, f"no session is registered as {name!r}"
            assert await alive(name, timeout=timeout), f"session {name!r} is not alive"

    return sessions_reachable


def no_orphan_clis(fake: Any, sessions: Sequence[Any] = (), grace: float = 5.0
                   ) -> Callable[[], Awaitable[None]]:
    """An invariant: every CLI running against ``fake`` belongs to a live session.

    The sessions are those a supervisor of the node started (found in the
    events ``otpy.testing`` records) plus ``sessions``. A CLI whose session is
    gone gets ``grace`` real seconds to exit (a killed session's adapter shuts
    its CLI down; a killed sandbox's CLIs end when their pipes close).

    Args:
        fake: the `FakeAnthropic`.
        sessions: more sessions (pids or names) started without a supervisor.
        grace: seconds.

    Returns:
        The async invariant.
    """

    async def no_orphan_clis() -> None:
        orphans: list[int] = []
        with trio.move_on_after(grace):
            while True:
                owned = await _session_clis(sessions)
                orphans = [p for p in cli_processes(fake) if p not in owned]
                if not orphans:
                    return
                await trio.sleep(0.05)
        assert not orphans, f"CLI processes without a live session: {orphans}"

    return no_orphan_clis


async def _session_clis(extra: Sequence[Any]) -> set[int]:
    """OS pids of the CLIs of the node's live sessions, and of their children."""
    from otpy.testing._run import recorder

    rec = recorder()
    candidates: list[Any] = list(extra)
    if rec is not None:
        for entry in rec.entries:
            if entry.kind != "child_started" or entry.meta["pid"] is None:
                continue
            if SESSION_MODULE in (entry.meta["spec"].modules or ()) and \
                    rec.node.local(entry.meta["pid"]) is not None:
                candidates.append(entry.meta["pid"])
    found: set[int] = set()
    for session in candidates:
        try:
            info = await adapter_info(session, timeout=5)
        except (otpy.CallError, otpy.NotRegisteredError):
            continue
        if info.get("os_pid") is not None:
            found.add(int(info["os_pid"]))
    return found | {c for p in found for c in _descendants(p)}


def _descendants(pid: int) -> set[int]:
    out: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        if int(stat[stat.rindex(b")") + 2:].split()[1]) == pid:
            out.add(int(entry))
            out |= _descendants(int(entry))
    return out
