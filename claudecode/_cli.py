"""The ``claudecode`` console command.

Subcommands:

* ``claudecode install-cli [--version V] [--force]`` — install the pinned
  Claude Code CLI from npm into the user cache and print its path.
* ``claudecode uninstall-cli [--version V | --all]`` — remove installed copies.
* ``claudecode cli-path [--cli-path P] [--show-version]`` — print the
  executable a session would run (see :func:`claudecode._install.resolve_cli`).

Each subcommand is one ``_cmd_*`` function registered in :func:`build_parser`;
new subcommands (e.g. a future ``sandbox`` that starts a remote CLI node) are
added the same way.
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

    # Future: `sandbox` (run a CLI node for claudecode.adapters.Node) is registered here.
    return parser


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
