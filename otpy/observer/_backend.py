"""The ``otpy_observer`` system process: what the observer page asks a node about.

Every distributed node runs one (unless started with ``observer=False``), and
`otpy.observer.serve` starts one on a node that has none. It answers
GenServer calls whose request is one of a fixed list — everything it returns
is plain terms (dicts with str keys, lists, str, numbers, bools, None), so a
hidden observer node on another machine gets them over distribution:

* ``("node",)`` — the node's name, process count, connected nodes;
* ``("tree",)`` — the supervision trees: nested ``{"name", "pid", "kind",
  "children"}``, the node at the root;
* ``("process", pid_text)`` — one process: mailbox length, links,
  monitors, its server's state (`otpy.GenServer.format_status`), or None;
* ``("sessions",)`` — every process whose server's ``observer_kind`` is
  ``"session"``, with its ``format_status``;
* ``("subscribe", pid)`` — send ``pid`` each telemetry event of the trees,
  sessions and connections as ``(EVENT_TAG, name, measurements,
  metadata)``, until it exits;
* ``("kill", pid_text)`` — exit signal `Kill` to that process (never to the
  node's system processes).

Anything else is answered ``("error", "unknown_request")``. The state is read
directly (the observer runs in the same thread as the node, between two
steps of every process): no call is made to a supervisor or a server, so a
busy one still shows. Telemetry handlers are attached only while a
subscriber exists. Who may send these requests, and what that gives them:
docs/otpy/observer.md, "Threat model".
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, Final

from otpy import telemetry
from otpy._dynamic_supervisor import DynamicSupervisor
from otpy._genserver import GEN_CALL, reply
from otpy._node import Node
from otpy._process import Process, current, receive
from otpy._reasons import KILL, Down
from otpy._supervisor import ChildInfo, Supervisor
from otpy._terms import Atom, Pid

__all__ = [
    "EVENT_TAG",
    "NAME",
    "SYSTEM_NAMES",
    "backend",
    "ensure_backend",
    "node_info",
    "plain",
    "process_info",
    "sessions",
    "tree",
]

logger = logging.getLogger("otpy.observer")

#: The registered name of the backend process on every node.
NAME: Final = "otpy_observer"
#: First element of the event messages sent to subscribers.
EVENT_TAG: Final = "$otpy_observer_event"
#: Registered names of processes the observer never kills.
SYSTEM_NAMES: Final = frozenset({"rex", "net_kernel", "otpy_global", NAME})
#: The events forwarded to subscribers (no per-process spawn/exit: too many).
EVENTS: Final = (("otpy", "supervisor"), ("claudecode",), ("otpy", "dist", "node_up"),
                 ("otpy", "dist", "node_down"))
#: At most this many processes outside supervision trees are listed in the tree.
MAX_LOOSE: Final = 200
_MAX_TEXT: Final = 400
_MAX_DEPTH: Final = 6
_MAX_ITEMS: Final = 100


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as plain terms that JSON and distribution both carry.

    Pids become their text (``"<0.12.0>"``), atoms their name, dicts get str
    keys, tuples and sets become lists; anything else its ``repr``. Long
    texts, deep nesting and long collections are cut.

    Args:
        value: anything.
        depth: the nesting level (for the cut).

    Returns:
        The plain value.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "…"
    if isinstance(value, Pid):
        return repr(value)
    if isinstance(value, Atom):
        return value.name
    if depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            items = list(value.items())
            out = {(k if isinstance(k, str) else repr(k)): plain(v, depth + 1)
                   for k, v in items[:_MAX_ITEMS]}
            if len(items) > _MAX_ITEMS:
                out["…"] = f"{len(items) - _MAX_ITEMS} more"
            return out
        if isinstance(value, list | tuple | set | frozenset):
            seq = list(value)
            out_list = [plain(v, depth + 1) for v in seq[:_MAX_ITEMS]]
            if len(seq) > _MAX_ITEMS:
                out_list.append(f"… {len(seq) - _MAX_ITEMS} more")
            return out_list
    text = repr(value)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


def kind_of(proc: Process | None) -> str:
    """``"supervisor"``, ``"session"``, ``"gen_server"``... or ``"process"``."""
    server = getattr(proc, "server", None)
    if server is None:
        return "process"
    return str(getattr(server, "observer_kind", "gen_server"))


def _name_of(proc: Process | None) -> str | None:
    name = getattr(proc, "name", None)
    return name if isinstance(name, str) else None


def _children(proc: Process) -> list[ChildInfo] | None:
    server = getattr(proc, "server", None)
    if isinstance(server, Supervisor | DynamicSupervisor):
        try:
            return server.children_info()
        except AttributeError:  # still in init: no children yet
            return []
    return None


def tree(node: Node) -> dict[str, Any]:
    """The node's supervision trees (and the processes outside them).

    Args:
        node: the local node.

    Returns:
        ``{"name": node, "pid": None, "kind": "node", "children": [...]}``:
        each top-level supervisor with its children (recursively), then the
        processes no supervisor holds (at most `MAX_LOOSE`; ``"truncated"``
        counts the rest). An entry is ``{"name", "pid", "kind", "children"}``
        plus, for a supervised child, ``"id"`` and ``"type"``; a child being
        restarted or stopped has ``"pid": None`` and kind ``"restarting"`` /
        ``"stopped"``.
    """
    procs = node.alive_procs()
    by_pid = {p.pid: p for p in procs}
    kids: dict[Pid, list[ChildInfo]] = {}
    for p in procs:
        found = _children(p)
        if found is not None:
            kids[p.pid] = found
    held = {c.pid for rows in kids.values() for c in rows if type(c.pid) is Pid}

    def entry(pid: Pid, child: ChildInfo | None, seen: frozenset[Pid]) -> dict[str, Any]:
        proc = by_pid.get(pid)
        server = getattr(proc, "server", None)
        name = _name_of(proc)
        if name is None and child is not None and child.id is not None:
            name = plain(child.id) if isinstance(child.id, str) else repr(child.id)
        if name is None:
            name = type(server).__name__ if server is not None else "process"
        out: dict[str, Any] = {"name": name, "pid": repr(pid), "kind": kind_of(proc),
                               "children": []}
        if child is not None:
            out["id"] = plain(child.id)
            out["type"] = child.type
        if pid in kids and pid not in seen:
            inner = seen | {pid}
            out["children"] = [
                entry(c.pid, c, inner) if type(c.pid) is Pid else {
                    "name": plain(c.id) if isinstance(c.id, str) else repr(c.id),
                    "pid": None, "kind": "stopped" if c.pid is None else "restarting",
                    "children": [], "id": plain(c.id), "type": c.type}
                for c in kids[pid]]
        return out

    roots = [entry(p.pid, None, frozenset()) for p in procs if p.pid in kids and
             p.pid not in held]
    loose = [p for p in procs if p.pid not in kids and p.pid not in held]
    children = roots + [entry(p.pid, None, frozenset()) for p in loose[:MAX_LOOSE]]
    out: dict[str, Any] = {"name": _node_name(node), "pid": None, "kind": "node",
                           "children": children}
    if len(loose) > MAX_LOOSE:
        out["truncated"] = len(loose) - MAX_LOOSE
    return out


def _node_name(node: Node) -> str:
    return node.name.name


def _find(node: Node, text: Any) -> Process | None:
    """The live local process whose pid's text is ``text``."""
    if isinstance(text, Pid):
        return node.local(text)
    if not isinstance(text, str) or not text.startswith("<") or not text.endswith(">"):
        return None
    parts = text[1:-1].rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    proc = node.procs.get(int(parts[1]))
    if proc is None or not proc.alive or repr(proc.pid) != text:
        return None
    return proc


