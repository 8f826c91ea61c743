"""The ``claudecode`` console command.

Subcommands:

* ``claudecode install-cli [--version V] [--force]`` — install the pinned
  Claude Code CLI from npm into the user cache and print its path.
* ``claudecode uninstall-cli [--version V | --all]`` — remove installed copies.
* ``claudecode cli-path [--cli-path P] [--show-version]`` — print the
  executable a session would run (see :func:`claudecode._install.resolve_cli`).

Each subcommand is one ``_cmd_*`` function registered in :func:`build_parser`;
``sandbox`` runs a node hosting the CLI processes of remote sessions
(:func:`claudecode.sandbox.serve`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from claudecode._errors import ClaudeCodeError
from claudecode._install import (
    PINNED_CLI_VERSION,
    cli_version,
    install_cli,
    resolve_cli,
    uninstall_cli,
)

_Handler = Callable[[argparse.Namespace], int]


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _cmd_install(args: argparse.Namespace) -> int:
    result = install_cli(args.version, force=args.force, log=_err)
    print(result.path)
    return 0


def _cmd_uninstall(args: argparse.Namespace) -> int:
    removed = uninstall_cli(None if args.all else args.version)
    for path in removed:
        print(f"removed {path}")
    if not removed:
        _err("nothing to remove")
    return 0


def _cmd_cli_path(args: argparse.Namespace) -> int:
    path = resolve_cli(args.cli_path)
    if args.show_version:
        print(f"{path} {cli_version(path)}")
    else:
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``claudecode`` command.

    Returns:
        The parser; each subparser stores its handler in ``handler``.
    """
    parser = argparse.ArgumentParser(
        prog="claudecode", description="Claude Code sessions on otpy: CLI management."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("install-cli", help="install the pinned Claude Code CLI from npm")
    p.add_argument(
        "--version", default=PINNED_CLI_VERSION, help=f"CLI version (default {PINNED_CLI_VERSION})"
    )
    p.add_argument("--force", action="store_true", help="reinstall even if present")
    p.set_defaults(handler=_cmd_install)

    p = sub.add_parser("uninstall-cli", help="remove installed CLI copies from the cache")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--version", default=PINNED_CLI_VERSION, help="version to remove")
    group.add_argument("--all", action="store_true", help="remove every installed version")
    p.set_defaults(handler=_cmd_uninstall)

    p = sub.add_parser("cli-path", help="print the CLI executable sessions would use")
    p.add_argument("--cli-path", default=None, help="explicit path, 'bundled' or 'global'")
    p.add_argument("--show-version", action="store_true", help="also run it to print its version")
    p.set_defaults(handler=_cmd_cli_path)

    p = sub.add_parser(
        "sandbox",
        help="run a sandbox node that hosts the CLI processes of remote sessions",
        description="Run an otpy node that hosts Claude Code CLI processes for sessions on "
        "other nodes (claudecode.adapters.Node). Stops on SIGTERM, shutting its CLIs down.",
    )
    p.add_argument("--name", required=True, help="node name, e.g. claude@sandbox1")
    p.add_argument("--workspace-root", required=True,
                   help="directory every session's cwd must lie in (symlinks resolved)")
    p.add_argument("--cookie-file", help="file holding the distribution cookie, readable by "
                   "its owner only (default: $OTPY_COOKIE, else ~/.erlang.cookie)")
    p.add_argument("--cli-path", default=None,
                   help="the CLI executable sessions run (default: the pinned install, then "
                   "claude on PATH); callers cannot choose another")
    p.add_argument("--allow-env", action="append", default=[], metavar="NAME",
                   help="an environment variable callers may set, beyond the default list "
                   "(repeatable; PATH, LD_*, NODE_OPTIONS and the like are never allowed)")
    p.add_argument("--allow-hook", action="append", default=[], metavar="MODULE:FUNCTION",
                   help="a where='remote' hook callers may use (or MODULE:* for its __all__; "
                   "repeatable)")
    p.add_argument("--allow-cli-flag", action="append", default=[], metavar="--FLAG",
                   help="a CLI flag callers may pass beyond the session options' (extra_args; "
                   "write it --allow-cli-flag=--FLAG; repeatable)")
    p.add_argument("--epmd-port", type=int, help="EPMD port (default $ERL_EPMD_PORT or 4369)")
    p.add_argument("--listen-host", default="0.0.0.0",
                   help="interface for distribution connections (default all)")
    p.add_argument("--net-ticktime", type=float, default=60.0,
                   help="seconds of silence before a peer counts as gone")
    p.add_argument("--install", action="store_true",
                   help="install the pinned CLI at start-up if none is found")
    p.add_argument("--max-clis", type=_positive_int, default=None, metavar="N",
                   help="run at most N CLIs at once: idle sessions hibernate, others wait "
                   "(a CLI budget; Pool placement prefers sandboxes with room)")
    p.add_argument("--tls-cert", help="TLS distribution: this node's certificate (PEM)")
    p.add_argument("--tls-key", help="TLS distribution: its private key (PEM)")
    p.add_argument("--tls-ca", help="TLS distribution: the CA that signs peers")
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    p.set_defaults(handler=_cmd_sandbox)
    return parser


def _cmd_sandbox(args: argparse.Namespace) -> int:
    import logging
    from typing import Any

    import otpy
    from claudecode.sandbox import SandboxPolicyError, serve
    from otpy.dist._cookie import CookieError, default_cookie, read_cookie_file

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        # --cookie-file, else $OTPY_COOKIE, else ~/.erlang.cookie: as erl, refused
        # when empty or blank, or when the file is readable by group or others.
        cookie = read_cookie_file(args.cookie_file) if args.cookie_file else default_cookie()
    except (CookieError, OSError) as exc:
        _err(f"claudecode: error: {exc}")
        return 2
    options: dict[str, Any] = {"net_ticktime": args.net_ticktime,
                               "listen_host": args.listen_host}
    if args.epmd_port:
        options["epmd_port"] = args.epmd_port
    if args.tls_cert or args.tls_key or args.tls_ca:
        if not (args.tls_cert and args.tls_key and args.tls_ca):
            _err("claudecode: error: --tls-cert, --tls-key and --tls-ca go together")
            return 2
        options["tls"] = otpy.TLSConfig(args.tls_cert, args.tls_key, args.tls_ca)
    try:
        serve(args.name, cookie, workspace_root=args.workspace_root, cli_path=args.cli_path,
              allow_env=args.allow_env, allow_hooks=args.allow_hook,
              allow_cli_flags=args.allow_cli_flag, install=args.install,
              max_clis=args.max_clis, **options)
    except SandboxPolicyError as exc:
        _err(f"claudecode: error: {exc}")
        return 2
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``claudecode`` command.

    Args:
        argv: arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The process exit status: 0 on success, 1 on a ``claudecode`` error
        (its message is printed to stderr), 2 on a usage error.
    """
    args = build_parser().parse_args(argv)
    handler: _Handler = args.handler
    try:
        return handler(args)
    except ClaudeCodeError as exc:
        _err(f"claudecode: error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
