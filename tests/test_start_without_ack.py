"""A server that dies before acknowledging its start fails the start at once.

Found by otpy.testing in examples/fault_injection: while the "names"
registry was down, a DynamicSupervisor restarted a child named
``Via("names", ...)``; registering the name raised before the start was
acknowledged, the process died, and the supervisor waited the whole start
timeout (5 s) for an acknowledgement that could not come, then reported
``Timeout()`` instead of the crash. As in OTP (proc_lib monitors the new
process), the start now fails as soon as the process is gone, with its reason.
"""

from __future__ import annotations

import logging

import pytest
import trio

import otpy
import otpy.testing as ot


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)


def test_a_start_fails_at_once_with_the_crash_when_the_server_dies_before_its_ack() -> None:
    async def main() -> tuple[float, otpy.ExitReason]:
        otpy.trap_exits(True)
        t0 = trio.current_time()
        with pytest.raises(otpy.StartError) as info:
            await otpy.GenServer.start_link(name=otpy.Via("missing", "x"))
        return trio.current_time() - t0, info.value.reason

    elapsed, reason = ot.run(main)
    assert elapsed == 0.0
    assert isinstance(reason, otpy.Crash) and isinstance(reason.exception, LookupError)
