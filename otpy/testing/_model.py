"""A reference model of OTP supervision, independent of otpy's implementation.

`SupervisorModel` holds what one supervisor should look like — its children
in start order, which are running, how often each was started, the restart
timestamps that count against its intensity — and says how it must react
when a child exits: restart nothing, the child, the children after it, or
all of them; remove temporary children; or give up (shut every child down in
reverse start order and exit `Shutdown`). Nested supervisors are children
whose ``model`` is another `SupervisorModel`. The model never calls otpy: it
is plain data and rules, written from OTP's documentation (see
``docs/design/005-erlang-oracle-notes.md`` for the intensity window rule),
so that comparing it with the live tree tests otpy's supervisors.

`otpy.testing.inject` derives models from the live tree and checks them
after every fault; a test can also drive a model by hand (``exit``,
``restart``, ``observe``), as ``tests/test_supervisor_model.py`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

import attrs

from otpy._reasons import ExitReason, Normal, Shutdown
from otpy._terms import Pid

__all__ = ["ModelChild", "Reaction", "SupervisorModel"]

Kind = Literal["supervisor", "dynamic"]


@attrs.define(eq=False)
class ModelChild:
    """One child as the model sees it.

    Attributes:
        id: the child id (``None`` for a DynamicSupervisor's children).
        restart: "permanent", "transient" or "temporary".
        type: "worker" or "supervisor".
        shutdown: the spec's shutdown (seconds, "brutal_kill", "infinity").
        running: whether the supervisor holds a live process for it.
        starts: how many times it was started (1 after the first start).
        pid: its current process, when the model is kept in step with a
            live tree (``None`` in a purely hand-driven model).
        model: for a running supervisor child whose supervisor is modelled,
            that supervisor's model.
        genserver: the child is started by a `GenServer` class's
            ``start_link`` (so it can be stopped in order, with `terminate`).
        spec: its child spec, when known.
    """

    id: Any
    restart: str = "permanent"
    type: str = "worker"
    shutdown: Any = 5.0
    running: bool = True
    starts: int = 1
    pid: Pid | None = None
    model: SupervisorModel | None = None
    genserver: bool = False
    spec: Any = None


@attrs.define(eq=False)
class Reaction:
    """What a supervisor must do about one exit.

    Attributes:
        restart: the exit is one the child's restart type restarts.
        gave_up: the restart exceeded the intensity: the supervisor shuts
            every child down and exits `Shutdown`.
        stop: children the supervisor shuts down, in order.
        start: children it (re)starts, in order.
        removed: temporary children it forgets.
    """

    restart: bool = False
    gave_up: bool = False
    stop: list[ModelChild] = attrs.Factory(list)
    start: list[ModelChild] = attrs.Factory(list)
    removed: list[ModelChild] = attrs.Factory(list)


def restarts_after(restart: str, reason: ExitReason | None) -> bool:
    """OTP's restart types: is a child of this type restarted after ``reason``?

    Args:
        restart: "permanent", "transient" or "temporary".
        reason: the exit reason (`Normal` and `Shutdown`, with any detail,
            are the quiet ones a transient child is not restarted after).

    Returns:
        Whether the supervisor restarts it.
    """
    if restart == "permanent":
        return True
    if restart == "transient":
        return not isinstance(reason, Normal | Shutdown)
    return False


@attrs.define(eq=False)
class SupervisorModel:
    """The expected state of one supervisor (or DynamicSupervisor).

    Attributes:
        strategy: "one_for_one", "one_for_all" or "rest_for_one".
        max_restarts: restarts allowed within ``max_seconds``.
        max_seconds: the intensity window.
        children: in start order.
        kind: "supervisor", or "dynamic" for a DynamicSupervisor (always
            one_for_one; children identified by pid, their order not
            observable).
        alive: False once it gave up (or was otherwise stopped).
        restarts: times of the restarts that still count.
        pid: the live supervisor, when kept in step with a live tree.
    """

    strategy: str = "one_for_one"
    max_restarts: int = 3
    max_seconds: float = 5.0
    children: list[ModelChild] = attrs.Factory(list)
    kind: Kind = "supervisor"
    alive: bool = True
    restarts: list[float] = attrs.Factory(list)
    pid: Pid | None = None

    @classmethod
    def of(
        cls,
        specs: Iterable[Any],
        strategy: str = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5.0,
    ) -> SupervisorModel:
        """A model of a freshly started `otpy.Supervisor` with these children.

        Args:
            specs: `otpy.ChildSpec` values (anything with ``id``, ``restart``,
                ``type`` and ``shutdown``), all started.
            strategy: the restart strategy.
            max_restarts: the intensity limit.
            max_seconds: the intensity window.

        Returns:
            The model.
        """
        return cls(strategy, max_restarts, max_seconds, [child_of(s) for s in specs])

    # ------------------------------------------------------------ queries

    def child(self, key: Any) -> ModelChild:
        """The child with id ``key`` (or the `ModelChild` itself, or its pid)."""
        if isinstance(key, ModelChild):
            return key
        for c in self.children:
            if (c.pid is not None and c.pid == key) or (c.id is not None and c.id == key):
                return c
        raise KeyError(key)

    def observe(self) -> tuple[bool, list[tuple[Any, bool, int]]]:
        """``(alive, [(id, running, starts), ...])``: what a test compares."""
        return self.alive, [(c.id, c.running, c.starts) for c in self.children]

    def walk(self) -> Iterator[tuple[SupervisorModel, ModelChild]]:
        """Every ``(supervisor model, child)`` of this tree, depth first, in start order."""
        # iterative: a nested generator per level made each pair pass through
        # every level above it
        stack: list[tuple[SupervisorModel, Iterator[ModelChild]]] = [(self, iter(self.children))]
        while stack:
            sup, children = stack[-1]
            c = next(children, None)
            if c is None:
                stack.pop()
                continue
            yield sup, c
            if c.model is not None and c.running:
                stack.append((c.model, iter(c.model.children)))

    # ------------------------------------------------------------- rules

    def exit(self, key: Any, reason: ExitReason | None, now: float) -> Reaction:
        """A child exited on its own (not shut down by this supervisor).

        Args:
            key: the child (id, pid or `ModelChild`).
            reason: its exit reason.
            now: the time the supervisor handles the exit (for intensity).

        Returns:
            The reaction; the model is updated to the state after it.
        """
        child = self.child(key)
        child.running = False
        child.pid = None
        child.model = None
        if not restarts_after(child.restart, reason):
            if child.restart == "temporary" or self.kind == "dynamic":
                self.children.remove(child)
                return Reaction(removed=[child])
            return Reaction()
        return self.restart(child, now)

    def restart(self, key: Any, now: float) -> Reaction:
        """Restart a child that is down (after its exit, or a failed restart).

        Counts one restart against the intensity: a restart at time t counts
        while ``now - t <= max_seconds``; more than ``max_restarts`` counted
        restarts make the supervisor give up.

        Args:
            key: the child.
            now: the time of the restart.

        Returns:
            The reaction; the model is updated to the state after it.
        """
        child = self.child(key)
        self.restarts = [t for t in self.restarts if t >= now - self.max_seconds]
        self.restarts.append(now)
        if len(self.restarts) > self.max_restarts:
            return self.give_up()
        if self.kind == "dynamic" or self.strategy == "one_for_one":
            others: list[ModelChild] = []
        else:
            i = self.children.index(child)
            if self.strategy == "rest_for_one":
                others = self.children[i + 1:]
            else:
                others = [c for c in self.children if c is not child]
        stop = [c for c in reversed(others) if c.running]
        removed = [c for c in others if c.restart == "temporary"]
        for c in others:
            c.running = False
            c.pid = None
            c.model = None
        self.children = [c for c in self.children if c not in removed]
        start = [c for c in self.children if (c is child or c in others) and not c.running]
        for c in start:
            c.running = True
            c.starts += 1
        return Reaction(restart=True, stop=stop, start=start, removed=removed)

    def start_failed(self, key: Any) -> None:
        """A (re)start of a child failed, or was not attempted after a failure
        earlier in its group: the child stays down until the supervisor retries
        (a retry is a `restart` of the child whose exit began it).

        Args:
            key: the child.
        """
        child = self.child(key)
        child.running = False
        child.starts -= 1
        child.pid = None

    def give_up(self) -> Reaction:
        """Exceeded intensity: shut every running child down, newest first, and exit.

        Returns:
            The reaction (``gave_up``; ``stop`` in shutdown order).
        """
        stop = [c for c in reversed(self.children) if c.running]
        self.shut_down()
        return Reaction(restart=True, gave_up=True, stop=stop)

    def shut_down(self) -> list[ModelChild]:
        """The supervisor stops (gives up, or its own parent shuts it down).

        Returns:
            The running children it shuts down, in order (newest first).
        """
        stop = [c for c in reversed(self.children) if c.running]
        for c in self.children:
            c.running = False
            c.pid = None
            c.model = None
        self.children = [c for c in self.children if c.restart != "temporary"]
        self.alive = False
        return stop

    def terminated(self, key: Any) -> None:
        """A child was stopped through the API (``terminate_child``): it stays
        down (a temporary child, or any child of a DynamicSupervisor, is
        forgotten).

        Args:
            key: the child.
        """
        child = self.child(key)
        child.running = False
        child.pid = None
        child.model = None
        if child.restart == "temporary" or self.kind == "dynamic":
            self.children.remove(child)


def child_of(spec: Any, pid: Pid | None = None) -> ModelChild:
    """A running `ModelChild` for a child spec.

    Args:
        spec: an `otpy.ChildSpec`.
        pid: the child's process, if known.

    Returns:
        The model child (``starts`` 1).
    """
    fn = spec.start[0] if isinstance(spec.start, tuple) else spec.start
    owner = getattr(fn, "__self__", None)
    from otpy._genserver import GenServer

    genserver = isinstance(owner, type) and issubclass(owner, GenServer)
    return ModelChild(spec.id, spec.restart, spec.type, spec.shutdown, True, 1, pid, None,
                      genserver, spec)
