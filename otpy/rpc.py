"""Remote procedure calls: ``otpy.rpc.call`` / ``cast`` (see `otpy.dist.rpc`)."""

from otpy.dist.rpc import RPCError, call, cast

__all__ = ["RPCError", "call", "cast"]
