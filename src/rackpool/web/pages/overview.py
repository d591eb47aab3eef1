"""Overview: providers (health and since when, quota and usage, launch failures), nodes
by state, plots over time (from the dashboard's history of the pool's /metrics),
requests, regions and their hosts; all from the pool's, ops' and regions' HTTP APIs.

Quota and usage come from the pool's provider status for every provider (any cloud,
static hosts, fake): what the pool counts against each limit. A region configured with a
reader account adds its own count of the project (Nova's os-quota-sets), on a row of its
own that says so, never mixed into the pool's figures."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from rackpool.web import plots
from rackpool.web.html import Html, age, join, link, table, tag, url, when
from rackpool.web.regions import RegionView
from rackpool.web.sources import SourceError, Sources
from rackpool.web.svg import quota_bars, stacked_bars

NODE_STATES = ("ready", "in-use", "building", "used", "hold", "deleting", "failed", "aborted")


def launch_errors(metrics_text: str) -> dict[str, Counter[str]]:
    """Failed launch attempts per provider and kind, from the pool's /metrics."""
    out: dict[str, Counter[str]] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "rackpool_pool_launch_errors":
            continue
        for s in family.samples:
            if s.name.endswith("_total") and s.value:
                out.setdefault(s.labels["provider"], Counter())[s.labels["kind"]] += int(s.value)
    return out


def _status(p: dict[str, Any]) -> str:
    if p.get("paused"):
        return "paused"
    return "in service" if p.get("in_service") else "OUT OF SERVICE"


def providers_section(
    providers: list[dict[str, Any]],
    nodes: list[dict[str, Any]],
    errors: dict[str, Counter[str]],
    since: dict[str, str],
) -> Html:
    live = [n for n in nodes if n.get("state") not in ("deleting",)]
    total = len(live) or 1
    rows = []
    for p in providers:
        name = p["name"]
        mine = sum(1 for n in live if n.get("provider") == name)
        kinds = errors.get(name, Counter())
        rows.append(
            (
                link(url("/nodes", provider=name), name),
                p.get("driver"),
                p.get("region"),
                tag("span", _status(p), class_=None if p.get("in_service") else "bad"),
                p.get("reason") or "",
                since.get(name, ""),
                p.get("consecutive_errors", 0),
                pool_quota_text(p),
                mine,
                f"{100 * mine / total:.0f}%",
                ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) or "none",
                p.get("priority"),
            )
        )
    headers = ("Provider", "Driver", "Region", "Health", "Why", "Since (UTC)", "Errors in a row",
               "Quota (used / limit, as the pool counts)", "Nodes", "Share of nodes", "Launch failures (kind: count)",
               "Priority")  # fmt: skip
    return Html(tag("h2", "Providers") + table(headers, rows))


HEALTH_LINES = (
    'event:provider_out OR message:"back in service" OR message:"paused by operator" '
    'OR message:"resumed by operator" OR event:pool_started'
)


def _since_text(p: dict[str, Any], hits: list[dict[str, Any]]) -> str:
    """When the provider's current health began: the latest log line that says so."""
    status = _status(p)
    for hit in hits:
        msg = str(hit.get("message", ""))
        if hit.get("event") == "pool_started" or "back in service" in msg or "resumed by" in msg:
            began = status == "in service"
        elif "paused by operator" in msg:
            began = status == "paused"
        else:  # provider_out
            began = status == "OUT OF SERVICE"
        if began:
            return f"{when(hit.get('ts'))} ({age(hit.get('ts'))} ago)"
        break
    return "unknown (no log line says)"


async def health_since(sources: Sources, providers: list[dict[str, Any]]) -> dict[str, str]:
    """Per provider, since when it is in its current health, from the pool's log lines."""

    async def one(p: dict[str, Any]) -> tuple[str, str]:
        name = str(p["name"]).replace('"', "")
        q = f'(provider:"{name}" AND ({HEALTH_LINES})) OR event:pool_started'
        try:
            got = await sources.ops_get("/api/search", {"q": q, "since": "30d", "size": 5})
        except SourceError:
            return p["name"], "unknown (the log index did not answer)"
        return p["name"], _since_text(p, got["hits"])

    return dict(await asyncio.gather(*(one(p) for p in providers)))


RESOURCES = (("instances", "instances", ""), ("cores", "cores", ""), ("ram", "RAM", " MiB"))
CAP_KEYS = {"instances": "max_servers", "cores": "max_cores", "ram": "max_ram"}


