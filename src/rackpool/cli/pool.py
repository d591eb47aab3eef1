"""``rackpool pool serve``, ``rackpool node ...`` and ``rackpool provider ...``.

The node and provider commands talk to a running pool: ``--state-dir DIR`` (or
``RACKPOOL_STATE_DIR``) finds the pool started by ``rackpool up --state-dir DIR`` via
``DIR/pool.json``; ``--url`` with ``--token`` (or ``RACKPOOL_POOL_TOKEN``) reaches any pool.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rackpool.core.errors import TemporaryError


def _client(args: argparse.Namespace) -> Any:
    from rackpool.pool.client import discover

    return discover(args.state_dir, args.url, args.token)


def _print(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def _serve(args: argparse.Namespace) -> int:
    from rackpool.pool.daemon import serve

    return serve(args.config, level=args.log_level)


def _request(args: argparse.Namespace) -> int:
    client = _client(args)
    req = client.request(args.labels, args.priority, args.requestor)
    if not args.wait:
        _print(req)
        return 0
    req = client.wait(req["id"], args.timeout)
    if req["state"] == "fulfilled":
        _print({"request": req["id"], "state": req["state"], "nodes": req["nodes"]})
        return 0
    _print(req)
    if req["state"] == "failed":
        print(f"rackpool: request {req['id']} failed: {req.get('reason', '')}", file=sys.stderr)
        return 1
    raise TemporaryError(f"request {req['id']} still {req['state']} after {args.timeout:.0f}s")


def _list(args: argparse.Namespace) -> int:
    nodes = _client(args).nodes()
    if args.json:
        _print(nodes)
        return 0
    cols = ("id", "label", "provider", "state", "interface_ip", "connection_port", "allocated_to")
    rows = [[str(n.get(c) or "") for c in cols] for n in nodes]
    widths = [
        max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)
    ]
    print("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    return 0


def _release(args: argparse.Namespace) -> int:
    _print(_client(args).release(args.node_id))
    return 0


def _hold(args: argparse.Namespace) -> int:
    _print(_client(args).hold(args.node_id, args.comment))
    return 0


def _used(used: Any, limit: Any) -> str:
    return f"{used}/{'unlimited' if limit is None or limit < 0 else limit}"


def quota_column(p: dict[str, Any]) -> str:
    """``instances 3/10 cores 6/20 ram 2048/51200`` (RAM in MiB) as the pool counts
    them, then each pool's own caps (``main max-servers 3/8``)."""
    q = p.get("quota")
    if "quota" not in p:  # a pool from before it published its count
        parts = ["quota read" if p.get("quota_known") else "quota not read yet"]
    elif not q:
        parts = ["quota not read yet"]
    elif q.get("hosts") is not None:  # static: one node per host, nothing else counted
        parts = [f"hosts {_used(q['instances']['in_use'], q['hosts'])}"]
    else:
        parts = []
        for key in ("instances", "cores", "ram"):
            f = q[key]
            if key == "instances" or f["limit"] >= 0 or f["in_use"]:
                parts.append(f"{key} {_used(f['in_use'], f['limit'])}")
    for cap in p.get("caps") or ():
        for key, used in (("servers", "instances"), ("cores", "cores"), ("ram", "ram")):
            if cap.get(f"max_{key}") is not None:
                parts.append(f"{cap['pool']} max-{key} {_used(cap[used], cap[f'max_{key}'])}")
    return " ".join(parts)


def _providers(args: argparse.Namespace) -> int:
    provs = _client(args).providers()
    if args.json:
        _print(provs)
        return 0
    quotas = [quota_column(p) for p in provs]
    width = max([len("QUOTA (USED/LIMIT)"), *(len(q) for q in quotas)])
    print(f"{'NAME':<20} {'DRIVER':<10} {'REGION':<12} {'NODES':>5}  "
          f"{'QUOTA (USED/LIMIT)':<{width}}  HEALTH")  # fmt: skip
    for p, quota in zip(provs, quotas, strict=True):
        state = "paused" if p["paused"] else ("in service" if p["in_service"] else "OUT OF SERVICE")
        extra = f" ({p['reason']})" if p["reason"] else ""
        print(
            f"{p['name']:<20} {p['driver']:<10} {p['region']:<12} {p['nodes']:>5}  "
            f"{quota:<{width}}  {state}{extra}"
        )
    return 0


def _launchers(args: argparse.Namespace) -> int:
    rows = _client(args).launchers()
    if args.json:
        _print(rows)
        return 0
    for r in rows:
        mark = "  (answered this call)" if r.get("self") else ""
        print(f"{r['id']:<40} {r.get('url', '-'):<28} pid {r.get('pid', '?')}{mark}")
    return 0


def _pause(args: argparse.Namespace) -> int:
    _print(_client(args).set_paused(args.name, args.provider_command == "pause"))
    return 0


def _where(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("which pool")
    g.add_argument("--state-dir", help="state dir of 'rackpool up' (default: $RACKPOOL_STATE_DIR)")
    g.add_argument("--url", help="pool API URL (default: $RACKPOOL_POOL_URL)")
    g.add_argument("--token", help="pool API token (default: $RACKPOOL_POOL_TOKEN)")


def register(sub: Any) -> None:
    pool = sub.add_parser("pool", help="the node pool daemon")
    psub = pool.add_subparsers(dest="pool_command", metavar="ACTION", required=True)
    s = psub.add_parser("serve", help="run the launcher and its API")
    s.add_argument("--config", required=True, help="pool.yaml")
    s.add_argument("--log-level", default="INFO")
    s.set_defaults(handler=_serve)
    ls_l = psub.add_parser("launchers", help="the live launchers sharing the pool's store")
    ls_l.add_argument("--json", action="store_true")
    _where(ls_l)
    ls_l.set_defaults(handler=_launchers)

    node = sub.add_parser("node", help="request, list, release and hold pool nodes")
    nsub = node.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    r = nsub.add_parser("request", help="request nodes; with --wait print connection facts")
    r.add_argument("labels", nargs="+", metavar="LABEL")
    r.add_argument("--wait", action="store_true", help="wait until fulfilled or failed")
    r.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (default 600)")
    r.add_argument("--priority", type=int, default=100, help="lower is served first")
    r.add_argument("--requestor", default="cli")
    _where(r)
    r.set_defaults(handler=_request)
    ls = nsub.add_parser("list", help="list nodes")
    ls.add_argument("--json", action="store_true")
    _where(ls)
    ls.set_defaults(handler=_list)
    for name, fn, help_ in (
        ("release", _release, "done with a node: it is deleted and replaced"),
        ("hold", _hold, "keep a node (for debugging) until released"),
    ):
        p = nsub.add_parser(name, help=help_)
        p.add_argument("node_id", metavar="ID")
        if name == "hold":
            p.add_argument("--comment", default="")
        _where(p)
        p.set_defaults(handler=fn)

    prov = sub.add_parser("provider", help="list, pause and resume pool providers")
    vsub = prov.add_subparsers(dest="provider_command", metavar="ACTION", required=True)
    pl = vsub.add_parser(
        "list", help="providers with quota and usage (as the pool counts), health, pause state"
    )
    pl.add_argument("--json", action="store_true")
    _where(pl)
    pl.set_defaults(handler=_providers)
    for name in ("pause", "resume"):
        p = vsub.add_parser(name, help=f"{name} launching on a provider")
        p.add_argument("name", metavar="PROVIDER")
        _where(p)
        p.set_defaults(handler=_pause)
