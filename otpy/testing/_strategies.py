"""Hypothesis strategies for fault schedules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from otpy.testing._faults import EXIT_ACTIONS, Fault

__all__ = ["faults"]


def faults(
    max_faults: int = 20,
    actions: Sequence[Any] | None = None,
    max_gap: float = 2.0,
    *,
    min_faults: int = 0,
    targets: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[list[Fault]]:
    """A strategy of fault schedules (lists of `Fault`) for `inject`.

    Gaps are multiples of a quarter second, so sums of them are exact and
    schedules land exactly on intensity-window boundaries. Targets are ints
    (an index into the tree's live processes, whatever the tree looks like
    by then). Schedule lengths are spread evenly between ``min_faults`` and
    ``max_faults``. A failing schedule shrinks to fewer faults, earlier
    targets and shorter gaps.

    Args:
        max_faults: the most faults in a schedule.
        actions: the actions to draw from (default: "kill", "crash",
            "normal", "shutdown"); any mix of those, `otpy.ExitReason`
            values and `Action` objects.
        max_gap: the longest ``at`` (virtual seconds).
        min_faults: the fewest faults.
        targets: a strategy for targets instead of ints (e.g. paths or names).

    Returns:
        The strategy.
    """
    choices = list(actions) if actions is not None else list(EXIT_ACTIONS)
    if not choices:
        raise ValueError("faults() needs at least one action")
    quarters = max(0, int(max_gap * 4))
    fault = st.builds(
        Fault,
        st.integers(0, quarters).map(lambda n: n / 4),
        targets if targets is not None else st.integers(0, 63),
        st.sampled_from(choices),
    )
    if not 0 <= min_faults <= max_faults:
        raise ValueError(f"faults() needs 0 <= min_faults <= max_faults, got {min_faults}, "
                         f"{max_faults}")
    # The length is drawn first, evenly: hypothesis's own list lengths favour
    # short lists (in 10,000 examples of a tree property, 30 % hit no process
    # and 1.5 % reached ten faults), and long schedules are where intensity
    # windows fill up and supervisors give up. Shrinking still shortens them.
    return st.integers(min_faults, max_faults).flatmap(
        lambda n: st.lists(fault, min_size=n, max_size=n))
