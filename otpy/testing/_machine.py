"""`TreeMachine`: a hypothesis stateful test of one supervision tree.

Subclass it, define ``async def start(self) -> Pid`` that starts the tree
(linked to the test process), optionally add ``@otpy.testing.invariant()``
async methods, and run ``MyMachine.TestCase``. The built-in rules add faults
and quiet periods to a schedule; when hypothesis ends an example, the
schedule runs in one deterministic `run` on virtual time through `inject`,
checking the built-in invariants and yours after every settle. A failure
shrinks to the shortest schedule and its message ends with the replayable
``inject`` call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from otpy._terms import Pid
from otpy.testing._faults import EXIT_ACTIONS, Fault, Pause, Report, inject
from otpy.testing._run import run

__all__ = ["TreeMachine", "invariant"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_QUARTERS = st.integers(0, 8).map(lambda n: n / 4)


def invariant() -> Callable[[F], F]:
    """Mark an async method of a `TreeMachine` as an invariant.

    It is awaited (inside the tree's node, from the test process) after every
    settle; raising — e.g. a failed ``assert`` — is a violation.

    Returns:
        The decorator.
    """

    def mark(fn: F) -> F:
        fn._otpy_invariant = True  # type: ignore[attr-defined]
        return fn

    return mark


class TreeMachine(RuleBasedStateMachine):
    """A stateful hypothesis test of one tree under faults. See the module docs.

    Class attributes to override:
        actions: the fault actions drawn (default the four exits).
        seed: the scheduler seed of every run.
        names, leaks: turn the name and leak checks off.
    """

    actions: Sequence[Any] = EXIT_ACTIONS
    seed = 0
    names = True
    leaks = True

    def __init__(self) -> None:
        super().__init__()
        self.schedule: list[Fault] = []
        self.report: Report | None = None

    async def start(self) -> Pid:
        """Start the tree (linked to the caller) and return its root."""
        raise NotImplementedError("a TreeMachine defines `async def start(self) -> Pid`")

    @rule(at=_QUARTERS, which=st.integers(0, 63), data=st.data())
    def fault(self, at: float, which: int, data: st.DataObject) -> None:
        """Add a fault to the schedule (``which`` indexes the live processes)."""
        action = data.draw(st.sampled_from(list(self.actions)), label="action")
        self.schedule.append(Fault(at, which, action))

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.5, 5.0, 10.0]))
    def wait(self, seconds: float) -> None:
        """Let virtual time pass (restart intensity windows expire)."""
        self.schedule.append(Fault(seconds, 0, Pause()))

    def user_invariants(self) -> list[Callable[[], Awaitable[Any]]]:
        """The bound ``@invariant()`` methods."""
        found = []
        for name in dir(type(self)):
            fn = getattr(type(self), name, None)
            if getattr(fn, "_otpy_invariant", False):
                found.append(getattr(self, name))
        return found

    async def _main(self) -> Report:
        root = await self.start()
        return await inject(root, self.schedule, invariants=self.user_invariants(),
                            names=self.names, leaks=self.leaks)

    def teardown(self) -> None:
        """Run the schedule on a fresh node; fail with the report on a violation."""
        self.report = report = run(self._main, seed=self.seed, shutdown_timeout=60.0)
        report.seed = self.seed
        report.check()
