"""Known bugs (elastic-recheck signatures): fails in 24 h and 10 days, an hourly graph
over 10 days, affected providers, a link to the search; then the uncategorized
failures and the share of failures that were classified."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from rackpool.web.html import Html, join, link, table, tag, when
from rackpool.web.links import context_url, id_link, search_url
from rackpool.web.sources import Sources
from rackpool.web.svg import hourly_bars

WINDOW = "10d"
HOURS = 240
HOUR = 3600


def dense_hours(sparse: list[list[float]], now: float | None = None) -> list[tuple[float, int]]:
    """The ops API lists only hours with failures; the graph shows all of the last 240."""
    last = ((now or time.time()) // HOUR) * HOUR
    counts = {float(t): int(n) for t, n in sparse}
    return [(h, counts.get(h, 0)) for h in (last - HOUR * i for i in range(HOURS - 1, -1, -1))]


def _bug_section(i: int, bug: dict[str, Any], failures: list[dict[str, Any]]) -> Html:
    name = str(bug["bug"])
    hourly = dense_hours(bug.get("hourly", []))
    mine = [f for f in failures if name in f.get("bugs", [])]
    where = Counter(str(f.get("provider") or f.get("node_provider") or "?") for f in mine)
    facts = table(
        ("Fails in 24 h", "Fails in 10 days", "Providers (fails)", "Query"),
        [(
            bug.get("fails24h", 0),
            sum(n for _, n in hourly),
            ", ".join(f"{p}: {n}" for p, n in where.most_common()) or "none",
            link(search_url(str(bug.get("query", ""))), bug.get("query", ""), title="search it"),
        )],
    )  # fmt: skip
    graph = (
        Html("")
        if bug.get("suppress-graph")
        else tag(
            "figure",
            hourly_bars(hourly, prefix=f"bug{i}", title=f"{name}: failures per hour, last 10 days"),
        )
    )
    samples = [
        (link(context_url(f["doc_id"]), when(f.get("ts"))), f.get("kind"), f.get("message", ""))
        for f in mine[:5]
    ]
    sample_table = (
        table(("Time (UTC)", "Kind", "Message"), samples, "Latest hits") if samples else Html("")
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
    return join(
        [
            summary,
            link("#uncategorized", "Uncategorized failures"),
            *(_bug_section(i, b, fails) for i, b in enumerate(rows)),
            _uncategorized(fails),
        ]
    )
