"""``rackpool down``: remove what ``rackpool up`` left on this machine.

Stopping ``rackpool up`` (Ctrl-C, SIGTERM) stops its daemons but, like any agent
restart or upgrade, leaves instances running so the next ``up`` on the same state
directory adopts them. ``rackpool down --state-dir DIR`` removes them for good: every
container instance of every agent in ``DIR/agents/`` (processes, cgroups, mounts,
namespaces, veths), the hosts' bridges and the region switches. With ``--purge`` it
also deletes DIR. It refuses while ``rackpool up`` still runs on DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

from rackpool.agent.config import AgentConfig
from rackpool.agent.hostnet import remove_host_network
from rackpool.agent.teardown import remove_container_host
from rackpool.core.config import load_model
from rackpool.core.errors import ConfigError

STATE_ENV = "RACKPOOL_STATE_DIR"
UP_PID_FILE = "up.json"


def running_up(state: Path) -> int | None:
    """PID of a live ``rackpool up`` on ``state``, from its ``up.json``; None if none."""
    try:
        pid = int(json.loads((state / UP_PID_FILE).read_text())["pid"])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if b"rackpool" in cmdline and b"up" in cmdline else None


def down(state: Path, purge: bool = False) -> dict[str, Any]:
    if not state.is_dir():
        raise ConfigError(f"{state}: no such state directory (give --state-dir DIR of rackpool up)")
    pid = running_up(state)
    if pid is not None:
        raise ConfigError(
            f"rackpool up (pid {pid}) is still running on {state}; stop it first "
            f"(Ctrl-C, or kill -TERM {pid}), then run rackpool down again"
        )
    configs = [load_model(p, AgentConfig) for p in sorted((state / "agents").glob("*.yaml"))]
    containers = [c for c in configs if c.driver == "container"]
    if containers and os.geteuid() != 0:
        raise ConfigError("removing container instances needs root; run rackpool down as root")
    removed = sum(remove_container_host(cfg) for cfg in containers)
    for switch in sorted({c.network.switch for c in containers if c.network.switch}):
        remove_host_network(switch)
    if purge:
        shutil.rmtree(state)
    return {"instances_removed": removed, "hosts": len(containers), "purged": purge}


def _run(args: argparse.Namespace) -> int:
    state = Path(args.state_dir or os.environ.get(STATE_ENV) or "state").resolve()
    result = down(state, purge=args.purge)
    print(
        f"rackpool down: removed {result['instances_removed']} instance(s) on "
        f"{result['hosts']} host(s)" + (f"; deleted {state}" if args.purge else ""),
        flush=True,
    )
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("down", help="remove the instances and networks rackpool up left behind")
    p.add_argument(
        "--state-dir", help=f"the state dir of rackpool up (default ${STATE_ENV} or ./state)"
    )
    p.add_argument("--purge", action="store_true", help="also delete the state directory")
    p.set_defaults(handler=_run)
