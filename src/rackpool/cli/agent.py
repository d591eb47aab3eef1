"""``rackpool agent --config agent.yaml``: run the host agent until SIGTERM/SIGINT.

Stopping the agent leaves its instances running; the next start adopts them.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys
from pathlib import Path
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from rackpool.agent.config import AgentConfig
    from rackpool.agent.daemon import Agent
    from rackpool.core.config import load_model
    from rackpool.core.logs import setup_logging

    config = load_model(args.config, AgentConfig)
    # Instances' root filesystems are assembled under the state dir and must keep their
    # images' modes (a 0700 /etc breaks every non-root user in a guest); the state dir
    # itself is 0700, which keeps all of it private.
    os.umask(0o022)
    Path(config.state_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    as_json = args.log_format == "json" or (args.log_format == "auto" and not sys.stderr.isatty())
    setup_logging(
        "agent",
        json=as_json or bool(args.log_file),
        path=args.log_file,
        level=args.log_level,
        context={"host": config.host.name},
    )
    faulthandler.register(signal.SIGUSR2, all_threads=True)
    agent = Agent(config)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    signal.signal(signal.SIGINT, lambda *_: agent.stop())
    try:
        agent.run()
    finally:
        agent.close()
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("agent", help="run the host agent (registers with its region controller)")
    p.add_argument("--config", required=True, metavar="FILE", help="agent YAML config")
    p.add_argument("--log-format", choices=["auto", "json", "text"], default="auto")
    p.add_argument("--log-file", metavar="PATH", help="append JSON log lines to PATH")
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(handler=_run)
