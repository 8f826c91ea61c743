"""Sessions under faults, with otpy.testing schedules: the real CLI against FakeAnthropic.

A ``claudecode.Supervisor`` of named sessions runs a workload of turns while
faults hit it: CLIs killed, API errors (429, 529, 500), responses cut
mid-stream, and — with the Node adapter — the sandbox node killed, its
connection cut, or the sandbox frozen (a partition) and thawed. After
every fault the tree settles and `otpy.testing.inject` checks the supervision
model plus the claudecode invariants: every turn ended typed (completed, an
error result, or `StreamError` with a typed reason), named sessions answer,
no CLI runs without a live session. The fixtures are the otpy pytest
plugin's (``otpy_node``, ``fake_anthropic``, ``claude_options``,
``sandbox_node``).
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import claudecode
import otpy
import otpy.testing as ot
from claudecode._install import install_cli
from claudecode.adapters import Pool
from claudecode.testing import (
    APIFault,
    Echo,
    FakeAnthropic,
    KillCLI,
    KillSandbox,
    StreamCut,
    Turns,
    no_orphan_clis,
    sessions_reachable,
)
from otpy.testing import Cut, Fault, Heal, Partition, Pause
from otpy.testing._peers import Epmd, SandboxNode

NAMES = ["writer", "reviewer", "helper"]
CLI = install_cli().path


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)


async def _run(fake: FakeAnthropic, options: dict[str, Any], schedule: list[Fault],
               names: list[str] = NAMES, **session: Any) -> tuple[ot.Report, Turns]:
    fake.default = Echo(chunks=8, chunk_delay=0.01)  # turns last a little while
    sup = await claudecode.Supervisor.start_link(
        [{**options, **session, "name": n} for n in names], max_restarts=50, max_seconds=5)
    turns = Turns(names)
    turns.start()
    with trio.fail_after(60):  # every CLI up (one turn done each) before the first fault
        while {o.session for o in turns.outcomes if o.outcome == "completed"} != set(names):
            await trio.sleep(0.05)
    try:
        report = await ot.inject(
            sup, schedule, cushion=0.1,
            invariants=[turns.check, sessions_reachable(names), no_orphan_clis(fake)])
    finally:
        turns.stop()
    await otpy.Supervisor.which_children(sup)
    return report, turns


async def test_sessions_survive_killed_clis_api_errors_and_cut_streams(
        otpy_node: otpy.Node, fake_anthropic: FakeAnthropic,
        claude_options: dict[str, Any]) -> None:
    fake = fake_anthropic
    schedule = [
        Fault(0.2, ("writer",), KillCLI()),
        Fault(0.5, 0, APIFault(fake, status=429)),
        Fault(0.5, 0, APIFault(fake, status=529)),
        Fault(0.5, 0, APIFault(fake, status=500)),
        Fault(0.5, 0, StreamCut(fake, after=3)),
        Fault(0.5, ("reviewer",), KillCLI()),
        Fault(0.5, "helper", KillCLI()),
        Fault(1.0, 0, Pause()),
    ]
    report, turns = await _run(fake, claude_options, schedule)
    report.check()
    counts = turns.counts()
    assert counts["completed"] >= 10, counts
    assert counts.get("stream_error", 0) >= 1, counts  # a turn the CLI kill hit
    assert counts.get("result_error", 0) >= 1, counts  # an API error the CLI reported
    stream_reasons = {type(o.detail).__name__ for o in turns.outcomes
                      if o.outcome == "stream_error"}
    assert stream_reasons <= {"CLIExited", "NoProc", "Shutdown"}, stream_reasons
    restarts = [e.text for e in report.timeline if e.kind == "restart"]
    assert [r.split()[0] for r in restarts] == ["root/writer", "root/reviewer", "root/helper"]
    assert "CLIExited(status=-9" in restarts[0]


async def test_a_cut_sandbox_connection_ends_remote_turns_typed_and_sessions_come_back(
        otpy_node: otpy.Node, fake_anthropic: FakeAnthropic, claude_options: dict[str, Any],
        sandbox_node: SandboxNode) -> None:
    # one sandbox only: the sessions can only come back by connecting to it again
    schedule = [Fault(0.2, 0, Cut(sandbox_node.name)), Fault(2.0, 0, Pause())]
    report, turns = await _run(fake_anthropic, claude_options, schedule,
                               names=["left", "right"], adapter=Pool([sandbox_node.name]))
    report.check()
    # both sessions lost their adapters with the connection (NoConnection, on
    # this side), were restarted, reconnected, and answer (the invariants);
    # the sandbox ended the CLIs of the adapters it lost (no_orphan_clis)
    exits = [e.text for e in report.timeline if e.kind == "exit"]
    for name in ("left", "right"):
        assert any(t.startswith(f"root/{name}") and "NoConnection" in t for t in exits), report
    reasons = {type(o.detail).__name__ for o in turns.outcomes if o.outcome == "stream_error"}
    assert reasons <= {"NoConnection", "NoProc"}, turns.outcomes
    before = turns.counts()["completed"]
    with trio.fail_after(30):  # turns complete again after the cut, on the same sandbox
        turns.start()
        try:
            while turns.counts()["completed"] < before + 2:
                await trio.sleep(0.05)
        finally:
            turns.stop()


def _stopped(os_pid: int) -> bool:
    with open(f"/proc/{os_pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


async def test_a_frozen_sandbox_is_noticed_by_ticks_and_sessions_come_back_after_it_thaws(
        otpy_node: otpy.Node, fake_anthropic: FakeAnthropic, claude_options: dict[str, Any],
        sandbox_node: SandboxNode) -> None:
    # SIGSTOP: the connection goes silent; after the tick time (1 s on both
    # sides here) this side drops it and the session exits NoConnection. Its
    # restart then tries to reach the frozen sandbox (each try ends after the
    # connect timeout, as erl's net_setuptime), so the supervisor stays busy
    # and the tree cannot settle while the sandbox is frozen: the thaw runs
    # beside the schedule, not in it (as an operator's SIGCONT would).
    name, os_pid = sandbox_node.name, sandbox_node.os_pid

    async def thaw() -> None:
        while not _stopped(os_pid):
            await trio.sleep(0.05)
        await trio.sleep(4.0)
        os.kill(os_pid, signal.SIGCONT)

    schedule = [Fault(0.2, 0, Partition(name, os_pid)),
                Fault(0.5, 0, Heal(name)), Fault(2.0, 0, Pause())]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(thaw)
        report, turns = await _run(fake_anthropic, claude_options, schedule,
                                   names=["left"], adapter=Pool([name]))
    report.check()
    exits = [e.text for e in report.timeline if e.kind == "exit"]
    assert any(t.startswith("root/left") and "NoConnection" in t for t in exits), report
    assert any(e.kind == "heal" and "connected" in e.text for e in report.timeline), report
    reasons = {type(o.detail).__name__ for o in turns.outcomes if o.outcome == "stream_error"}
    assert reasons <= {"NoConnection", "NoProc"}, turns.outcomes
    assert turns.counts()["completed"] >= 2, turns.counts()  # before and after the freeze


ACTIONS = st.sampled_from(["kill_cli", "429", "529", "500", "cut"])


async def drawn(steps: list[tuple[float, str, str]], home: str) -> ot.Report:
    async with FakeAnthropic.serve(log_requests=False) as fake:
        options = {"env": {"HOME": home, "CLAUDE_CONFIG_DIR": f"{home}/.claude",
                           **fake.env(max_retries=0)}, "cwd": home, "cli_path": CLI}
        made = {"kill_cli": KillCLI(), "cut": StreamCut(fake)}
        schedule = [Fault(at, (name,), made.get(kind) or APIFault(fake, status=int(kind)))
                    for at, name, kind in steps] + [Fault(0.5, 0, Pause())]
        report, _ = await _run(fake, options, schedule, names=NAMES[:2])
        return report


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from([0.25, 0.5, 1.0]), st.sampled_from(NAMES[:2]),
                          ACTIONS), min_size=1, max_size=4))
def test_drawn_session_fault_schedules_keep_the_invariants(
        tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[float, str, str]]) -> None:
    home = str(tmp_path_factory.mktemp("home"))
    ot.run(drawn, steps, home, virtual=False, shutdown_timeout=10.0).check()


async def test_a_killed_sandbox_ends_remote_turns_typed_and_sessions_move(
        otpy_node: otpy.Node, fake_anthropic: FakeAnthropic, claude_options: dict[str, Any],
        sandbox_node: SandboxNode, otpy_epmd: Epmd, otpy_cookie: str, tmp_path: Path) -> None:
    other = SandboxNode(otpy_epmd.port, otpy_cookie, tmp_path)
    try:
        # the sandbox running "left"'s CLI dies; "left" comes back on the other one
        schedule = [Fault(0.2, ("left",), KillSandbox(sandbox_node, other)),
                    Fault(2.0, 0, Pause())]
        report, turns = await _run(fake_anthropic, claude_options, schedule,
                                   names=["left", "right"],
                                   adapter=Pool([sandbox_node.name, other.name]))
        report.check()
        # the session lost its adapter with the connection, exited with that, and
        # was restarted (on the other sandbox: it answers, see the invariants);
        # a turn in flight then ended with StreamError(NoConnection), typed
        exits = [e.text for e in report.timeline if e.kind == "exit"]
        assert any(t.startswith("root/left") and "NoConnection" in t for t in exits), report
        assert any(e.kind == "restart" and e.text.startswith("root/left")
                   for e in report.timeline), report
        reasons = {type(o.detail).__name__ for o in turns.outcomes
                   if o.outcome == "stream_error"}
        assert reasons <= {"NoConnection", "NoProc"}, turns.outcomes
        assert turns.counts()["completed"] >= 4
    finally:
        other.stop()
