"""Registry (Elixir-style key/value process registry), `Via` names, and `Global`.

A `Registry` is a process that owns a table; reads and writes on the table
are plain synchronous operations (like Elixir's ETS-backed registry, without
a round trip through the owner). An entry belongs to the process that
registered it and vanishes the moment that process exits. As in Elixir, a
registering process is linked to the registry (which traps exits) until its
last key goes: a registry that crashes takes its registrants with it, and
their supervisors start them again in the new table.

`Via(registry, key)` is a name: usable as ``name=`` when starting a server
and as a send / call target. `Global(name)` is a name unique across connected
nodes; on a single node it is a node-wide table (distribution extends it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import attrs

from otpy._child_spec import ChildSpec
from otpy._genserver import GenServer
from otpy._node import Node
from otpy._process import Process, current
from otpy._reasons import ExitReason
from otpy._terms import Pid

__all__ = ["Global", "Registry", "Via"]


class _Table:
    __slots__ = ("entries", "keys", "meta", "name", "owner")

    def __init__(self, name: Any, keys: str, owner: Pid | None = None) -> None:
        self.name = name
        self.keys = keys
        self.owner = owner  # the registry process, linked to every registrant
        # key -> {pid: value}  (unique registries hold at most one pid per key)
        self.entries: dict[Any, dict[Pid, Any]] = {}
        self.meta: dict[Any, Any] = {}

    def drop_pid(self, proc: Process, reason: ExitReason) -> None:
        pid = proc.pid
        for key in [k for k, owners in self.entries.items() if pid in owners]:
            owners = self.entries[key]
            del owners[pid]
            if not owners:
                del self.entries[key]


def _table(node: Node, registry: Any) -> _Table:
    table = node.registries.get(registry)
    if table is None:
        if isinstance(registry, Pid):
            for t in node.registries.values():
                if node.resolve(t.name) == registry:
                    return t  # type: ignore[no-any-return]
        raise LookupError(f"no registry named {registry!r}")
    return table  # type: ignore[no-any-return]


class Registry(GenServer):
    """A local key/value registry of processes (``keys="unique"|"duplicate"``)."""

    trap_exits = True  # registrants are linked to it; their exits are not its own
    table: _Table

    @classmethod
    async def start_link(  # type: ignore[override]
        cls,
        name: Any,
        keys: Literal["unique", "duplicate"] = "unique",
        meta: dict[Any, Any] | None = None,
        timeout: float | None = 5.0,
    ) -> Pid:
        """Start a registry process owning a new table called ``name``.

        Args:
            name: the registry's name (also registered as the process name).
            keys: "unique" (one process per key) or "duplicate".
            meta: initial metadata.
            timeout: start timeout.

        Returns:
            The registry's pid.
        """
        if keys not in ("unique", "duplicate"):
            raise ValueError(f"keys must be 'unique' or 'duplicate', not {keys!r}")
        return await super().start_link(name, keys, meta or {}, name=name, timeout=timeout)

    @classmethod
    def child_spec(  # type: ignore[override]
        cls,
        name: Any,
        keys: Literal["unique", "duplicate"] = "unique",
        *,
        id: Any = None,
        **kw: Any,
    ) -> ChildSpec:
        """A spec that runs a registry under a supervisor (id defaults to the name)."""
        return ChildSpec(id=name if id is None else id,
                         start=(cls.start_link, (name, keys), kw), modules=["Registry"])

    async def init(self, name: Any, keys: str, meta: dict[Any, Any]) -> None:
        proc = current()
        node = proc.node
        if name in node.registries:
            raise ValueError(f"registry {name!r} already exists")
        table = self.table = _Table(name, keys, proc.pid)
        table.meta.update(meta)
        node.registries[name] = table

        def drop_table(p: Process, reason: ExitReason) -> None:
            # However the registry exits (even killed), its table goes with it.
            if node.registries.get(name) is table:
                del node.registries[name]

        if proc.cleanups is None:
            proc.cleanups = [drop_table]
        else:
            proc.cleanups.append(drop_table)

    async def handle_info(self, message: Any) -> None:
        return None

    # --------------------------------------------------- table operations

    @staticmethod
    def register(registry: Any, key: Any, value: Any = None) -> None:
        """Register the calling process under ``key`` with ``value``.

        Raises:
            ValueError: a unique key is already taken (``.args[1]`` is the holder).
        """
        proc = current()
        _register(proc, _table(proc.node, registry), key, value)

    @staticmethod
    def unregister(registry: Any, key: Any) -> None:
        """Remove the calling process's entries under ``key``."""
        proc = current()
        table = _table(proc.node, registry)
        owners = table.entries.get(key)
        if owners and proc.pid in owners:
            del owners[proc.pid]
            if not owners:
                del table.entries[key]
            _unlink_if_unregistered(proc, table)

    @staticmethod
    def lookup(registry: Any, key: Any) -> list[tuple[Pid, Any]]:
        """``[(pid, value), ...]`` registered under ``key``."""
        table = _table(current().node, registry)
        return list(table.entries.get(key, {}).items())

    @staticmethod
    def keys(registry: Any, pid: Pid) -> list[Any]:
        """The keys ``pid`` is registered under."""
        table = _table(current().node, registry)
        return [k for k, owners in table.entries.items() if pid in owners]

    @staticmethod
    def values(registry: Any, key: Any, pid: Pid) -> list[Any]:
        """The values ``pid`` registered under ``key``."""
        table = _table(current().node, registry)
        owners = table.entries.get(key, {})
        return [owners[pid]] if pid in owners else []

    @staticmethod
    def update_value(registry: Any, key: Any, fn: Callable[[Any], Any]) -> Any:
        """Update the calling process's value under a unique ``key``.

        Returns:
            ``(new, old)``, or None if the caller holds no such key.
        """
        proc = current()
        owners = _table(proc.node, registry).entries.get(key)
        if not owners or proc.pid not in owners:
            return None
        old = owners[proc.pid]
        owners[proc.pid] = new = fn(old)
        return (new, old)

    @staticmethod
    def dispatch(registry: Any, key: Any, fn: Callable[[list[tuple[Pid, Any]]], Any]) -> None:
        """Call ``fn`` with the ``[(pid, value)]`` entries of ``key`` (if any)."""
        entries = Registry.lookup(registry, key)
        if entries:
            fn(entries)

    @staticmethod
    def count(registry: Any) -> int:
        """Number of entries."""
        table = _table(current().node, registry)
        return sum(len(o) for o in table.entries.values())

    @staticmethod
    def meta(registry: Any, key: Any) -> Any:
        """Registry metadata under ``key`` (None if absent)."""
        return _table(current().node, registry).meta.get(key)

    @staticmethod
    def put_meta(registry: Any, key: Any, value: Any) -> None:
        """Set registry metadata."""
        _table(current().node, registry).meta[key] = value


