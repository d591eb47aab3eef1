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
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from rackpool.core.errors import RackpoolError, TemporaryError

# Modules that contribute sub-commands; each defines register(subparsers).
COMMAND_MODULES = (
    "rackpool.cli.cloud",
    "rackpool.cli.config",
    "rackpool.cli.agent",
    "rackpool.cli.pool",
    "rackpool.cli.ops",
    "rackpool.cli.up",
    "rackpool.cli.down",
    "rackpool.cli.web",
    "rackpool.cli.image",
    "rackpool.cli.deploy",
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
    "web": "rackpool.cli.web",
    "image": "rackpool.cli.image",
    "deploy": "rackpool.cli.deploy",
}


PRIVATE_UMASK = 0o077


class UsageError(RackpoolError):
    code = 2


class _Parser(argparse.ArgumentParser):
    """Nonsense arguments: one line on stderr and exit 2 (argparse prints the usage too).
    Sub-command parsers are made of the same class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"rackpool: error: {message} (see: {self.prog} --help)\n")


def _one_line(exc: BaseException) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def _exit_code(exc: RackpoolError) -> int:
    """2 for what the caller must fix (arguments, files, input); 1 for the rest."""
    return 1 if isinstance(exc, TemporaryError) or exc.code >= 500 else 2


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: with only its command's module when that is known."""
    parser = _Parser(
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
        parser.error("give a command")
    try:
        return int(handler(args) or 0)
    except RackpoolError as exc:
        print(f"rackpool: error: {_one_line(exc)}", file=sys.stderr)
        return _exit_code(exc)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one line, the traceback only on request
        if os.environ.get("RACKPOOL_DEBUG"):
            raise
        print(
            f"rackpool: error: {type(exc).__name__}: {_one_line(exc)} "
            "(RACKPOOL_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


def entry() -> None:
    """The ``rackpool`` program: :func:`main` in a process of its own.

    State files (databases, secrets, keys, configs, logs, the index) are private from
    the moment they exist: 0600 files, 0700 directories, never a chmod later. The umask
    is the process's, so it is set here and not in :func:`main`, which tests call.
    """
    os.umask(PRIVATE_UMASK)
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
