"""Overview: providers (health, usage, launch failures), nodes by state, requests,
regions; all from the pool's and regions' HTTP APIs."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from rackpool.web.html import Html, join, link, table, tag, url
from rackpool.web.sources import Sources
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
    providers: list[dict[str, Any]], nodes: list[dict[str, Any]], errors: dict[str, Counter[str]]
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
                p.get("consecutive_errors", 0),
                "read" if p.get("quota_known") else "not read yet",
                mine,
                f"{100 * mine / total:.0f}%",
                ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) or "none",
                p.get("priority"),
            )
        )
    headers = ("Provider", "Driver", "Region", "Health", "Why", "Errors in a row", "Quota",
               "Nodes", "Share of nodes", "Launch failures (kind: count)", "Priority")  # fmt: skip
    return Html(tag("h2", "Providers") + table(headers, rows))


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


async def _regions(sources: Sources) -> Html:
    regions = sources.config.regions
    if not regions:
        return Html("")
    up = await asyncio.gather(*(sources.region_up(r.url) for r in regions))
    rows = [
        (r.name, r.url, "answering" if ok else "NOT ANSWERING")
        for r, ok in zip(regions, up, strict=True)
    ]
    return Html(tag("h2", "Regions") + table(("Region", "API", "Status"), rows))


async def render(sources: Sources) -> Html:
    providers, nodes, requests, metrics = await asyncio.gather(
        sources.pool_get("/api/providers"),
        sources.pool_get("/node-list.json"),
        sources.pool_get("/request-list.json"),
        sources.pool_get("/metrics"),
    )
    return join(
        [
            providers_section(providers, nodes, launch_errors(metrics)),
            nodes_section(providers, nodes),
            requests_section(requests),
            await _regions(sources),
        ]
    )