def _register(proc: Process, table: _Table, key: Any, value: Any) -> None:
    owners = table.entries.get(key)
    if owners is None:
        owners = table.entries[key] = {}
    elif table.keys == "unique" and owners:
        holder = next(iter(owners))
        raise ValueError(f"key {key!r} is already registered in {table.name!r}", holder)
    owners[proc.pid] = value
    if table.owner is not None and table.owner != proc.pid:
        proc.node.link(proc, table.owner)
    if proc.cleanups is None:
        proc.cleanups = [table.drop_pid]
    elif table.drop_pid not in proc.cleanups:
        proc.cleanups.append(table.drop_pid)


def _unlink_if_unregistered(proc: Process, table: _Table) -> None:
    """Unlink a process from the registry once it holds no key there."""
    pid = proc.pid
    if table.owner is not None and not any(pid in o for o in table.entries.values()):
        proc.node.unlink(proc, table.owner)


@attrs.frozen
class Via:
    """A name held in a `Registry`: ``Via(registry, key)`` (value optional)."""

    registry: Any
    key: Any
    value: Any = None

    def whereis_name(self, node: Node) -> Pid | None:
        """The process registered under the key (first one, for duplicate keys)."""
        table = node.registries.get(self.registry)
        if table is None:
            return None
        owners = table.entries.get(self.key)
        return next(iter(owners)) if owners else None

    def register_name(self, node: Node, pid: Pid) -> bool:
        """Register ``pid`` under the key; False if a unique key is taken."""
        proc = node.local(pid)
        if proc is None:
            return False
        try:
            _register(proc, _table(node, self.registry), self.key, self.value)
        except ValueError:
            return False
        return True

    def unregister_name(self, node: Node) -> None:
        """Remove every entry under the key."""
        table = node.registries.get(self.registry)
        if table is not None:
            for pid in table.entries.pop(self.key, {}):
                proc = node.local(pid)
                if proc is not None:
                    _unlink_if_unregistered(proc, table)


@attrs.frozen
class Global:
    """A name unique across all connected nodes (``global`` in Erlang)."""

    name: Any

    def whereis_name(self, node: Node) -> Pid | None:
        """The holder, on any connected node."""
        if node.dist is not None:
            return node.dist.global_whereis(self.name)  # type: ignore[no-any-return]
        return node.globals.get(self.name)

    def register_name(self, node: Node, pid: Pid) -> bool:
        """Claim the name for ``pid``; False if someone holds it."""
        if node.dist is not None:
            return node.dist.global_register(self.name, pid)  # type: ignore[no-any-return]
        if self.name in node.globals:
            return False
        proc = node.local(pid)
        if proc is None:
            return False
        node.globals[self.name] = pid
        name = self.name

        def drop(p: Process, reason: ExitReason) -> None:
            if node.globals.get(name) == p.pid:
                del node.globals[name]

        if proc.cleanups is None:
            proc.cleanups = [drop]
        else:
            proc.cleanups.append(drop)
        return True

    def unregister_name(self, node: Node) -> None:
        """Release the name."""
        if node.dist is not None:
            node.dist.global_unregister(self.name)
            return
        node.globals.pop(self.name, None)
