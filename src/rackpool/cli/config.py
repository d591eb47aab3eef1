"""``rackpool config validate FILE``: check any rackpool config file, report every problem."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from rackpool.core.config import parse_model, read_yaml
from rackpool.core.errors import ConfigError

# kind -> (module, model class name, top-level keys that identify the kind)
KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "region": ("rackpool.cloud.config", "RegionConfig", ("region",)),
    "agent": ("rackpool.agent.config", "AgentConfig", ("controller",)),
    "pool": ("rackpool.pool.config", "PoolConfig", ("providers", "labels")),
    "ops": ("rackpool.ops.config", "OpsConfig", ("index",)),
    # before web: an inventory has regions: too, and always a version:
    "inventory": ("rackpool.deploy.inventory", "Inventory", ("version",)),
    "web": ("rackpool.web.config", "WebConfig", ("regions", "refresh")),
    # after inventory and web, which may have an ops: section too
    "shipper": ("rackpool.ops.config", "ShipConfig", ("ops",)),
}


def detect_kind(data: Any) -> str | None:
    if isinstance(data, dict):
        if isinstance(data.get("kind"), str) and data["kind"] in KINDS:
            return str(data["kind"])
        for kind, (_, _, keys) in KINDS.items():
            if any(k in data for k in keys):
                return kind
    return None


def validate(path: str, kind: str | None) -> str:
    data = read_yaml(path)
    kind = kind or detect_kind(data)
    if kind is None:
        raise ConfigError(
            f"{path}: cannot tell what kind of config this is; "
            f"pass --kind ({', '.join(KINDS)}) or add 'kind: <kind>' at the top"
        )
    module_name, cls_name, _ = KINDS[kind]
    model = getattr(importlib.import_module(module_name), cls_name)
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "kind"}
    parse_model(data, model, path)
    return kind


def _run(args: argparse.Namespace) -> int:
    """0 if every file is valid; 1 if some config has problems (listed on stdout, each
    with its YAML path); 2 if some file is not a readable config at all (stderr)."""
    invalid = unreadable = 0
    for path in args.files:
        try:
            kind = validate(path, args.kind)
        except ConfigError as exc:
            if exc.problems:
                invalid += 1
                print(f"rackpool: error: {exc}")
            else:
                unreadable += 1
                print(f"rackpool: error: {exc}", file=sys.stderr)
            continue
        print(f"{path}: valid {kind} config")
    return 2 if unreadable else 1 if invalid else 0


def register(sub: Any) -> None:
    cfg = sub.add_parser("config", help="config file tools")
    csub = cfg.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    v = csub.add_parser("validate", help="validate config files; every error names its YAML path")
    v.add_argument("files", nargs="+", metavar="FILE")
    v.add_argument("--kind", choices=sorted(KINDS), help="config kind (default: detect)")
    v.set_defaults(handler=_run)
