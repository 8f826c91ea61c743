"""Property tests of the application in ``app.py``, under injected faults.

Run them with ``python -m pytest examples/fault_injection`` (the otpy pytest
plugin provides the fixtures; pytest-trio runs the async test).

* `AppMachine` — hypothesis draws schedules of up to 30 faults (kills,
  crashes, orderly stops, exit signals) against any process of the tree, on
  virtual time; after every fault the built-in invariants (supervision model,
  names, nothing left behind) and the application's own (an order goes
  through; every notifier and assistant answers) must hold. The sessions'
  CLIs never start here: they start on a first query.
* `test_assistants_under_session_faults` — the real CLI against
  FakeAnthropic, with turns running while CLIs are killed and the API fails.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from app import ASSISTANTS, CHANNELS, start
from hypothesis import settings

import claudecode
import otpy
import otpy.testing
from claudecode.testing import (
    APIFault,
    FakeAnthropic,
    KillCLI,
    StreamCut,
    Turns,
    no_orphan_clis,
    sessions_reachable,
)
from otpy.testing import Fault, Pause

logging.getLogger("otpy").setLevel(logging.CRITICAL)  # reports of the injected faults


class AppMachine(otpy.testing.TreeMachine):
    """The application's tree under drawn faults, with its own invariants."""

    actions = ("kill", "crash", "normal", "shutdown", otpy.Shutdown())

    async def start(self) -> otpy.Pid:
        return await start({"cwd": "/tmp"}, max_restarts=1000)

    @otpy.testing.invariant()
    async def an_order_goes_through(self) -> None:
        reply = await otpy.call("orders", ("order", "pen"))
        assert reply.startswith("order ") or reply == "out of stock", reply

    @otpy.testing.invariant()
    async def every_notifier_and_assistant_answers(self) -> None:
        for channel in CHANNELS:
            assert (await otpy.call(otpy.Via("names", channel), "sent"))[0] == channel
        for name in ASSISTANTS:
            assert await claudecode.alive(otpy.Via("names", name))


TestApp = AppMachine.TestCase
TestApp.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)


async def test_assistants_under_session_faults(
        otpy_node: otpy.Node, fake_anthropic: FakeAnthropic,
        claude_options: dict[str, Any]) -> None:
    root = await start(claude_options)
    names = [otpy.Via("names", n) for n in ASSISTANTS]
    turns = Turns(names)
    turns.start()
    with trio.fail_after(60):  # both CLIs up (a turn done each) before the first fault
        while len({o.session for o in turns.outcomes if o.outcome == "completed"}) < 2:
            await trio.sleep(0.05)
    report = await otpy.testing.inject(root, [
        Fault(0.2, ("assistants", names[0]), KillCLI()),
        Fault(0.5, 0, APIFault(fake_anthropic, status=529)),
        Fault(0.5, 0, StreamCut(fake_anthropic)),
        Fault(0.5, ("assistants", names[1]), KillCLI()),
        Fault(1.0, 0, Pause()),
    ], invariants=[turns.check, sessions_reachable(names), no_orphan_clis(fake_anthropic)],
        cushion=0.1)
    turns.stop()
    report.check()
    assert turns.counts()["completed"] >= 5, turns.counts()


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)
