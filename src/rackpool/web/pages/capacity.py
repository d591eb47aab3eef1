"""Capacity: the share of all node-hours each provider served over a chosen period
(``/capacity?period=24h``), and what each region (rack) added to the pool's capacity.

A node "served" while it was ready, in use or held (history.SERVING); node-hours are
the integral of the pool's node counts over time (history.py), so they are exact to
the sampling interval.
"""

from __future__ import annotations

import time
from typing import Any

from rackpool.web.history import History, by_first, node_hours
from rackpool.web.html import Html, join, link, table, tag, url, when
from rackpool.web.plots import coverage_note
from rackpool.web.sources import SourceError, Sources
from rackpool.web.svg import share_bars, time_stacked

PERIODS = {"1h": 3600, "6h": 6 * 3600, "24h": 86400, "3d": 3 * 86400, "7d": 7 * 86400,
           "10d": 10 * 86400}  # fmt: skip
DEFAULT = "24h"
BUCKETS = 48


def _nh(v: float) -> str:
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:,.0f}"


def _period_links(current: str) -> Html:
    items = (
        tag("strong", p) if p == current else link(url("/capacity", period=p), p) for p in PERIODS
    )
    return tag("p", join(["Period: the last ", join(items, " · ")]))


def rack_sentences(
    served: dict[str, float], providers: list[dict[str, Any]], racks: set[str], period: str
) -> list[Html]:
    """ "The rack r1 added N% of node-hours", for each provider on one of our regions."""
    total = sum(served.values())
    out = []
    for p in providers:
        name = str(p["name"])
        if str(p.get("region")) not in racks or total <= 0:
            continue
        mine = served.get(name, 0.0)
        others = total - mine
        grew = (
            f"{100 * mine / others:.0f}%" if others > 0 else "all of it (no other provider served)"
        )
        out.append(
            tag(
                "p",
                f"The rack {p.get('region')} (provider {name}) added {100 * mine / total:.0f}% of "
                f"the pool's node-hours over the last {period}: {_nh(mine)} of {_nh(total)}. "
                f"The other providers served {_nh(others)}; the rack grew that by {grew}.",
                class_="rack",
            )
        )
    return out


def _over_time(history: History, since: float, now: float, names: list[str]) -> Html:
    rows = [(b.start, node_hours(b)) for b in history.buckets(since, now, BUCKETS)]
    series = sorted({p for _, v in rows for p in v} | set(names))
    return tag(
        "figure",
        time_stacked(
            rows, series, prefix="cap", title="Node-hours served per provider", unit=" node-h"
        ),
    )


async def render(sources: Sources, params: dict[str, str]) -> Html:
    period = params.get("period") if params.get("period") in PERIODS else DEFAULT
    assert period is not None
    now = time.time()
    since = now - PERIODS[period]
    try:
        providers: list[dict[str, Any]] = await sources.pool_get("/api/providers")
        note = Html("")
    except SourceError as exc:
        providers, note = [], tag("p", f"{exc.message}; providers named from history only.")
    history = sources.history
    whole = history.total(since, now)
    served = node_hours(whole)
    in_use = node_hours(whole, ("in-use",))
    names = sorted(set(served) | {str(p["name"]) for p in providers})
    total = sum(served.values())
    region_of = {str(p["name"]): str(p.get("region") or "") for p in providers}
    racks = {r.name for r in sources.config.regions}
    rows = [
        (
            link(url("/nodes", provider=n), n),
            region_of.get(n, ""),
            "rack (our region)" if region_of.get(n) in racks else "other cloud",
            _nh(served.get(n, 0.0)),
            f"{100 * served.get(n, 0.0) / total:.1f}%" if total else "–",
            _nh(in_use.get(n, 0.0)),
            f"{100 * in_use.get(n, 0.0) / served[n]:.0f}%" if served.get(n) else "–",
        )
        for n in names
    ]
    avg = by_first(whole.nodes, ("ready", "in-use", "hold"))
    bars = [
        (n, served.get(n, 0.0) / total if total else 0.0,
         f"{100 * served.get(n, 0.0) / total:.1f}% ({_nh(served.get(n, 0.0))} node-h)"
         if total else "0 node-h")
        for n in names
    ]  # fmt: skip
    return join(
        [
            _period_links(period),
            note,
            coverage_note(history, since),
            tag(
                "p",
                f"From {when(since)} to {when(now)} UTC the pool's providers served "
                f"{_nh(total)} node-hours (on average {sum(avg.values()):.1f} nodes ready, in "
                f"use or held; history covers {whole.covered / 3600:.2f} h of it).",
            ),
            *rack_sentences(served, providers, racks, period),
            tag("figure", share_bars(bars, prefix="share", title="Share of node-hours served")),
            table(
                (
                    "Provider",
                    "Region",
                    "Kind",
                    "Node-hours served",
                    "Share",
                    "Node-hours in use",
                    "In use",
                ),
                rows,
            ),  # fmt: skip
            _over_time(history, since, now, names),
        ]
    )
