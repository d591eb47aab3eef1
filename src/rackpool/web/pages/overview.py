"""Overview: providers (health and since when, quota and usage, launch failures), nodes
by state, plots over time (from the dashboard's history of the pool's /metrics),
requests, regions and their hosts; all from the pool's, ops' and regions' HTTP APIs."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from rackpool.web import plots
from rackpool.web.html import Html, age, join, link, table, tag, url, when
from rackpool.web.regions import RegionView
from rackpool.web.sources import SourceError, Sources
from rackpool.web.svg import stacked_bars

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
    quotas: dict[str, str],
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
                quotas.get(name) or ("read" if p.get("quota_known") else "not read yet"),
                mine,
                f"{100 * mine / total:.0f}%",
                ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) or "none",
                p.get("priority"),
            )
        )
    headers = ("Provider", "Driver", "Region", "Health", "Why", "Since (UTC)", "Errors in a row",
               "Quota (used / limit)", "Nodes", "Share of nodes", "Launch failures (kind: count)",
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


def quota_text(view: RegionView | None) -> str:
    if view is None or not view.quota:
        return ""
    q = view.quota
    parts = []
    for key, unit in (("instances", ""), ("cores", ""), ("ram", " MB")):
        if key in q:
            limit = q[key]["limit"]
            shown = "unlimited" if limit < 0 else f"{limit}{unit}"
            parts.append(f"{key} {q[key]['in_use']}{unit} / {shown}")
    return ", ".join(parts)


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
    quotas = {p["name"]: quota_text(by_region.get(str(p.get("region")))) for p in providers}
    span = plots.span(params.get("range"))
    return join(
        [
            providers_section(providers, nodes, launch_errors(metrics), since, quotas),
            nodes_section(providers, nodes),
            plots.section(sources.history, span, [str(p["name"]) for p in providers]),
            requests_section(requests),
            regions_section(list(views)),
        ]
    )