def _status(proc: Process) -> Any:
    server = getattr(proc, "server", None)
    if server is None:
        return None
    try:
        return plain(server.format_status())
    except Exception as exc:  # a user's format_status must not break the observer
        return {"format_status failed": repr(exc)}


def process_info(node: Node, text: Any) -> dict[str, Any] | None:
    """What the observer shows about one process.

    Args:
        node: the local node.
        text: the pid's text (``"<0.12.0>"``) or the pid.

    Returns:
        ``pid``, ``name``, ``kind``, ``class`` (the server's class), ``parent``,
        ``mailbox`` (messages queued), ``waiting`` (tasks parked in a
        receive or a call), ``links``, ``monitors`` (what it monitors),
        ``monitored_by``, ``trap_exit``, ``system`` (the observer will not
        kill it), ``state`` (its server's ``format_status``, plain); None if
        there is no such live process.
    """
    proc = _find(node, text)
    if proc is None:
        return None
    server = getattr(proc, "server", None)
    waiting = len(proc.waiters or ()) + len({id(w) for w in (proc.replies or {}).values()})
    return {
        "pid": repr(proc.pid),
        "name": plain(proc.name),
        "kind": kind_of(proc),
        "class": type(server).__name__ if server is not None else None,
        "parent": plain(proc.parent),
        "mailbox": len(proc.mailbox or ()),
        "waiting": waiting,
        "links": sorted(plain(p) for p in (proc.links or ())),
        "monitors": [plain(t) for t in (proc.monitors or {}).values()],
        "monitored_by": [plain(w) for w, _ in (proc.monitored_by or {}).values()],
        "trap_exit": proc.trap,
        "system": _name_of(proc) in SYSTEM_NAMES,
        "state": _status(proc),
    }


