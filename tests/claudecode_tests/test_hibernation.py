"""Hibernation and CLI budgets with the real CLI against FakeAnthropic.

The echo reply makes the conversation visible: ``echo #N`` counts the
messages the CLI sent, so a resumed conversation answers ``#4`` to its second
prompt and a lost one ``#2``. Live CLIs are counted from /proc (processes
named ``claude`` whose parent is this test process or a sandbox). The exact
interleavings are covered on virtual time by test_cli_budget.py; these tests
use real time sparingly.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from _session_env import CLI, cli_children, fake, no_orphans, opts
from test_node_adapter import Sandbox, app_node, claude_children, epmd_port

import claudecode
import otpy
from claudecode.adapters import Pool
from claudecode.testing import FakeAnthropic

__all__ = ["CLI", "epmd_port", "fake", "no_orphans", "opts"]  # fixtures used by name

async def _ask(session: Any, prompt: str) -> str:
    return await claudecode.stream(session, prompt).final_text()


async def _until(check: Callable[[], Any], seconds: float = 15.0) -> None:
    """Wait (polling) until ``await check()`` is true."""
    with trio.fail_after(seconds):
        while not await check():
            await trio.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"


class Peak:
    """Samples a count of live CLIs every few milliseconds; keeps the highest."""

    def __init__(self, count: Callable[[], int]) -> None:
        self.count = count
        self.peak = 0

    async def run(self) -> None:
        while True:
            self.peak = max(self.peak, self.count())
            await trio.sleep(0.005)


async def test_a_hibernated_session_continues_its_conversation(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        s = await claudecode.start_link(cli_idle_timeout=0.3, **opts)
        assert await _ask(s, "one") == "echo #2: one"
        first = await claudecode.adapter_info(s)
        sid = first["session_id"]

        async def hibernated() -> bool:
            return (await claudecode.adapter_info(s))["state"] == "hibernated"

        await _until(hibernated)
        assert await claudecode.health(s) == "hibernated"
        assert not _alive(first["os_pid"]) and cli_children() == []
        assert await claudecode.get_session_id(s) == sid
        assert await _ask(s, "two") == "echo #4: two"  # the same conversation, resumed
        second = await claudecode.adapter_info(s)
        assert second["session_id"] == sid and second["os_pid"] != first["os_pid"]
        assert (second["cli_starts"], second["hibernations"], second["resumes"]) == (2, 1, 1)
        assert await claudecode.health(s) == "healthy"
        await claudecode.stop(s)


async def test_max_live_clis_two_four_sessions_in_a_row_then_all_at_once(
        opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        peak = Peak(lambda: len(cli_children()))
        async with trio.open_nursery() as sampler:
            sampler.start_soon(peak.run)
            names = [f"s{i}" for i in range(4)]
            sup = await claudecode.Supervisor.start_link(
                [{"name": n, **opts} for n in names], max_live_clis=2)
            for n in names:
                assert await _ask(n, f"one {n}") == f"echo #2: one {n}"
            assert [await claudecode.health(n) for n in names] == \
                ["hibernated", "hibernated", "healthy", "healthy"]  # the least recently used
            answers: dict[str, str] = {}

            async def again(name: str) -> None:
                answers[name] = await _ask(name, f"two {name}")

            async with trio.open_nursery() as nursery:
                for n in names:
                    nursery.start_soon(again, n)
            assert answers == {n: f"echo #4: two {n}" for n in names}  # none lost its context
            budget = (await claudecode.adapter_info("s0"))["cli_budgets"][0]
            info = await claudecode.CLIBudget.info(budget)
            assert info.peak_live == 2 and info.waiting == 0
            otpy.unlink(sup)
            await otpy.stop(sup)
            sampler.cancel_scope.cancel()
        assert 1 <= peak.peak <= 2, peak.peak
        assert cli_children() == []


async def test_a_cli_killed_while_hibernating_or_resuming(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        s = await claudecode.start_link(cli_idle_timeout=0.6, **opts)
        assert await _ask(s, "one") == "echo #2: one"
        cli = (await claudecode.adapter_info(s))["os_pid"]
        await trio.sleep(0.2)  # (the CLI has written the turn to its transcript)
        os.kill(cli, signal.SIGSTOP)  # it cannot exit on its own: the stop waits for it

        async def state_is(value: str) -> Callable[[], Any]:
            async def check() -> bool:
                return (await claudecode.adapter_info(s))["state"] == value
            return check

        await _until(await state_is("hibernating"))
        os.kill(cli, signal.SIGKILL)  # killed while hibernating
        await _until(await state_is("hibernated"))
        health = await claudecode.health(s)
        assert health == ("unhealthy", claudecode.CLIExited(-9, health[1].stderr_tail))
        # the conversation is on disk: the next turn resumes it
        assert await _ask(s, "two") == "echo #4: two"
        assert await claudecode.health(s) == "healthy"

        await _until(await state_is("hibernated"))
        known = set(cli_children())
        failed: list[BaseException] = []

        async def three() -> None:
            try:
                await _ask(s, "three")
            except claudecode.StreamError as exc:
                failed.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(three)
            with trio.fail_after(15):  # the resuming CLI appears: kill it before it is up
                while not (new := set(cli_children()) - known):
                    await trio.sleep(0.002)
            assert (await claudecode.adapter_info(s))["state"] == "starting"
            os.kill(new.pop(), signal.SIGKILL)
        assert isinstance(failed[0], claudecode.StreamError)
        assert isinstance(failed[0].reason, claudecode.CLIExited)
        assert failed[0].reason.status == -9
        assert await claudecode.alive(s)  # the session is still there, and works
        assert isinstance((await claudecode.health(s))[1], claudecode.CLIExited)
        assert await _ask(s, "four") == "echo #6: four"
        await claudecode.stop(s)


async def test_spare_clis_serve_first_turns(opts: dict[str, Any]) -> None:
    async with otpy.open_node():
        sup = await claudecode.Supervisor.start_link([], max_live_clis=2, prewarm_spares=1)
        await claudecode.Supervisor.start_session(sup, {"name": "a", **opts})
        assert await _ask("a", "one") == "echo #2: one"
        mine = (await claudecode.adapter_info("a"))["os_pid"]

        async def spare_ready() -> bool:
            budget = (await claudecode.adapter_info("a"))["cli_budgets"][0]
            return bool(len(cli_children()) == 2 and
                        (await claudecode.CLIBudget.info(budget)).spares == 1)

        await _until(spare_ready)
        spare = next(p for p in cli_children() if p != mine)
        await claudecode.Supervisor.start_session(sup, {"name": "b", **opts})
        assert await _ask("b", "one") == "echo #2: one"
        info = await claudecode.adapter_info("b")
        assert info["os_pid"] == spare  # b's first turn ran on the spare
        assert info["session_id"] != (await claudecode.adapter_info("a"))["session_id"]
        assert await _ask("b", "two") == "echo #4: two"
        otpy.unlink(sup)
        await otpy.stop(sup)
        assert cli_children() == []


@pytest.fixture
def sandboxes(epmd_port: int, tmp_path: Path) -> Iterator[list[Sandbox]]:
    boxes = [Sandbox(epmd_port, tmp_path, extra=["--max-clis", "1"]) for _ in range(2)]
    yield boxes
    for box in boxes:
        box.stop()


async def test_sandboxes_with_max_clis_and_pool_placement(
        epmd_port: int, sandboxes: list[Sandbox], opts: dict[str, Any],
        fake: FakeAnthropic) -> None:
    async with app_node(epmd_port):
        pool = Pool([b.name for b in sandboxes])
        status = await otpy.rpc.call(sandboxes[0].name, "claudecode.sandbox", "capacity", [])
        assert status["max"] == 1 and status["running"] == 0
        names = ["s0", "s1", "s2"]
        sup = await claudecode.Supervisor.start_link(
            [{"name": n, "adapter": pool, **opts} for n in names])
        peaks = [Peak(lambda box=box: len(claude_children(box.proc.pid))) for box in sandboxes]
        async with trio.open_nursery() as sampler:
            for peak in peaks:
                sampler.start_soon(peak.run)
            for n in names:
                assert await _ask(n, f"one {n}") == f"echo #2: one {n}"
            answers: dict[str, str] = {}

            async def again(name: str) -> None:
                answers[name] = await _ask(name, f"two {name}")

            async with trio.open_nursery() as nursery:
                for n in names:
                    nursery.start_soon(again, n)
            assert answers == {n: f"echo #4: two {n}" for n in names}
            sampler.cancel_scope.cancel()
        # spread over both sandboxes, never more than one CLI on each
        assert [p.peak for p in peaks] == [1, 1]
        hibernated = [n for n in names if await claudecode.health(n) == "hibernated"]
        assert len(hibernated) == 1  # two CLIs fit; the third session took turns
        otpy.unlink(sup)
        await otpy.stop(sup)
