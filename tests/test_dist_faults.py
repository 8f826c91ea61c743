"""Connection faults between real nodes, as otpy.testing actions.

The test node and its Python peers (``python -m otpy.testing._peer``, each
its own OS process) come from the otpy pytest plugin (``otpy_node``,
``py_nodes``). A supervised ``Bridge`` links itself to the peer's
``looper``; `Cut` breaks the TCP connection at the socket and `Partition`
freezes the peer (SIGSTOP) until `Heal`. Both sides must see
`otpy.NoConnection`: here the bridge exits with it (and is restarted), there
the looper records the link's `Exit`.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

import otpy
import otpy.testing as ot
from otpy.testing import Cut, Fault, Heal, Partition, Pause
from otpy.testing._peers import PyNode

PEER = "otpy.testing._peer"


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL)


class Bridge(otpy.GenServer):
    """Asks the peer's looper to link to it: a link across the connection."""

    async def init(self, peer: str) -> None:
        otpy.send(("looper", peer), ("link", otpy.self()))

    async def handle_info(self, message: Any) -> None:
        return None


async def peer_events(peer: str) -> list[tuple[str, str]]:
    with trio.fail_after(10):
        while not await otpy.connect(peer):
            await trio.sleep(0.1)
        return [tuple(e) for e in await otpy.rpc.call(peer, PEER, "events", [])]


async def linked(peer: str) -> None:
    """Wait until the looper over there has linked to the bridge here."""
    with trio.fail_after(10):
        while not (pid := otpy.whereis("bridge")) or not pid._proc or not pid._proc.links:
            await trio.sleep(0.02)


@pytest.mark.py_nodes(1)
async def test_a_cut_connection_gives_noconnection_on_both_sides(
        otpy_node: otpy.Node, py_nodes: list[PyNode]) -> None:
    [peer] = py_nodes
    sup = await otpy.Supervisor.start_link([Bridge.child_spec(peer.name, name="bridge")])
    await linked(peer.name)
    report = await ot.inject(sup, [Fault(0.2, 0, Cut(peer.name)), Fault(0.5, 0, Pause())],
                             cushion=0.1)
    report.check()
    [exit_line] = [e.text for e in report.timeline if e.kind == "exit"]
    assert exit_line.startswith("root/bridge") and "NoConnection(" in exit_line
    assert [e.kind for e in report.timeline].count("restart") == 1
    assert ("exit", "NoConnection") in await peer_events(peer.name)


@pytest.mark.py_nodes(1)
async def test_a_partition_is_noticed_by_ticks_and_seen_there_after_healing(
        otpy_node: otpy.Node, py_nodes: list[PyNode]) -> None:
    [peer] = py_nodes
    sup = await otpy.Supervisor.start_link([Bridge.child_spec(peer.name, name="bridge")])
    await linked(peer.name)
    t0 = trio.current_time()
    report = await ot.inject(sup, [
        Fault(0.2, 0, Partition(peer.name, peer.os_pid)),
        Fault(3.0, 0, Heal(peer.name, peer.os_pid)),  # ticks (1 s) notice it meanwhile
        Fault(0.5, 0, Pause()),
    ], cushion=0.1)
    report.check()
    [exit_line] = [e for e in report.timeline if e.kind == "exit"]
    assert "NoConnection" in exit_line.text
    assert 0.2 + 0.5 < exit_line.t < 0.2 + 3.0  # noticed within the tick time, not at once
    assert trio.current_time() - t0 < 10
    assert ("exit", "NoConnection") in await peer_events(peer.name)
