"""A Registry is linked to the processes registered in it, as Elixir's is.

Found by otpy.testing (tests/test_tree_properties.py's tree with a Registry
under one_for_one): killing the registry dropped its table while the
processes registered in it kept running, nameless; nothing restarted them.
Elixir's Registry links the registering process to the registry ("the owner
is automatically linked to the caller"; the owner traps exits), so a
registry crash takes its registrants down too and their supervisors start
them again, registered in the new table.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio.testing

import otpy
import otpy.testing as ot
from otpy import Exit, Registry, Via


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)


class Named(otpy.GenServer):
    async def handle_info(self, message: Any) -> None:
        return None


def test_a_registry_restart_under_one_for_one_restarts_its_registrants() -> None:
    async def main() -> ot.Report:
        sup = await otpy.Supervisor.start_link(
            [Registry.child_spec("names"), Named.child_spec(id="w", name=Via("names", "w"))])
        return await ot.inject(sup, [ot.Fault(0, ("names",), "kill")])

    report = ot.run(main)
    assert report.ok, report
    assert [e.text.split()[0] for e in report.timeline if e.kind == "restart"] == [
        "root/names", "root/w"]


async def registry(name: str, keys: Any = "unique") -> otpy.Pid:
    """A registry started by another process (so only registering links us to it)."""

    async def owner() -> None:
        await Registry.start_link(name, keys=keys)
        await otpy.receive()

    otpy.spawn(owner)
    await trio.testing.wait_all_tasks_blocked()
    pid = otpy.whereis(name)
    assert pid is not None
    return pid


async def test_registrants_are_linked_to_the_registry_until_their_last_key_goes() -> None:
    async with otpy.open_node():
        otpy.trap_exits(True)
        reg = await registry("reg", keys="duplicate")
        Registry.register("reg", "a")
        Registry.register("reg", "b")
        Registry.unregister("reg", "a")
        otpy.exit(reg, otpy.Kill())
        assert await otpy.receive(Exit, timeout=1) == Exit(reg, otpy.Killed())

        reg = await registry("reg2")
        Registry.register("reg2", "k")
        Registry.unregister("reg2", "k")  # the last key: unlinked
        otpy.exit(reg, otpy.Kill())
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(otpy.Timeout):
            await otpy.receive(Exit, timeout=0)


async def test_the_registry_outlives_its_registrants() -> None:
    async with otpy.open_node():
        reg = await Registry.start_link("reg")
        pid = await Named.start(name=Via("reg", "n"))
        otpy.exit(pid, otpy.Kill())
        await trio.testing.wait_all_tasks_blocked()
        assert otpy.is_alive(reg)  # it traps its registrants' exits
        assert Registry.lookup("reg", "n") == []
