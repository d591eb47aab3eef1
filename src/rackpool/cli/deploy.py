"""``rackpool deploy INVENTORY``: put the racks of an inventory onto their hosts with Ansible.

Validates the inventory, renders every daemon's config through its typed model, writes
Ansible's inventory into the deploy state dir and runs the playbooks kept in the package
(``site.yml``, ``upgrade.yml``, ``rollback.yml``). docs/deploy.md.
"""

from __future__ import annotations

import argparse
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from rackpool.deploy.run import DeployOptions, deploy

    opts = DeployOptions(
        inventory=args.inventory,
        state_dir=args.state_dir,
        check=args.check,
        upgrade=args.upgrade,
        version=args.version,
        batch=args.batch,
        drain=args.drain,
        rollback=args.rollback,
        json=args.json,
        verbose=args.verbose,
        limit=args.limit,
    )
    return deploy(opts)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "deploy",
        help="deploy (or upgrade, roll back) the racks of an inventory with Ansible",
        description="Converge every host of INVENTORY (rackpool's inventory.yaml): versioned "
        "virtualenv, configs, systemd units, health checks. docs/deploy.md.",
    )
    p.add_argument("inventory", metavar="INVENTORY", help="inventory.yaml")
    p.add_argument("--check", action="store_true", help="show what would change (check + diff)")
    p.add_argument("--upgrade", action="store_true", help="rolling upgrade to the version")
    p.add_argument("--version", help="rackpool version to run (default: the inventory's)")
    p.add_argument(
        "--batch", type=int, default=1, metavar="N", help="compute hosts per upgrade batch (1)"
    )
    p.add_argument(
        "--drain", action="store_true", help="drain each host before upgrading it (maintenance)"
    )
    p.add_argument("--rollback", action="store_true", help="return hosts to the previous version")
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="deploy state: secrets, Ansible inventory, wheels (default: ./deploy-state "
        "next to the inventory, or $RACKPOOL_DEPLOY_STATE)",
    )
    p.add_argument("--limit", metavar="HOSTS", help="only these Ansible hosts (ansible --limit)")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more Ansible output")
    p.set_defaults(handler=_run)
