"""Global names across connected otpy nodes (``otpy.Global``).

Every distributed node keeps a replica of the table ``name -> pid`` and runs a
system process, ``otpy_global``, that keeps replicas in step:

* registering checks the local replica, takes the name at once and tells
  every connected node (``register``); unregistering and the holder's exit do
  the same (``unregister``);
* when a connection comes up, both sides send the names their own processes
  hold (``sync``) — this is how a healed partition is noticed; `otpy.connect`
  also swaps them as a call and returns once the peer's names are known here;
* when a connection is lost, the names held on that node are dropped.

Two holders of one name (two nodes registered it while partitioned, or at
the same moment) are resolved the same way on every node, without another
round of messages: the holder on the node whose name sorts first keeps the
name (ties: the lower pid id); the other holder is killed with
``exit(Pid, kill)`` by its own node, as Erlang's default resolver
(``global:random_exit_name``) does, and the conflict is logged.

This is eventual consistency without global locks: cheaper than Erlang's
``global`` (no lock round trips) and with the same end state. Erlang nodes
do not take part (their ``global`` speaks another protocol).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from otpy._process import Process, receive
from otpy._reasons import KILL, ExitReason
from otpy._terms import Atom, Pid

if TYPE_CHECKING:
    from otpy._node import Node

__all__ = ["GlobalNames"]

logger = logging.getLogger("otpy.global")
SERVER = "otpy_global"
_REGISTER = Atom("register")
_UNREGISTER = Atom("unregister")
_SYNC = Atom("sync")
_GEN_CALL = Atom("$gen_call")
_WHEREIS = Atom("whereis")


def _rank(pid: Pid) -> tuple[str, int, int]:
    return (pid.node.name, pid.id, pid.serial)


class GlobalNames:
    """The replicated global name table of one node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.table: dict[Any, Pid] = {}

    # ---------------------------------------------------- local operations

    def whereis(self, name: Any) -> Pid | None:
        """The holder of ``name`` on any connected node."""
        return self.table.get(name)

    def register(self, name: Any, pid: Pid) -> bool:
        """Take ``name`` for the local process ``pid`` and tell the other nodes.

        Returns:
            False if the name is held already.
        """
        if name in self.table:
            return False
        proc = self.node.local(pid)
        if proc is None:
            return False
        self.table[name] = pid
        self._watch(proc, name)
        self._broadcast((_REGISTER, name, pid))
        return True

    def unregister(self, name: Any) -> None:
        """Release ``name`` (only if a local process holds it)."""
        pid = self.table.get(name)
        if pid is not None and pid.node is self.node.name:
            del self.table[name]
            self._broadcast((_UNREGISTER, name, pid))

    def _watch(self, proc: Process, name: Any) -> None:
        def drop(p: Process, reason: ExitReason) -> None:
            if self.table.get(name) == p.pid:
                del self.table[name]
                self._broadcast((_UNREGISTER, name, p.pid))

        if proc.cleanups is None:
            proc.cleanups = [drop]
        else:
            proc.cleanups.append(drop)

    # --------------------------------------------------- between the nodes

    def _broadcast(self, message: Any) -> None:
        dist = self.node.dist
        if dist is None:
            return
        for peer in dist.connected_nodes():
            dist.send_named(SERVER, peer, message)

    def connection_up(self, peer: str) -> None:
        """Send the peer the names our processes hold."""
        dist = self.node.dist
        own = {n: p for n, p in self.table.items() if p.node is self.node.name}
        if dist is not None:
            dist.send_named(SERVER, peer, (_SYNC, own))

    async def exchange(self, peer: str, timeout: float) -> None:
        """Swap names with ``peer``'s ``otpy_global`` and wait for its answer, so
        that `otpy.connect` returns with the peer's global names known here
        (Erlang's ``global:sync/0``). Called by the connecting process; a BEAM
        peer has no ``otpy_global`` and answers at once with ``noproc``.

        Args:
            peer: the connected node.
            timeout: seconds to wait for the answer.
        """
        from otpy._genserver import call
        from otpy._reasons import CallError

        own = {n: p for n, p in self.table.items() if p.node is self.node.name}
        try:
            theirs = await call((SERVER, peer), (_SYNC, own), timeout)
        except CallError:
            return
        if isinstance(theirs, dict):
            for name, pid in theirs.items():
                if isinstance(pid, Pid):
                    self._claim(name, pid)

    def connection_down(self, peer: str) -> None:
        """Forget the names held on a node we lost."""
        for name in [n for n, p in self.table.items() if p.node.name == peer]:
            del self.table[name]

    def _claim(self, name: Any, pid: Pid) -> None:
        current = self.table.get(name)
        if current is None or current == pid:
            self.table[name] = pid
            return
        winner, loser = sorted((current, pid), key=_rank)
        self.table[name] = winner
        logger.warning("global name %r was held twice (%r, %r); %r keeps it", name, current,
                       pid, winner)
        if loser.node is self.node.name:
            self.node.signal_exit(loser, self.node.init_pid, KILL, link=False)

    def handle(self, message: Any) -> None:
        """Apply a message from another node's ``otpy_global``."""
        if type(message) is not tuple or not message:
            return
        kind = message[0]
        if kind is _REGISTER and len(message) == 3:
            self._claim(message[1], message[2])
        elif kind is _UNREGISTER and len(message) == 3:
            if self.table.get(message[1]) == message[2]:
                del self.table[message[1]]
        elif kind is _SYNC and len(message) == 2 and isinstance(message[1], dict):
            for name, pid in message[1].items():
                if isinstance(pid, Pid):
                    self._claim(name, pid)
        elif kind is _GEN_CALL and len(message) == 3:
            self._answer(message[1], message[2])

    def _answer(self, caller: Any, request: Any) -> None:
        """``gen_server:call({otpy_global, Node}, {whereis, Name})`` from any node
        (a BEAM node's ``global`` does not see otpy's names): the pid or
        ``undefined``. A name sent as an atom also finds a str name."""
        from otpy._genserver import reply

        if not (type(caller) is tuple and len(caller) == 2 and isinstance(caller[0], Pid)):
            return
        if type(request) is tuple and len(request) == 2 and request[0] is _SYNC \
                and isinstance(request[1], dict):
            for name, pid in request[1].items():
                if isinstance(pid, Pid):
                    self._claim(name, pid)
            reply(caller, {n: p for n, p in self.table.items() if p.node is self.node.name})
        elif type(request) is tuple and len(request) == 2 and request[0] is _WHEREIS:
            name = request[1]
            pid = self.table.get(name)
            if pid is None and type(name) is Atom:
                pid = self.table.get(name.name)
            reply(caller, pid)
        else:
            reply(caller, (Atom("error"), Atom("badarg")))

    async def serve(self) -> None:
        """The body of the ``otpy_global`` system process."""
        while True:
            self.handle(await receive())
