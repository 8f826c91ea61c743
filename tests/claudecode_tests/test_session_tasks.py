"""Sessions driven from many trio tasks of one process (the real CLI, FakeAnthropic).

What a web server does: each request handler is a task of one otpy process,
and several of them stream at once. Streams to different sessions run in
parallel; streams to one session queue FIFO; a one-off ``query`` runs beside
them; a task cancelled mid-stream abandons its turn (the session interrupts
the CLI) and everything else goes on.
"""

from __future__ import annotations

import math
from typing import Any

import trio
from _session_env import fake, no_orphans, opts

import claudecode
import otpy
from claudecode.testing import FakeAnthropic, Text, Turn

__all__ = ["fake", "no_orphans", "opts"]  # fixtures used by name

HOLD = Turn([Text("never finished")], delay=math.inf)
"""A reply that never comes: the turn runs until it is interrupted."""


def _is(prompt: str) -> Any:
    return lambda request: request.last_user_text == prompt


async def test_streams_from_many_tasks_of_one_process(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    fake.script(HOLD, when=_is("a1"))
    async with otpy.open_node():
        a = await claudecode.start_link(**opts)
        b = await claudecode.start_link(**opts)
        events: list[tuple[str, Any]] = []
        b_done = trio.Event()
        query_done = trio.Event()

        async def stream(tag: str, session: Any, prompt: str) -> None:
            got = await claudecode.stream(session, prompt).collect()
            assert got.result_message is not None
            events.append((tag, got.result_message.subtype if got.is_error else got.result))

        async def b_then_signal() -> None:
            await stream("b1", b, "b1")
            b_done.set()

        async def one_off() -> None:
            result = await claudecode.query("q1", **opts)
            events.append(("query", result.result))
            query_done.set()

        async with trio.open_nursery() as n:
            n.start_soon(stream, "a1", a, "a1")
            with trio.fail_after(60):  # a1 is running: its request reached the API
                await fake.wait_for_requests(1, _is("a1"))
            n.start_soon(stream, "a2", a, "a2")  # queued behind a1 on the same session
            n.start_soon(b_then_signal)
            n.start_soon(one_off)
            with trio.fail_after(60):
                await b_done.wait()  # b ran while a1 still holds session a
                await query_done.wait()
            assert await claudecode.health(a) == "healthy"
            info = await claudecode.adapter_info(a)
            assert info["active"] and info["queued"] == 1  # a1 holds a; a2 waits
            await claudecode.interrupt(a)  # ends a1; then a2 runs
        tags = [tag for tag, _ in events]
        assert tags.index("b1") < tags.index("a1") < tags.index("a2")
        assert tags.index("query") < tags.index("a1")
        got = dict(events)
        assert got["b1"] == "echo #2: b1"
        assert got["query"] == "echo #2: q1"
        assert got["a1"] == "error_during_execution"  # interrupted
        assert got["a2"].endswith(": a2")
        prompts = [r.last_user_text for r in fake.messages_requests]
        assert prompts.index("a1") < prompts.index("a2")  # a2 waited for a1


async def test_a_task_cancelled_mid_stream_abandons_the_turn(
    opts: dict[str, Any], fake: FakeAnthropic
) -> None:
    fake.script(HOLD, when=_is("hold"))
    async with otpy.open_node():
        session = await claudecode.start_link(**opts)
        other = await claudecode.start_link(**opts)
        started = trio.Event()
        cancelled = trio.CancelScope()
        outcome: dict[str, Any] = {}

        async def doomed() -> None:
            with cancelled:
                async for message in claudecode.stream(session, "hold"):
                    if isinstance(message, claudecode.SystemMessage):
                        started.set()
            outcome["doomed"] = "cancelled" if cancelled.cancelled_caught else "finished"

        async def bystander() -> None:
            outcome["other"] = await claudecode.stream(other, "still here").final_text()

        async with trio.open_nursery() as n:
            n.start_soon(doomed)
            n.start_soon(bystander)
            with trio.fail_after(60):
                await started.wait()
            cancelled.cancel()
        assert outcome == {"doomed": "cancelled", "other": "echo #2: still here"}
        # The abandoned turn was interrupted: the session answers the next query.
        with trio.fail_after(30):
            assert (await claudecode.stream(session, "next").final_text()).endswith(": next")
        assert any("[Request interrupted by user]" in r.body.decode()
                   for r in fake.messages_requests)
        # The process keeps working: nothing stale in its mailbox.
        from otpy._process import current

        assert not current().mailbox
