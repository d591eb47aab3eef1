"""Known bugs (elastic-recheck signatures): fails in 24 h and 10 days, an hourly graph
over 10 days split by outcome (as elastic-recheck's graphs split hits by build_status),
affected providers and projects, sample hits linking to the search; then the
uncategorized failures and the share of failures that were classified."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from rackpool.web.html import Html, join, link, table, tag, when
from rackpool.web.links import context_url, id_link, search_url
from rackpool.web.sources import SourceError, Sources
from rackpool.web.svg import time_stacked

WINDOW = "10d"
HOURS = 240
HOUR = 3600
# a hit's outcome: a pushed build's status, else the pool line's event
OUTCOME_FIELDS = "build_status,event"


def dense_hours(sparse: list[list[float]], now: float | None = None) -> list[tuple[float, int]]:
    """The ops API lists only hours with failures; the graph shows all of the last 240."""
    last = ((now or time.time()) // HOUR) * HOUR
    counts = {float(t): int(n) for t, n in sparse}
    return [(h, counts.get(h, 0)) for h in (last - HOUR * i for i in range(HOURS - 1, -1, -1))]


def by_outcome(
    rows: list[list[Any]], now: float | None = None
) -> tuple[list[tuple[float, dict[str, float]]], list[str]]:
    """Dense hourly buckets over 10 days from the ops histogram's sparse
    ``[hour, outcome, hits]`` rows; outcomes in a stable order (failures first)."""
    last = ((now or time.time()) // HOUR) * HOUR
    hours = [last - HOUR * i for i in range(HOURS - 1, -1, -1)]
    counts: dict[float, dict[str, float]] = {x: {} for x in hours}
    for start, value, n in rows:
        slot = counts.get(float(start))
        if slot is not None:
            name = str(value) or "other"
            slot[name] = slot.get(name, 0) + n
    seen = {k for c in counts.values() for k in c}
    order = sorted(seen, key=lambda o: (o not in ("FAILURE", "launch_failed", "node_failed"), o))
    return [(x, counts[x]) for x in hours], order


def _where(mine: list[dict[str, Any]], *keys: str) -> str:
    c = Counter(str(v) for f in mine for v in [next((f[k] for k in keys if f.get(k)), None)] if v)
    return ", ".join(f"{p}: {n}" for p, n in c.most_common()) or "none"


def _sample_search(query: str, f: dict[str, Any]) -> str:
    if f.get("build_uuid"):
        return search_url(f'({query}) AND build_uuid:"{f["build_uuid"]}"')
    if f.get("node_id"):
        return search_url(f'({query}) AND node_id:"{f["node_id"]}"')
    return search_url(query)


def _bug_section(
    i: int, bug: dict[str, Any], failures: list[dict[str, Any]], hits: list[list[Any]] | None
) -> Html:
    name = str(bug["bug"])
    query = str(bug.get("query", ""))
    hourly = dense_hours(bug.get("hourly", []))
    mine = [f for f in failures if name in f.get("bugs", [])]
    facts = table(
        ("Fails in 24 h", "Fails in 10 days", "Providers (fails)", "Projects (fails)", "Query"),
        [(
            bug.get("fails24h", 0),
            sum(n for _, n in hourly),
            _where(mine, "provider", "node_provider"),
            _where(mine, "project", "build_name"),
            link(search_url(query), query, title="search it"),
        )],
    )  # fmt: skip
    if bug.get("suppress-graph"):
        graph = Html("")
    elif hits is None:
        graph = tag("p", "No graph: the log index did not answer.")
    else:
        buckets, outcomes = by_outcome(hits)
        graph = tag(
            "figure",
            time_stacked(
                buckets,
                outcomes,
                prefix=f"bug{i}",
                title=f"{name}: matching lines per hour by outcome, last 10 days",
            ),
        )
    samples = [
        (
            link(context_url(f["doc_id"]), when(f.get("ts")), title="lines around it"),
            f.get("kind"),
            f.get("provider") or f.get("project") or f.get("build_name") or "",
            f.get("message", ""),
            link(_sample_search(query, f), "search", title="this failure's matching lines"),
        )
        for f in mine[:5]
    ]
    sample_table = (
        table(("Time (UTC)", "Kind", "Where", "Message", "Hits"), samples, "Latest hits")
        if samples
        else Html("")
    )
    return tag(
        "section",
        join(
            [
                tag("h2", name, id=f"bug-{name}"),
                tag("p", bug.get("description") or ""),
                facts,
                graph,
                sample_table,
            ]
        ),
    )


async def _histogram(sources: Sources, bug: dict[str, Any]) -> list[list[Any]] | None:
    if bug.get("suppress-graph"):
        return []
    params = {"q": bug.get("query", ""), "since": WINDOW, "interval": HOUR, "by": OUTCOME_FIELDS}
    try:
        got = await sources.ops_get("/api/histogram", params)
    except SourceError:
        return None
    return list(got["buckets"])


def _uncategorized(failures: list[dict[str, Any]]) -> Html:
    total = len(failures)
    unknown = [f for f in failures if not f.get("bugs")]
    rate = f"{100 * (total - len(unknown)) / total:.0f}%" if total else "no failures"
    rows = [
        (
            link(context_url(f["doc_id"]), when(f.get("ts")), title="lines around it"),
            f.get("kind"),
            id_link("node_id", f.get("node_id")) if f.get("node_id") else f.get("key"),
            f.get("provider") or f.get("node_provider") or "",
            f.get("message", ""),
        )
        for f in unknown[:100]
    ]
    return join(
        [
            tag("h2", "Uncategorized failures", id="uncategorized"),
            tag(
                "p",
                f"Classification rate over {WINDOW}: {rate} "
                f"({total - len(unknown)} of {total} failures matched a known bug).",
            ),
            table(("Time (UTC)", "Kind", "Failure", "Provider", "Message"), rows),
        ]
    )


async def render(sources: Sources) -> Html:
    bugs, failures = await asyncio.gather(
        sources.ops_get("/api/bugs"),
        sources.ops_get("/api/failures", {"since": WINDOW, "limit": 1000}),
    )
    rows = sorted(bugs["bugs"], key=lambda b: (-int(b.get("fails24h", 0)), str(b["bug"])))
    fails = failures["failures"]
    summary = table(
        ("Bug", "Fails in 24 h", "Fails in 10 days"),
        [
            (
                link(f"#bug-{b['bug']}", b["bug"]),
                b.get("fails24h", 0),
                sum(n for _, n in b.get("hourly", [])),
            )
            for b in rows
        ],
    )
    hits = await asyncio.gather(*(_histogram(sources, b) for b in rows))
    return join(
        [
            summary,
            link("#uncategorized", "Uncategorized failures"),
            *(_bug_section(i, b, fails, hits[i]) for i, b in enumerate(rows)),
            _uncategorized(fails),
        ]
    )
