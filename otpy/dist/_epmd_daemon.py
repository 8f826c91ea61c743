"""otpy's EPMD as a daemon of its own: ``python -m otpy.dist._epmd_daemon --port P``.

A node that needs an EPMD and finds none starts one that outlives it, as
``erl`` does with ``epmd -daemon``: other nodes registered there stay
findable when the node that started it stops. `start_daemon` prefers the
system ``epmd`` (from the Erlang packages); without one it starts this
module, which detaches (a new session, reparented to init) and serves
until killed, on loopback unless ``--address`` (or ``$ERL_EPMD_ADDRESS``)
names other addresses.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys

import trio

from otpy.dist._epmd_io import serve_epmd

__all__ = ["main", "start_daemon"]


def _command(port: int) -> list[str]:
    system = shutil.which("epmd")
    if system is not None:
        return [system, "-daemon", "-port", str(port)]
    return [sys.executable, "-m", "otpy.dist._epmd_daemon", "--port", str(port), "--detach"]


async def start_daemon(port: int) -> list[str]:
    """Start an EPMD daemon on ``port`` and return when it has detached.

    It is a separate process in its own session: it outlives the caller.
    The caller checks that it answers.

    Args:
        port: the EPMD port.

    Returns:
        The command that was run (the system ``epmd -daemon``, else ours).

    Raises:
        OSError: it could not be started.
    """
    cmd = _command(port)
    # Both forms fork the daemon and exit at once; wait for that first process.
    await trio.run_process(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True, check=False)
    return cmd


async def _serve(port: int, addresses: list[str]) -> None:
    async with trio.open_nursery() as nursery:
        for address in addresses:
            await nursery.start(functools.partial(serve_epmd, host=address), port)


def _detach() -> None:
    """Fork; the parent exits, the child goes on in a new session (a daemon)."""
    if os.fork():
        os._exit(0)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    os.chdir("/")


def main(argv: list[str] | None = None) -> None:
    """Run the daemon (the command line of this module).

    Args:
        argv: ``--port P [--address A,B] [--detach]``.
    """
    parser = argparse.ArgumentParser(prog="python -m otpy.dist._epmd_daemon")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--address", default=os.environ.get("ERL_EPMD_ADDRESS") or "127.0.0.1",
                        help="comma-separated addresses to listen on (default loopback)")
    parser.add_argument("--detach", action="store_true", help="fork into the background")
    args = parser.parse_args(argv)
    addresses = [a.strip() for a in args.address.split(",") if a.strip()]
    if args.detach:
        _detach()
    try:
        trio.run(_serve, args.port, addresses)
    except OSError:  # the port is taken (another EPMD won the race): nothing to do
        sys.exit(1)


if __name__ == "__main__":
    main()
