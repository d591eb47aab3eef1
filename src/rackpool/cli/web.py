"""``rackpool web serve --config web.yaml``: the public, read-only dashboard."""

from __future__ import annotations

import argparse
import os
from typing import Any

from rackpool.core.config import load_model
from rackpool.web.config import WebConfig

STATE_ENV = "RACKPOOL_STATE_DIR"


def _serve(args: argparse.Namespace) -> int:
    from rackpool.web.serve import run

    config = load_model(args.config, WebConfig)
    state_dir = args.state_dir or os.environ.get(STATE_ENV)
    if state_dir and not config.state_dir:
        config = config.model_copy(update={"state_dir": state_dir})
    return run(config)


def register(sub: Any) -> None:
    web = sub.add_parser("web", help="the public, read-only dashboard")
    wsub = web.add_subparsers(dest="web_command", metavar="ACTION", required=True)
    serve = wsub.add_parser("serve", help="serve the dashboard")
    serve.add_argument("--config", required=True, metavar="FILE", help="web.yaml")
    serve.add_argument(
        "--state-dir", help="find pool.json/ops.json here, write web.json (URL) here"
    )
    serve.set_defaults(handler=_serve)
