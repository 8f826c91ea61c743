"""The ``otpy`` command: ``otpy observer`` attaches the observer page to a running node.

    otpy observer --node app@myhost --cookie-file ~/.erlang.cookie [--port 8000]

starts a *hidden* node (it does not appear in the target's ``nodes()`` and
makes no other connection), connects to ``--node`` with the cookie read from
``--cookie-file``, and serves the observer page for that node on
127.0.0.1 until SIGINT or SIGTERM. Binding another address (``--host``)
requires a token (``--token-file``, or ``$OTPY_OBSERVER_TOKEN``); the
printed address then carries it once. See docs/otpy/observer.md.
"""

from __future__ import annotations

import argparse
import functools
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import trio

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otpy", description="otpy command-line tools")
    commands = parser.add_subparsers(dest="command", required=True)
    obs = commands.add_parser(
        "observer", help="serve the observer page of a running node",
        description="Attach to a running node as a hidden node and serve its observer page.")
    obs.add_argument("--node", required=True, help="the node to observe, name@host")
    obs.add_argument("--cookie-file", required=True, type=Path,
                     help="a file holding the distribution cookie")
    obs.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    obs.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    obs.add_argument("--token-file", type=Path, default=None,
                     help="a file holding the page's access token (required off loopback)")
    obs.add_argument("--name", default=None,
                     help="this observer node's name (default otpy_observer_<pid>@<host>)")
    obs.add_argument("--epmd-port", type=int, default=None, help="EPMD port of the target")
    return parser


def _read(path: Path, what: str) -> str:
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise SystemExit(f"otpy observer: cannot read the {what} file {path}: {exc}") from None
    if not value:
        raise SystemExit(f"otpy observer: the {what} file {path} is empty")
    return value


async def _observe(args: argparse.Namespace, token: str | None) -> None:
    import otpy
    from otpy.observer import serve
    from otpy.observer._backend import NAME
    from otpy.web import until_signalled

    if not await otpy.connect(args.node):
        print(f"otpy observer: cannot connect to {args.node} (is it running, is the cookie "
              "right?)", file=sys.stderr, flush=True)
        raise SystemExit(2)
    try:
        await otpy.call((NAME, args.node), ("node",), 10)
    except otpy.CallError as err:
        print(f"otpy observer: {args.node} does not answer the observer ({err.reason!r}); "
              "was it started with observer=False?", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(
            functools.partial(serve, args.host, args.port, node=args.node, token=token))
        suffix = f"/?token={token}" if token else "/"
        for url in urls:
            print(f"observing {args.node} at {url}{suffix}", flush=True)
        await until_signalled()
        nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> None:
    """Run the ``otpy`` command.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
    """
    args = _parser().parse_args(argv)
    import otpy
    from otpy.observer._web import is_loopback

    cookie = _read(args.cookie_file, "cookie")
    token: str | None = None
    if args.token_file is not None:
        token = _read(args.token_file, "token")
    elif os.environ.get("OTPY_OBSERVER_TOKEN"):
        token = os.environ["OTPY_OBSERVER_TOKEN"]
    if not is_loopback(args.host) and token is None:
        raise SystemExit(f"otpy observer: binding {args.host} (not loopback) requires a token "
                         "(--token-file or $OTPY_OBSERVER_TOKEN)")
    if "@" not in args.node:
        raise SystemExit(f"otpy observer: --node is name@host, not {args.node!r}")
    name = args.name or f"otpy_observer_{os.getpid()}_{secrets.token_hex(2)}@" \
        f"{args.node.split('@', 1)[1]}"
    options: dict[str, Any] = {"hidden": True, "shutdown_timeout": 2.0, "observer": False}
    if args.epmd_port is not None:
        options["epmd_port"] = args.epmd_port
    otpy.run(_observe, args, token, node=name, cookie=cookie, **options)


if __name__ == "__main__":
    main()
