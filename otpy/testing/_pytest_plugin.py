"""The pytest plugin of otpy (registered by the package's ``pytest11`` entry point).

Fixtures that start real things for a test, and stop them after:

* ``otpy_node`` (async, pytest-trio): a node running for the test, its events
  recorded (so `otpy.testing.inject` works); the test body runs as a task of
  the node's first process. It is distributed (registered with a private
  EPMD, cookie ``otpy_cookie``) when the test also uses ``erl_node``,
  ``py_nodes`` or ``sandbox_node``.
* ``erl_node``: a real ``erl`` node (`ErlNode`), on the same private EPMD.
* ``py_nodes``: Python nodes in other OS processes (`PyNode`); two unless
  the test is marked ``@pytest.mark.py_nodes(n)``.
* ``fake_anthropic`` (async): a running ``claudecode.testing.FakeAnthropic``;
  ``claude_options``: the options for ``claudecode.start_link`` that point
  the real CLI at it (private HOME and working directory).
  ``claudecode.testing.no_orphan_clis`` checks that no CLI outlived its session.
* ``sandbox_node``: a ``claudecode sandbox`` node (`SandboxNode`).

Hypothesis profiles ``dev`` (quick), ``ci`` (derandomized, a few minutes for
a suite of tree properties) and ``deep`` (10,000 examples): pick one with
``--hypothesis-profile=deep`` or the ``OTPY_HYPOTHESIS_PROFILE`` variable.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from otpy.testing._peers import Epmd, ErlNode, PyNode, SandboxNode, unique

COOKIE = "otpy-test-cookie"
TICK = 1.0

try:
    from hypothesis import HealthCheck, settings

    _SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]
    settings.register_profile("dev", max_examples=20, deadline=None, suppress_health_check=_SLOW)
    settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True,
                              suppress_health_check=_SLOW, print_blob=True)
    settings.register_profile("deep", max_examples=10_000, deadline=None,
                              suppress_health_check=_SLOW, stateful_step_count=30)
except ImportError:  # pragma: no cover - hypothesis is optional
    pass


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; load ``OTPY_HYPOTHESIS_PROFILE`` if set."""
    config.addinivalue_line("markers", "py_nodes(n): how many Python peer nodes py_nodes starts")
    profile = os.environ.get("OTPY_HYPOTHESIS_PROFILE")
    if profile:
        from hypothesis import settings as hsettings

        hsettings.load_profile(profile)


@pytest.fixture(scope="session")
def otpy_epmd() -> Iterator[Epmd]:
    """A private EPMD for the session's distributed fixtures."""
    epmd = Epmd()
    yield epmd
    epmd.stop()


@pytest.fixture
def otpy_cookie() -> str:
    """The cookie of the test nodes."""
    return COOKIE


@pytest.fixture
def _otpy_node_options(request: pytest.FixtureRequest, otpy_cookie: str) -> dict[str, Any]:
    wanted = {"erl_node", "py_nodes", "sandbox_node"} & set(request.fixturenames)
    if not wanted:
        return {}
    epmd: Epmd = request.getfixturevalue("otpy_epmd")
    return {"node": f"{unique('test')}@localhost", "cookie": otpy_cookie,
            "epmd_port": epmd.port, "net_ticktime": TICK}


@pytest.fixture
async def otpy_node(_otpy_node_options: dict[str, Any]) -> AsyncIterator[Any]:
    """A node for the test, with its events recorded (see the module docs)."""
    from otpy._api import open_node
    from otpy.testing._run import record, seed_scheduler

    async with open_node(**_otpy_node_options) as node:
        seed_scheduler(0)
        with record(node):
            yield node


@pytest.fixture
def erl_node(otpy_epmd: Epmd, otpy_cookie: str) -> Iterator[ErlNode]:
    """A real ``erl`` node on the private EPMD (stopped after the test)."""
    node = ErlNode(otpy_epmd.port, otpy_cookie, extra_args=("-kernel", "net_ticktime", "4"))
    yield node
    node.stop()


@pytest.fixture
def py_nodes(request: pytest.FixtureRequest, otpy_epmd: Epmd,
             otpy_cookie: str) -> Iterator[list[PyNode]]:
    """Python peer nodes in other OS processes (two, or ``@pytest.mark.py_nodes(n)``)."""
    marker = request.node.get_closest_marker("py_nodes")
    count = int(marker.args[0]) if marker is not None and marker.args else 2
    nodes: list[PyNode] = []
    try:
        for _ in range(count):
            nodes.append(PyNode(otpy_epmd.port, otpy_cookie, ticktime=TICK))
        yield nodes
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture
def sandbox_node(otpy_epmd: Epmd, otpy_cookie: str, tmp_path: Path) -> Iterator[SandboxNode]:
    """A ``claudecode sandbox`` node (stopped after the test)."""
    node = SandboxNode(otpy_epmd.port, otpy_cookie, tmp_path, ticktime=TICK)
    yield node
    node.stop()


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[Any]:
    """A running ``claudecode.testing.FakeAnthropic`` (quiet)."""
    from claudecode.testing import FakeAnthropic

    async with FakeAnthropic.serve(log_requests=False) as fake:
        yield fake


@pytest.fixture
def claude_options(fake_anthropic: Any, tmp_path: Path) -> dict[str, Any]:
    """Options for ``claudecode.start_link``: the real CLI against ``fake_anthropic``
    (no retries of API errors), with a private HOME and working directory."""
    from claudecode._install import install_cli

    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    env = {"HOME": str(home), "CLAUDE_CONFIG_DIR": str(home / ".claude"),
           **fake_anthropic.env(max_retries=0)}
    return {"env": env, "cwd": str(work), "cli_path": install_cli().path}
