"""OTP's erts/emulator/test/register_SUITE.erl (its one case, otp_8099) and
the rules of register/2, unregister/1 and whereis/1 it relies on, checked
on a real erl (OTP 25). process_SUITE:bad_register is in
test_process_suite.py.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

import otpy

Clock = trio.testing.MockClock
NAME = "otp_8099_reg_proc"


async def loop() -> None:
    while True:
        await otpy.receive()


async def test_otp_8099(autojump_clock: Clock) -> None:
    """register_SUITE:otp_8099 — register a fresh process under a name whose
    previous holder was just killed: if the old holder still has it,
    unregister it (the kill may not have landed yet) and register again;
    whereis then answers the new process. 2000 rounds (erl: 1000000)."""
    async with otpy.open_node():
        for _ in range(2000):
            p = otpy.spawn(loop)
            try:
                otpy.register(NAME, p)
            except ValueError:
                old = otpy.whereis(NAME)
                assert old is not None and old != p
                otpy.unregister(NAME)
                otpy.exit(old, otpy.Kill())
                otpy.register(NAME, p)
            assert otpy.whereis(NAME) == p
            otpy.exit(p, otpy.Kill())


async def test_register_rules(autojump_clock: Clock) -> None:
    """erlang:register/2, unregister/1, whereis/1 as erl (OTP 25) answers:
    a taken name, or a second name for a registered process, is refused
    (badarg; otpy: ValueError); unregistering or sending to a name nobody
    holds fails (badarg; otpy: NotRegisteredError); a dead process loses
    its name (``whereis`` -> undefined) and the name can be taken again."""
    async with otpy.open_node():
        p2 = otpy.spawn(loop)
        otpy.register("foo", p2)
        with pytest.raises(ValueError):
            otpy.register("foo", otpy.self())
        with pytest.raises(ValueError):
            otpy.register("bar", p2)
        with pytest.raises(otpy.NotRegisteredError):
            otpy.unregister("nobody")
        with pytest.raises(otpy.NotRegisteredError):
            otpy.send("nobody", "hi")
        assert otpy.registered() == ["foo"]
        otpy.exit(p2, otpy.Kill())
        await trio.testing.wait_all_tasks_blocked()
        assert otpy.whereis("foo") is None
        assert otpy.registered() == []
        otpy.register("foo")
        assert otpy.whereis("foo") == otpy.self()
        otpy.unregister("foo")
        assert otpy.whereis("foo") is None