def _limit(limit: int, unit: str) -> str:
    return "unlimited" if limit < 0 else f"{limit}{unit}"


def pool_quota_text(p: dict[str, Any]) -> str:
    """The provider's quota as the pool counts it, in one line for the providers table."""
    q = p.get("quota")
    if not q:
        if "quota" not in p:  # a pool from before it published its count
            return "read" if p.get("quota_known") else "not read yet"
        return "not read yet by the pool"
    if q.get("hosts") is not None:
        return f"hosts {q['instances']['in_use']} / {q['hosts']}"
    parts = []
    for key, name, unit in RESOURCES:
        f = q[key]
        if key == "instances" or f["limit"] >= 0 or f["in_use"]:
            parts.append(f"{name} {f['in_use']}{unit} / {_limit(f['limit'], unit)}")
    return ", ".join(parts)


def quota_text(view: RegionView | None) -> str:
    """The region's own count of the project, in one line (a reader account's view)."""
    if view is None or not view.quota:
        return ""
    q = view.quota
    parts = []
    for key, name, unit in RESOURCES:
        if key in q:
            parts.append(f"{name} {q[key]['in_use']}{unit} / {_limit(q[key]['limit'], unit)}")
    return ", ".join(parts)


def _read(q: dict[str, Any]) -> str:
    return f"limits {age(q.get('limits_read_at'))} ago, servers {age(q.get('usage_read_at'))} ago"


def quota_section(
    providers: list[dict[str, Any]], views: dict[str, RegionView], readers: dict[str, str]
) -> Html:
    """Every provider's quota: limit, in use (this pool's nodes and other servers) and the
    pool's own caps, as the pool counts them; then, labelled as such, the region's own
    count where a reader account reads it. A bar per limited resource, values written."""
    rows: list[tuple[object, ...]] = []
    bars: list[tuple[str, float, float, float, str]] = []
    for p in providers:
        name = str(p["name"])
        q = p.get("quota")
        caps = p.get("caps") or []
        if not q:
            why = "the pool has not read its limits and servers yet" if "quota" in p else (
                "the pool does not publish its count (an older pool)"
            )  # fmt: skip
            rows.append((name, "", "the pool", "not read", "", "", "", "", "", _caps(caps, None),
                         why))  # fmt: skip
        elif q.get("hosts") is not None:
            used, hosts = q["instances"]["in_use"], q["hosts"]
            rows.append((name, "hosts (static)", "the pool", hosts, used, used, 0,
                         max(hosts - used, 0), _pct(used, hosts), _caps(caps, "instances"),
                         "configured hosts, one node each"))  # fmt: skip
            bars.append((f"{name} hosts", used, 0, hosts, ""))
        else:
            for key, label, unit in RESOURCES:
                f = q[key]
                limited = f["limit"] >= 0
                rows.append((
                    name, f"{label} ({unit.strip()})" if unit else label, "the pool",
                    _limit(f["limit"], ""), f["in_use"], f["pool"], f["other"],
                    max(f["limit"] - f["in_use"], 0) if limited else "no limit",
                    _pct(f["in_use"], f["limit"]) if limited else "",
                    _caps(caps, key), _read(q),
                ))  # fmt: skip
                if limited:
                    bars.append((f"{name} {label}", f["pool"], f["other"], f["limit"], unit))
        region = str(p.get("region") or "")
        view = views.get(region)
        if view is not None and view.quota:
            project = readers.get(region, "")
            who = f"region {region}'s own count (project {project})"
            for key, label, unit in RESOURCES:
                if key in view.quota:
                    r = view.quota[key]
                    limited = r["limit"] >= 0
                    rows.append((
                        name, f"{label} ({unit.strip()})" if unit else label, who,
                        _limit(r["limit"], ""), r["in_use"], "", "",
                        max(r["limit"] - r["in_use"], 0) if limited else "no limit",
                        _pct(r["in_use"], r["limit"]) if limited else "", "",
                        "read now, as its reader account",
                    ))  # fmt: skip
    headers = ("Provider", "Resource", "Counted by", "Limit", "In use", "This pool's nodes",
               "Other servers", "Free", "Used", "Pool's own cap (used / max)", "Read")  # fmt: skip
    note = tag(
        "p",
        '"The pool" is what the pool counts against each limit before it launches: its '
        "nodes holding resources (by their flavor) plus the servers in the project that are "
        "not its own, as of its last server list. A region's own count is what the region "
        "reports for the project now; the two can differ for a moment (a server being "
        "created or deleted, a list older than a new server).",
    )
    chart = quota_bars(bars, prefix="quota", title="Quota used by provider")
    return Html(
        tag("h2", "Quota and usage", id="quota")
        + (tag("figure", chart) if bars else "")
        + table(headers, rows)
        + note
    )


