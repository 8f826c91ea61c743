"""Testing otpy applications: fault injection on virtual time, and test support.

Build a supervision tree, then prove it under failure::

    report = await otpy.testing.inject(sup, [otpy.testing.Fault(0.5, ("db",), "kill")])
    report.check()

`run` runs a node on virtual time, deterministically; `settle` waits until
the tree has finished reacting; `inject` applies a schedule of `Fault` and
checks the built-in invariants against `SupervisorModel`; `faults` draws
schedules with hypothesis and `TreeMachine` turns a tree into a stateful
hypothesis test. The pytest plugin (installed with the package) has fixtures
for nodes, ``erl`` and Python peer nodes, FakeAnthropic and sandbox nodes.
See ``docs/otpy/testing.md``. `make_test_certificates` writes throwaway TLS
certificates.

`faults`, `TreeMachine` and `invariant` need hypothesis (``pip install
otpy[testing]``); they are imported on first use.
"""

from typing import Any

from otpy.testing._certificates import make_test_certificates
from otpy.testing._dist_faults import Cut, Heal, Partition
from otpy.testing._faults import (
    Action,
    Fault,
    FaultContext,
    InjectedFault,
    Pause,
    Report,
    Timeline,
    TimelineEntry,
    inject,
)
from otpy.testing._model import ModelChild, Reaction, SupervisorModel
from otpy.testing._run import Recorder, record, run, seed_scheduler, settle

__all__ = [
    "Action",
    "Cut",
    "Fault",
    "FaultContext",
    "Heal",
    "InjectedFault",
    "ModelChild",
    "Partition",
    "Pause",
    "Reaction",
    "Recorder",
    "Report",
    "SupervisorModel",
    "Timeline",
    "TimelineEntry",
    "TreeMachine",
    "faults",
    "inject",
    "invariant",
    "make_test_certificates",
    "record",
    "run",
    "seed_scheduler",
    "settle",
]

_LAZY = {"faults": "_strategies", "TreeMachine": "_machine", "invariant": "_machine"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'otpy.testing' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"otpy.testing.{module}"), name)
    globals()[name] = value
    return value
