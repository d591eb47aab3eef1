"""``rackpool ops serve|ship|ship-token``, ``rackpool logs search|tail``, ``rackpool bugs list|check|uncategorized``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from typing import Any

from rackpool.core.config import load_model
from rackpool.ops.client import STATE_ENV, OpsClient, discover
from rackpool.ops.config import OpsConfig, ShipConfig
from rackpool.ops.signatures import load_signature

_IDS = ("region", "host", "node_id", "instance_id", "request_id", "image_id", "build_uuid")


def format_hit(h: dict[str, Any]) -> str:
    ts = dt.datetime.fromtimestamp(h["ts"], dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    level = h.get("level") or h.get("loglevel") or "-"
    who = h.get("logger") or h.get("module") or h.get("filename") or h.get("source", "")
    ids = " ".join(f"{k}={h[k]}" for k in _IDS if h.get(k))
    return f"{ts} {level:<7} {who}{f' [{ids}]' if ids else ''} {h.get('message', '')}"


def _client(args: argparse.Namespace) -> OpsClient:
    url, token = discover(args.state_dir, args.url)
    return OpsClient(url, token)


def _serve(args: argparse.Namespace) -> int:
    from rackpool.ops.service import run

    config = load_model(args.config, OpsConfig)
    state_dir = args.state_dir or os.environ.get(STATE_ENV)
    if state_dir:
        config = config.model_copy(update={"state_dir": state_dir})
    return run(config)


def _ship(args: argparse.Namespace) -> int:
    from rackpool.ops.ship import run

    return run(load_model(args.config, ShipConfig))


def _ship_token(args: argparse.Namespace) -> int:
    """Print HOST's ingest token (for its shipper.yaml's ``ops.token``); logs nothing."""
    from rackpool.core.errors import ConfigError
    from rackpool.ops.service import ingest_secret
    from rackpool.ops.tokens import check_host, mint

    config = load_model(args.config, OpsConfig)
    try:
        host = check_host(args.host)
    except ValueError as exc:
        raise ConfigError(f"HOST: {exc}") from None
    print(mint(ingest_secret(config), host))
    return 0


def _search(args: argparse.Namespace) -> int:
    client = _client(args)
    result = client.search(args.query, since=args.since, until=args.until, size=args.limit)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    for h in result["hits"]:
        print(f"{h['id']}  {format_hit(h)}")
    print(f"-- {len(result['hits'])} of {result['total']} matching lines")
    return 0


def _tail(args: argparse.Namespace) -> int:
    client = _client(args)
    since: str | None = args.since
    seen: set[str] = set()  # ids already printed at the newest timestamp ``since``
    printed = 0
    while True:
        result = client.search(args.query, since=since, size=1000, order="asc")
        for h in result["hits"]:
            if h["id"] in seen:
                continue
            if str(h["ts"]) != since:  # a newer instant: older ids cannot come back
                seen.clear()
            seen.add(h["id"])
            print(format_hit(h), flush=True)
            printed += 1
            since = str(h["ts"])
            if args.count and printed >= args.count:
                return 0
        if not args.follow:
            return 0
        time.sleep(args.interval)


def _bugs_list(args: argparse.Namespace) -> int:
    bugs = _client(args).bugs()
    if args.json:
        print(json.dumps(bugs, indent=1))
        return 0
    print(f"{'BUG':<36} {'FAILS':>6} {'24H':>5}  QUERY")
    for b in bugs:
        print(f"{b['bug']:<36} {b['fails']:>6} {b['fails24h']:>5}  {' '.join(b['query'].split())}")
    return 0


def _uncategorized(args: argparse.Namespace) -> int:
    rows = _client(args).failures(uncategorized=True)
    for f in rows:
        when = dt.datetime.fromtimestamp(f["ts"], dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(f"{when} {f['key']} {f.get('message', '')}")
    print(f"-- {len(rows)} uncategorized failure(s)")
    return 0


def _check(args: argparse.Namespace) -> int:
    sig = load_signature(args.file)
    client = _client(args)
    result = client.search(sig.query_text, since=args.since, size=args.limit)
    print(f"{sig.bug}: {result['total']} matching line(s) since {args.since}")
    for h in result["hits"]:
        print(f"  {h['id']}  {format_hit(h)}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", help=f"where 'rackpool up' keeps state (or ${STATE_ENV})")
    p.add_argument("--url", help="ops API URL (instead of --state-dir)")


def register(sub: Any) -> None:
    ops = sub.add_parser("ops", help="the ops daemon: log index, shipper, known bugs, REST API")
    osub = ops.add_subparsers(dest="ops_command", metavar="ACTION", required=True)
    serve = osub.add_parser("serve", help="run the ops daemon")
    serve.add_argument("--config", required=True, metavar="FILE", help="ops.yaml")
    serve.add_argument("--state-dir", help="write ops.json (URL, push token) here")
    serve.set_defaults(handler=_serve)
    ship = osub.add_parser("ship", help="send this host's log files to the ops API of another host")
    ship.add_argument("--config", required=True, metavar="FILE", help="shipper.yaml")
    ship.set_defaults(handler=_ship)
    st = osub.add_parser(
        "ship-token",
        help="print the ingest token of host HOST (its shipper.yaml's ops.token)",
        description="Print HOST's ingest token: it lets a shipper send lines of HOST, and "
        "of no other host, to this ops daemon. Run it on the ops host with the daemon's "
        "ops.yaml (its api.ingest_secret, or <index.path>/ingest.secret).",
    )
    st.add_argument("--config", required=True, metavar="FILE", help="the ops daemon's ops.yaml")
    st.add_argument("host", metavar="HOST", help="the host name its shipper.yaml gives as host")
    st.set_defaults(handler=_ship_token)

    logs = sub.add_parser("logs", help="search the operational logs")
    lsub = logs.add_subparsers(dest="logs_command", metavar="ACTION", required=True)
    search = lsub.add_parser("search", help="search with a Lucene query, newest first")
    search.add_argument("query", metavar="QUERY")
    search.add_argument("--since", default="1d", help="15m, 2h, 3d, ISO-8601 (default 1d)")
    search.add_argument("--until")
    search.add_argument("--limit", type=int, default=50)
    search.add_argument("--json", action="store_true")
    _common(search)
    search.set_defaults(handler=_search)
    tail = lsub.add_parser("tail", help="print new log lines as they are indexed")
    tail.add_argument("query", nargs="?", default="*", metavar="QUERY")
    tail.add_argument("--since", default="5m")
    tail.add_argument("--follow", action=argparse.BooleanOptionalAction, default=True)
    tail.add_argument("--count", type=int, default=0, help="stop after N lines")
    tail.add_argument("--interval", type=float, default=1.0)
    _common(tail)
    tail.set_defaults(handler=_tail)

    bugs = sub.add_parser("bugs", help="known-bug signatures and classified failures")
    bsub = bugs.add_subparsers(dest="bugs_command", metavar="ACTION", required=True)
    blist = bsub.add_parser("list", help="known bugs with their hit counts")
    blist.add_argument("--json", action="store_true")
    _common(blist)
    blist.set_defaults(handler=_bugs_list)
    check = bsub.add_parser("check", help="run a signature file against the index")
    check.add_argument("file", metavar="FILE")
    check.add_argument("--since", default="10d")
    check.add_argument("--limit", type=int, default=20)
    _common(check)
    check.set_defaults(handler=_check)
    unc = bsub.add_parser("uncategorized", help="failures that matched no known bug")
    _common(unc)
    unc.set_defaults(handler=_uncategorized)