def _caps(caps: list[dict[str, Any]], key: str | None) -> str:
    """The pools' own max-* for one resource (``main: 2 / 4``), or for all of them
    (``main: max-servers 2 / 4``) when ``key`` is None."""
    out = []
    for res, field in CAP_KEYS.items():
        if key is not None and res != key:
            continue
        what = "" if key is not None else field.replace("_", "-") + " "
        out += [
            f"{c['pool']}: {what}{c[res]} / {c[field]}" for c in caps if c.get(field) is not None
        ]
    return ", ".join(out)


def nodes_section(providers: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> Html:
    by_provider: dict[str, Counter[str]] = {p["name"]: Counter() for p in providers}
    for n in nodes:
        by_provider.setdefault(str(n.get("provider")), Counter())[str(n.get("state"))] += 1
    states = [s for s in NODE_STATES if any(c[s] for c in by_provider.values())]
    states += sorted({s for c in by_provider.values() for s in c} - set(NODE_STATES))
    rows = [(name, dict(c)) for name, c in sorted(by_provider.items())]
    chart = stacked_bars(rows, states, prefix="nodes", title="Nodes by provider and state")
    counts = [
        (link(url("/nodes", provider=name), name), *(c.get(s, 0) for s in states), sum(c.values()))
        for name, c in rows
    ]
    return Html(
        tag("h2", "Nodes by state")
        + tag("figure", chart)
        + table(("Provider", *states, "All"), counts)
    )


def requests_section(requests: list[dict[str, Any]]) -> Html:
    states = Counter(str(r.get("state")) for r in requests)
    rows = [(link(url("/requests", state=s), s), n) for s, n in sorted(states.items())]
    return Html(tag("h2", "Node requests") + table(("State", "Requests"), rows))


def regions_section(views: list[RegionView]) -> Html:
    if not views:
        return Html("")
    rows = [
        (v.name, v.url, "answering" if v.answering else "NOT ANSWERING",
         len(v.hosts) if v.hosts is not None else "", v.note)
        for v in views
    ]  # fmt: skip
    out = [tag("h2", "Regions"), table(("Region", "API", "Status", "Hosts", "Note"), rows)]
    for v in views:
        if not v.hosts:
            continue
        host_rows = [
            (
                x["name"],
                tag("span", x["state"], class_=None if x["state"] == "up" else "bad"),
                x["status"] if x["status"] == "enabled" else tag("span", "disabled", class_="bad"),
                x["disabled_reason"],
                x["zone"],
                f"{x['vcpus_used']} / {x['vcpus']}",
                f"{x['memory_mb_used']} / {x['memory_mb']}",
                x["running_vms"],
                f"{_pct(x['vcpus_used'], x['vcpus'])}",
            )
            for x in v.hosts
        ]
        headers = ("Host", "State", "Status", "Disabled because", "AZ", "vCPUs used",
                   "RAM used (MB)", "Instances", "Capacity used")  # fmt: skip
        out.append(tag("h3", f"Hosts of {v.name}", id=f"hosts-{v.name}"))
        out.append(table(headers, host_rows))
    return join(out)


def _pct(used: object, total: object) -> str:
    try:
        return f"{100 * float(used) / float(total):.0f}%"  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return ""


async def render(sources: Sources, params: dict[str, str]) -> Html:
    providers, nodes, requests, metrics = await asyncio.gather(
        sources.pool_get("/api/providers"),
        sources.pool_get("/node-list.json"),
        sources.pool_get("/request-list.json"),
        sources.pool_get("/metrics"),
    )
    since, views = await asyncio.gather(
        health_since(sources, providers),
        asyncio.gather(*(sources.regions.read(r) for r in sources.config.regions)),
    )
    by_region = {v.name: v for v in views}
    readers = {
        r.name: r.reader.quota_project or "" for r in sources.config.regions if r.reader is not None
    }
    span = plots.span(params.get("range"))
    return join(
        [
            providers_section(providers, nodes, launch_errors(metrics), since),
            quota_section(providers, by_region, readers),
            nodes_section(providers, nodes),
            plots.section(sources.history, span, [str(p["name"]) for p in providers]),
            requests_section(requests),
            regions_section(list(views)),
        ]
    )
