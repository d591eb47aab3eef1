"""``rackpool cloud serve`` and ``rackpool cloud admin …`` (direct database administration,
like keystone-manage / nova-manage: works whether or not the controller runs)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from rackpool.cloud.config import RegionConfig, load_region_config
from rackpool.core.clock import Timeout, iterate_timeout
from rackpool.core.errors import BadRequest, TemporaryError


def _setup_logging(args: argparse.Namespace, config: RegionConfig) -> None:
    from rackpool.core.logs import setup_logging

    as_json = args.log_format == "json" or (args.log_format == "auto" and not sys.stderr.isatty())
    setup_logging(
        "cloud",
        json=as_json or bool(args.log_file),
        path=args.log_file,
        level=args.log_level,
        context={"region": config.region},
    )


def _serve(args: argparse.Namespace) -> int:
    from rackpool.cloud import serve

    config = load_region_config(args.config)
    _setup_logging(args, config)
    serve.run(config, ready_file=args.ready_file, reuse_port=args.reuse_port)
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        value = sys.stdin.readline().rstrip("\n")
    else:
        value = args.password or os.environ.get("RACKPOOL_PASSWORD", "")
    if not value:
        raise BadRequest(
            "no password given: use --password-stdin, set RACKPOOL_PASSWORD, or --password"
        )
    return value


def _admin(args: argparse.Namespace) -> int:
    from rackpool.cloud.region import Region

    config = load_region_config(args.config)
    region = Region.open(config)
    try:
        result = _admin_action(region, args)
    finally:
        region.close()
    if result is not None:
        print(json.dumps(result, indent=2, default=str))
    return 0


def _drain(region: Any, name: str, wait: float) -> Any:
    """Disable ``name``; with ``wait``, poll until none of its instances remain."""
    host = region.hosts.set_enabled(name, False, reason="drain by admin CLI")
    if wait <= 0 or host["instances"] == 0:
        return host
    try:
        for _ in iterate_timeout(wait, f"host {name} to drain", interval=0.5):
            host = region.hosts.host_view(name)
            if host["instances"] == 0:
                return host
    except Timeout:
        raise TemporaryError(
            f"host {name} still has {host['instances']} instance(s) after {wait:g}s; it stays "
            "disabled: wait longer, or delete its instances"
        ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _admin_action(region: Any, args: argparse.Namespace) -> Any:
    what, action = args.what, args.action
    if what == "project" and action == "create":
        pid = region.identity.create_project(args.name, args.description or "")
        return {"id": pid, "name": args.name}
    if what == "project" and action == "list":
        return [{"id": p["id"], "name": p["name"]} for p in region.identity.list_projects()]
    if what == "user" and action == "create":
        uid = region.identity.create_user(args.name, _password(args))
        if args.project:
            region.identity.assign_role(uid, region.identity.project_id(args.project), args.role)
        return {"id": uid, "name": args.name}
    if what == "role" and action == "add":
        region.identity.assign_role(
            region.identity.user_id(args.user), region.identity.project_id(args.project), args.role
        )
        return {"user": args.user, "project": args.project, "role": args.role}
    if what == "flavor" and action == "create":
        body = {
            "flavor": {"name": args.name, "vcpus": args.vcpus, "ram": args.ram, "disk": args.disk}
        }
        if args.id:
            body["flavor"]["id"] = args.id
        row = region.compute.create_flavor(body)
        return dict(row)
    if what == "quota" and action == "set":
        values = {
            k: getattr(args, k)
            for k in ("cores", "ram", "instances")
            if getattr(args, k) is not None
        }
        if not values:
            raise BadRequest("give at least one of --cores, --ram, --instances")
        return region.compute.set_quota(region.identity.project_id(args.project), values)
    if what == "host" and action == "list":
        return region.hosts.list_hosts()
    if what == "host" and action in ("enable", "disable"):
        return region.hosts.set_enabled(
            args.name, action == "enable", reason="disabled by admin CLI"
        )
    if what == "host" and action == "drain":
        return _drain(region, args.name, args.wait)
    if what == "host" and action == "credential":
        # shown once; the old credential stops working (docs/agent-api.md)
        return {"host": args.name, "credential": region.hosts.credentials.issue(args.name)}
    raise BadRequest(f"unknown admin action: {what} {action}")  # pragma: no cover


def _add_logging_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-format", choices=("auto", "json", "text"), default="auto")
    p.add_argument("--log-file", help="write JSON log lines to this file instead of stderr")
    p.add_argument("--log-level", default="INFO")


def register(sub: Any) -> None:
    cloud = sub.add_parser("cloud", help="run and administer a region controller")
    csub = cloud.add_subparsers(dest="cloud_command", metavar="ACTION", required=True)

    serve = csub.add_parser("serve", help="serve one region (rack) from region.yaml")
    serve.add_argument("--config", required=True, metavar="FILE")
    serve.add_argument("--ready-file", help="write {url, pid} here once serving")
    serve.add_argument(
        "--reuse-port",
        action="store_true",
        default=os.environ.get("RACKPOOL_REUSE_PORT") == "1",
        help="bind with SO_REUSEPORT so a new controller can take over the port while this "
        "one serves, for upgrades without refused connections (default: $RACKPOOL_REUSE_PORT=1)",
    )
    _add_logging_args(serve)
    serve.set_defaults(handler=_serve)

    admin = csub.add_parser("admin", help="manage projects, users, flavors, quotas, hosts")
    admin.add_argument("--config", required=True, metavar="FILE")
    asub = admin.add_subparsers(dest="what", metavar="OBJECT", required=True)

    project = asub.add_parser("project").add_subparsers(dest="action", required=True)
    p = project.add_parser("create")
    p.add_argument("name")
    p.add_argument("--description")
    project.add_parser("list")

    user = asub.add_parser("user").add_subparsers(dest="action", required=True)
    u = user.add_parser("create")
    u.add_argument("name")
    u.add_argument("--password", help="visible in the process list; prefer --password-stdin")
    u.add_argument("--password-stdin", action="store_true")
    u.add_argument("--project", help="also give the user a role in this project")
    u.add_argument("--role", default="member", choices=("member", "admin"))

    role = asub.add_parser("role").add_subparsers(dest="action", required=True)
    r = role.add_parser("add")
    r.add_argument("user")
    r.add_argument("project")
    r.add_argument("role", choices=("member", "admin"))

    flavor = asub.add_parser("flavor").add_subparsers(dest="action", required=True)
    f = flavor.add_parser("create")
    f.add_argument("name")
    f.add_argument("--vcpus", type=int, required=True)
    f.add_argument("--ram", type=int, required=True, help="MiB")
    f.add_argument("--disk", type=int, default=0, help="GiB")
    f.add_argument("--id")

    quota = asub.add_parser("quota").add_subparsers(dest="action", required=True)
    q = quota.add_parser("set")
    q.add_argument("project")
    q.add_argument("--cores", type=int)
    q.add_argument("--ram", type=int, help="MiB")
    q.add_argument("--instances", type=int)

    host = asub.add_parser("host").add_subparsers(dest="action", required=True)
    host.add_parser("list")
    for act in ("enable", "disable"):
        h = host.add_parser(act)
        h.add_argument("name")
    h = host.add_parser(
        "credential",
        help="issue the host a new agent credential (printed once; its old one stops working)",
    )
    h.add_argument("name")
    h = host.add_parser("drain", help="disable (no new instances) and wait for it to empty")
    h.add_argument("name")
    h.add_argument(
        "--wait", type=float, default=0, metavar="SECONDS",
        help="wait up to SECONDS for its instances to be deleted (default: do not wait)",
    )  # fmt: skip

    admin.set_defaults(handler=_admin)
