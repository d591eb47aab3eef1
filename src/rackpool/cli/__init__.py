"""The ``rackpool`` command: thin argparse front-ends that build settings and call ``run()``.

Each part's commands live in their own module exposing ``register(subparsers)``;
a handler returns an exit code. Errors from rackpool are printed without traceback.

Only the module of the command being run is imported (``rackpool pool serve`` does not
load the region controller, the ops index or ``up``): a daemon's start-up time is
its own. Help, no command or an unknown one loads them all, as before.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rackpool.core.errors import RackpoolError

# Modules that contribute sub-commands; each defines register(subparsers).
COMMAND_MODULES = (
    "rackpool.cli.cloud",
    "rackpool.cli.config",
    "rackpool.cli.agent",
    "rackpool.cli.pool",
    "rackpool.cli.ops",
    "rackpool.cli.up",
    "rackpool.cli.down",
)
# The top-level commands each module registers, so running one imports only its module.
# A command missing here still works: it is found by loading every module.
COMMANDS = {
    "cloud": "rackpool.cli.cloud",
    "config": "rackpool.cli.config",
    "agent": "rackpool.cli.agent",
    "pool": "rackpool.cli.pool",
    "node": "rackpool.cli.pool",
    "provider": "rackpool.cli.pool",
    "ops": "rackpool.cli.ops",
    "logs": "rackpool.cli.ops",
    "bugs": "rackpool.cli.ops",
    "up": "rackpool.cli.up",
    "down": "rackpool.cli.down",
}


class UsageError(RackpoolError):
    code = 2


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: with only its command's module when that is known."""
    parser = argparse.ArgumentParser(
        prog="rackpool",
        description="Bare-metal racks as a small cloud, feeding a CI node pool.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    only = COMMANDS.get(argv[0]) if argv else None
    for name in (only,) if only else COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except RackpoolError as exc:
        print(f"rackpool: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
