"""The otpy pytest plugin: registered by the package, its fixtures start real things.

``otpy_node`` is distributed here because the test also asks for ``erl_node``
(a real ``erl``) or ``py_nodes`` (Python nodes in other OS processes), all on
one private EPMD.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
import trio

import otpy
from otpy.testing._peers import ErlNode, PyNode

ROOT = Path(__file__).resolve().parent.parent


def test_the_plugin_is_registered_by_the_package() -> None:
    plugins = {e.name: e.value for e in importlib.metadata.entry_points(group="pytest11")}
    assert plugins["otpy"] == "otpy.testing._pytest_plugin"


def test_loading_the_plugin_imports_nothing_of_otpy() -> None:
    # pytest loads the plugin for every test session of every project that has
    # otpy installed: it must cost nothing until one of its fixtures is used.
    code = ("import sys, otpy.testing._pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.startswith(('otpy.', 'claudecode'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    loaded = eval(done.stdout)
    assert "otpy.testing._faults" not in loaded and "claudecode" not in loaded, loaded
    assert not [m for m in loaded if m.startswith("otpy.testing._")
                and m != "otpy.testing._pytest_plugin"], loaded


def test_the_plugin_registers_hypothesis_profiles() -> None:
    from hypothesis import settings

    assert settings.get_profile("dev").max_examples == 20
    assert settings.get_profile("ci").derandomize
    assert settings.get_profile("deep").max_examples == 10_000


async def test_otpy_node_talks_to_a_real_erl_node(otpy_node: otpy.Node,
                                                  erl_node: ErlNode) -> None:
    assert otpy.node().startswith("test_")
    assert await otpy.connect(erl_node.name)
    assert await otpy.rpc.call(erl_node.name, "erlang", "node", []) == otpy.Atom(erl_node.name)
    assert await erl_node.eval(f"lists:member('{otpy.node()}', nodes()).") == "true"


@pytest.mark.py_nodes(3)
async def test_py_nodes_are_separate_processes(otpy_node: otpy.Node,
                                               py_nodes: list[PyNode]) -> None:
    assert len({p.os_pid for p in py_nodes}) == 3
    for peer in py_nodes:
        reply = await otpy.call(("echo", peer.name), "hi")
        assert reply == ("echo", "hi", peer.name)
    py_nodes[0].kill()
    with trio.fail_after(5):
        while py_nodes[0].name in otpy.nodes():
            await trio.sleep(0.05)