def sessions(node: Node) -> list[dict[str, Any]]:
    """Every session process (``observer_kind == "session"``) with its status.

    Args:
        node: the local node.

    Returns:
        ``[{"pid", "name", ...format_status()}]`` in pid order.
    """
    out = []
    for proc in node.alive_procs():
        if kind_of(proc) == "session":
            status = _status(proc)
            row = {"pid": repr(proc.pid), **(status if isinstance(status, dict) else {})}
            row["name"] = plain(row.get("name")) if row.get("name") is not None else \
                _name_of(proc)
            out.append(row)
    return out


def node_info(node: Node) -> dict[str, Any]:
    """The node's name, process count and connected nodes.

    Args:
        node: the local node.

    Returns:
        ``{"name", "processes", "connected", "hidden", "distributed"}``:
        ``connected`` the visible peers, ``hidden`` the hidden ones (such as
        an observer attached with ``otpy observer``).
    """
    dist = node.dist
    visible: list[str] = []
    hidden: list[str] = []
    for conn in list(dist.conns.values()) if dist is not None else []:
        if conn.up and conn.dc is not None:
            published = conn.dc.peer_flags & 0x01  # DFLAG_PUBLISHED
            (visible if published else hidden).append(conn.peer.name)
    return {"name": _node_name(node), "processes": len(node.procs),
            "connected": sorted(visible), "hidden": sorted(hidden),
            "distributed": dist is not None}


class _Subscribers:
    """The pids to forward events to, and the telemetry handler doing it."""

    def __init__(self, node: Node, me: Pid) -> None:
        self.node = node
        self.handler_id = ("otpy.observer", repr(me), id(self))  # unique per process
        self.pids: dict[Any, Pid] = {}  # monitor ref -> subscriber

    def add(self, ref: Any, pid: Pid) -> None:
        if not self.pids:
            telemetry.attach(self.handler_id, EVENTS, self.forward)
        self.pids[ref] = pid

    def remove(self, ref: Any) -> None:
        if self.pids.pop(ref, None) is not None and not self.pids:
            telemetry.detach(self.handler_id)

    def close(self) -> None:
        if self.pids:
            self.pids.clear()
            telemetry.detach(self.handler_id)

    def forward(self, event: tuple[str, ...], measurements: Mapping[str, Any],
                metadata: Mapping[str, Any]) -> None:
        md = {k: v for k, v in metadata.items() if k not in ("spec", "children")}
        message = (EVENT_TAG, ".".join(event), plain(measurements), plain(md))
        for pid in list(self.pids.values()):
            try:
                self.node.send(pid, message)
            except Exception:  # a connection being torn down: its Down follows
                logger.debug("observer: could not forward an event to %r", pid)


def _answer(node: Node, subs: _Subscribers, me: Process, request: Any) -> Any:
    if type(request) is not tuple or not request:
        return ("error", "unknown_request")
    op = request[0]
    op = op.name if isinstance(op, Atom) else op
    if op == "node" and len(request) == 1:
        return node_info(node)
    if op == "tree" and len(request) == 1:
        return tree(node)
    if op == "sessions" and len(request) == 1:
        return sessions(node)
    if op == "process" and len(request) == 2:
        return process_info(node, request[1])
    if op == "subscribe" and len(request) == 2 and type(request[1]) is Pid:
        subs.add(node.monitor(me, request[1]), request[1])
        return "ok"
    if op == "kill" and len(request) == 2:
        proc = _find(node, request[1])
        if proc is None:
            return ("error", "not_found")
        if _name_of(proc) in SYSTEM_NAMES or proc is me:
            return ("error", "system_process")
        logger.warning("observer: killing %r (%s) at the request of an observer", proc.pid,
                       proc.name or kind_of(proc), extra={
                           "otpy_report": "observer_kill", "otpy_pid": proc.pid})
        node.signal_exit(proc.pid, me.pid, KILL, link=False)
        return ("ok", repr(proc.pid))
    return ("error", "unknown_request")


async def backend() -> None:
    """The ``otpy_observer`` process body: answer the requests listed above, forever."""
    me = current()
    node = me.node
    subs = _Subscribers(node, me.pid)
    try:
        while True:
            msg = await receive()
            if type(msg) is tuple and len(msg) == 3 and msg[0] is GEN_CALL:
                try:
                    answer = _answer(node, subs, me, msg[2])
                except Exception as exc:  # never die on a request
                    logger.exception("observer: request %r failed", msg[2])
                    answer = ("error", repr(exc))
                reply(msg[1], answer)
            elif type(msg) is Down:
                subs.remove(msg.ref)
    finally:
        subs.close()


def ensure_backend(node: Node) -> Pid:
    """The node's ``otpy_observer`` process, started now if it has none.

    Args:
        node: the local node.

    Returns:
        Its pid.
    """
    pid = node.names.get(NAME)
    if pid is not None and node.local(pid) is not None:
        return pid
    pid, _ = node.spawn(backend, (), name=NAME)
    return pid
