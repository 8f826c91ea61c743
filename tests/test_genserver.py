"""GenServer semantics (OTP_SEMANTICS 9-15)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing

import otpy
from otpy import Down, Exit


class Counter(otpy.GenServer):
    async def init(self, start: int = 0) -> None:
        self.n = start

    async def handle_call(self, request: Any, caller: Any) -> Any:
        match request:
            case "get":
                return self.n
            case ("add", k):
                self.n += k
                return self.n
            case "crash":
                raise RuntimeError("crash in handle_call")
            case ("sleep", s):
                await trio.sleep(s)
                return "slept"
            case "later":
                self.pending = caller
                return otpy.NoReply
            case "release":
                otpy.reply(self.pending, "released")
                return "ok"
            case ("stop", why):
                raise otpy.Stop(why, reply="stopping")
        return None

    async def handle_cast(self, request: Any) -> None:
        if request == "crash":
            raise RuntimeError("crash in handle_cast")
        self.n = request

    async def handle_info(self, message: Any) -> None:
        self.info = message


# --------------------------------------------------------------------- start


async def test_9_start_link_waits_for_init_and_links() -> None:
    class Slow(otpy.GenServer):
        async def init(self) -> None:
            await trio.sleep(0.01)
            self.ready = True

        async def handle_call(self, request: Any, caller: Any) -> Any:
            return self.ready

    async with otpy.open_node():
        pid = await Slow.start_link()
        assert await otpy.call(pid, "ready?") is True
        otpy.trap_exits(True)
        otpy.exit(pid, otpy.Kill())
        assert await otpy.receive(Exit, timeout=1) == Exit(pid, otpy.Killed())


async def test_9_init_stop_ignore_crash_and_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Picky(otpy.GenServer):
        async def init(self, mode: str) -> None:
            if mode == "stop":
                raise otpy.Stop(otpy.TermReason("no thanks"))
            if mode == "ignore":
                raise otpy.Ignore()
            if mode == "crash":
                raise ValueError("bad init")
            if mode == "slow":
                await trio.sleep(100)

    async with otpy.open_node():
        otpy.trap_exits(True)
        with pytest.raises(otpy.StartError) as info:
            await Picky.start_link("stop")
        assert info.value.reason == otpy.TermReason("no thanks")
        with pytest.raises(otpy.Ignored):
            await Picky.start_link("ignore")
        with pytest.raises(otpy.StartError) as info:
            await Picky.start_link("crash")
        assert isinstance(info.value.reason, otpy.Crash)
        assert isinstance(info.value.reason.exception, ValueError)
        t0 = trio.current_time()
        with pytest.raises(otpy.StartError) as info:
            await Picky.start_link("slow", timeout=2.0)
        assert info.value.reason == otpy.Timeout()
        assert trio.current_time() - t0 == pytest.approx(2.0, abs=0.01)
        # As in OTP 25 (checked on erl): a trapping caller keeps the Exit of
        # each failed start (ignore -> normal, stop -> its reason, crash), but
        # none for the timed-out one, which was unlinked before being killed.
        await trio.testing.wait_all_tasks_blocked()
        exits = []
        while True:
            try:
                exits.append(await otpy.receive(Exit, timeout=0))
            except otpy.Timeout:
                break
        assert [type(e.reason) for e in exits] == [otpy.TermReason, otpy.Normal, otpy.Crash]
        # Without trapping, a failed start_link takes the caller down (as in OTP).

        async def starter() -> None:
            await Picky.start_link("stop")

        _pid, _ref = otpy.spawn_monitor(starter)
        down = await otpy.receive(Down, timeout=5)
        assert down.reason == otpy.TermReason("no thanks")


async def test_start_with_name_and_already_started() -> None:
    async with otpy.open_node():
        pid = await Counter.start(5, name="counter")
        assert otpy.whereis("counter") == pid
        assert await otpy.call("counter", "get") == 5
        with pytest.raises(otpy.StartError) as info:
            await Counter.start(1, name="counter")
        assert info.value.reason == otpy.TermReason(("already_started", pid))


# ---------------------------------------------------------------------- call


async def test_10_call_reply_and_typed_failures(autojump_clock: trio.testing.MockClock) -> None:
    async with otpy.open_node():
        pid = await Counter.start(1)
        assert await otpy.call(pid, ("add", 2)) == 3
        with pytest.raises(otpy.CallError) as info:
            await otpy.call("nobody", "get")
        assert info.value.reason == otpy.NoProc()

        t0 = trio.current_time()
        with pytest.raises(otpy.CallError) as info:
            await otpy.call(pid, ("sleep", 10))
        assert info.value.reason == otpy.Timeout()
        assert trio.current_time() - t0 == pytest.approx(5.0, abs=0.01)  # the default

        # The late reply (the server finishes its sleep) is dropped...
        await trio.sleep(10)
        assert await otpy.call(pid, "get", timeout=1) == 3
        # ...never delivered to a later receive.
        with pytest.raises(otpy.Timeout):
            await otpy.receive(timeout=0)


async def test_10_call_fails_at_once_when_server_crashes_in_handle_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with otpy.open_node():
        pid = await Counter.start(0)
        with trio.fail_after(1):  # never hangs (the peers' bug)
            with pytest.raises(otpy.CallError) as info:
                await otpy.call(pid, "crash")
        assert isinstance(info.value.reason, otpy.Crash)
        assert str(info.value.reason.exception) == "crash in handle_call"
        assert not otpy.is_alive(pid)


async def test_10_call_to_server_that_dies_meanwhile() -> None:
    async with otpy.open_node():
        pid = await Counter.start(0)

        async def killer() -> None:
            await trio.sleep(0.01)
            otpy.exit(pid, otpy.Kill())

        otpy.spawn(killer)
        with pytest.raises(otpy.CallError) as info:
            await otpy.call(pid, ("sleep", 5), timeout=None)
        assert info.value.reason == otpy.Killed()


async def test_11_cast_always_succeeds() -> None:
    async with otpy.open_node():
        pid = await Counter.start(0)
        otpy.cast(pid, 7)
        assert await otpy.call(pid, "get") == 7
        otpy.exit(pid, otpy.Kill())
        otpy.cast(pid, 8)  # dead server: no error
        otpy.cast("nobody", 8)  # unknown name: no error


async def test_12_stop_with_reply_and_noreply_then_reply() -> None:
    async with otpy.open_node():
        pid = await Counter.start(0)
        me = otpy.self()

        async def waits() -> None:
            otpy.send(me, ("got", await otpy.call(pid, "later")))

        otpy.spawn(waits)
        await trio.testing.wait_all_tasks_blocked()
        assert await otpy.call(pid, "release") == "ok"
        assert await otpy.receive(timeout=1) == ("got", "released")

        ref = otpy.monitor(pid)
        assert await otpy.call(pid, ("stop", otpy.Normal())) == "stopping"
        down = await otpy.receive(Down, timeout=1)
        assert down.ref == ref and down.reason == otpy.Normal()


async def test_13_handle_continue_runs_before_next_message_and_idle_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    class Cont(otpy.GenServer):
        idle_timeout = 3.0

        async def init(self) -> otpy.Continue:
            log.append("init")
            return otpy.Continue("warm")

        async def handle_continue(self, arg: Any) -> None:
            await trio.sleep(1)
            log.append(f"continue:{arg}")

        async def handle_call(self, request: Any, caller: Any) -> Any:
            log.append(f"call:{request}")
            if request == "again":
                return otpy.Continue("after-call", reply="r")
            return "ok"

        async def handle_timeout(self) -> None:
            log.append("timeout")

    async with otpy.open_node():
        pid = await Cont.start()
        assert log == ["init"]
        assert await otpy.call(pid, "x") == "ok"
        assert log == ["init", "continue:warm", "call:x"]
        assert await otpy.call(pid, "again") == "r"
        await trio.sleep(3.5)  # the continue takes 1 s, then 3 s of idleness
        assert log[-2:] == ["call:again", "continue:after-call"]
        await trio.sleep(1)
        assert log[-2:] == ["continue:after-call", "timeout"]


async def test_14_terminate_on_stop_and_on_crash_not_on_init() -> None:
    seen: list[Any] = []

    class T(otpy.GenServer):
        async def init(self, fail: bool = False) -> None:
            if fail:
                raise ValueError("init")

        async def handle_cast(self, request: Any) -> None:
            if request == "stop":
                raise otpy.Stop(otpy.Shutdown("asked"))
            raise RuntimeError("cast crash")

        async def terminate(self, reason: otpy.ExitReason) -> None:
            seen.append(reason)

    async with otpy.open_node():
        pid = await T.start()
        ref = otpy.monitor(pid)
        otpy.cast(pid, "stop")
        assert (await otpy.receive(Down, timeout=1)).ref == ref
        assert seen == [otpy.Shutdown("asked")]
        pid = await T.start()
        otpy.cast(pid, "boom")
        await otpy.receive(Down, timeout=1) if otpy.monitor(pid) else None
        assert isinstance(seen[-1], otpy.Crash)
        n = len(seen)
        with pytest.raises(otpy.StartError):
            await T.start(True)
        assert len(seen) == n  # no terminate for a failing init


async def test_14_parent_exit_runs_terminate_only_when_trapping() -> None:
    seen: list[str] = []

    class Plain(otpy.GenServer):
        async def terminate(self, reason: otpy.ExitReason) -> None:
            seen.append("plain")

    class Trapping(otpy.GenServer):
        trap_exits = True

        async def terminate(self, reason: otpy.ExitReason) -> None:
            seen.append(f"trapping:{reason!r}")

    async def parent(me: otpy.Pid) -> None:
        a = await Plain.start_link()
        b = await Trapping.start_link()
        otpy.send(me, (a, b))
        await otpy.receive()

    async with otpy.open_node():
        me = otpy.self()
        p = otpy.spawn(parent, me)
        a, b = await otpy.receive(timeout=1)
        ra, rb = otpy.monitor(a), otpy.monitor(b)
        otpy.exit(p, otpy.Shutdown())
        downs = {d.ref: d.reason for d in [await otpy.receive(Down, timeout=1) for _ in "ab"]}
        assert downs[ra] == otpy.Shutdown() and downs[rb] == otpy.Shutdown()
        assert seen == ["trapping:Shutdown(detail=None)"]


async def test_14_otpy_stop_runs_terminate() -> None:
    seen: list[Any] = []

    class T(otpy.GenServer):
        async def terminate(self, reason: otpy.ExitReason) -> None:
            seen.append(reason)

    async with otpy.open_node():
        pid = await T.start(name="t")
        await otpy.stop("t", otpy.Shutdown("bye"), timeout=1)
        assert seen == [otpy.Shutdown("bye")]
        assert not otpy.is_alive(pid)
        with pytest.raises(otpy.CallError):
            await otpy.stop("t")


async def test_15_normal_and_shutdown_not_logged_crashes_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="otpy")
    async with otpy.open_node():
        for reason in (otpy.Normal(), otpy.Shutdown(), otpy.Shutdown("detail")):
            pid = await Counter.start(0)
            await otpy.stop(pid, reason, timeout=1)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        pid = await Counter.start(0)
        ref = otpy.monitor(pid)
        otpy.cast(pid, "crash")
        await otpy.receive(Down, timeout=1)
        del ref
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        assert getattr(errors[0], "otpy_report", None) == "crash_report"
        assert "crash in handle_cast" in caplog.text


async def test_unexpected_info_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    class NoInfo(otpy.GenServer):
        async def handle_call(self, request: Any, caller: Any) -> Any:
            return request

    async with otpy.open_node():
        pid = await NoInfo.start()
        otpy.send(pid, "stray")
        assert await otpy.call(pid, "still here") == "still here"
        assert "unexpected message" in caplog.text
