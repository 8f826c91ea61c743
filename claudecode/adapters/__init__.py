"""Adapters: how a session reaches a Claude Code CLI.

* :class:`Port` (the default) runs the CLI as a local subprocess.
* :class:`Node` runs it on a sandbox node (``claudecode sandbox``) over
  Erlang distribution; the session stays local.
* :class:`Pool` places each session on the least-loaded live sandbox.
* :class:`Adapter` is the base class; see :mod:`claudecode.adapters._base`
  for the message protocol between a session and its adapter process, which
  lets an adapter run the CLI on another node.
"""

from claudecode.adapters._base import ADAPTER_TAG, Adapter, ControlHandler
from claudecode.adapters._node import Node, Pool
from claudecode.adapters._port import Port

__all__ = ["ADAPTER_TAG", "Adapter", "ControlHandler", "Node", "Pool", "Port"]
