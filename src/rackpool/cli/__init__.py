"""The ``rackpool`` command: thin argparse front-ends that build settings and call ``run()``.

Each part's commands live in their own module exposing ``register(subparsers)``;
a handler returns an exit code. Errors from rackpool are printed without traceback.
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


class UsageError(RackpoolError):
    code = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rackpool",
        description="Bare-metal racks as a small cloud, feeding a CI node pool.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
