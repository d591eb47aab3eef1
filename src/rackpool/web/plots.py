"""The overview's plots over time, from the dashboard's history of the pool (history.py):
nodes in use by provider (stacked), launch→ready time percentiles, launch failures by
kind (stacked), request wait time percentiles."""

from __future__ import annotations

import time

from rackpool.web.history import Bucket, History, by_first, by_second, quantile
from rackpool.web.html import Html, join, link, tag, url, when
from rackpool.web.svg import time_lines, time_stacked

RANGES = {"1h": 3600, "6h": 6 * 3600, "24h": 86400, "3d": 3 * 86400, "10d": 10 * 86400}
DEFAULT_RANGE = "6h"
BUCKETS = 60


def span(value: str | None) -> str:
    return value if value in RANGES else DEFAULT_RANGE


def _range_links(path: str, current: str, param: str = "range") -> Html:
    return tag(
        "p",
        join(
            [
                "Show the last: ",
                join(
                    (
                        tag("strong", r)
                        if r == current
                        else link(url(path, **{param: r}), r, title=f"last {r}")
                        for r in RANGES
                    ),
                    " · ",
                ),
            ]
        ),
    )


def coverage_note(history: History, since: float) -> Html:
    first = history.first
    if first is None:
        return tag(
            "p",
            "No history yet: the dashboard samples the pool's /metrics every "
            f"{history.interval:.0f} s, the plots fill from its first samples.",
        )
    if first > since:
        return tag(
            "p",
            f"History starts {when(first)} UTC (when this dashboard first read the pool); "
            f"{len(history)} samples.",
        )
    return Html("")


def _percentiles(buckets: list[Bucket], attr: str) -> list[tuple[float, dict[str, float | None]]]:
    return [
        (
            b.start,
            {"p50": quantile(0.5, getattr(b, attr)), "p95": quantile(0.95, getattr(b, attr))},
        )
        for b in buckets
    ]


def section(history: History, range_: str, providers: list[str], now: float | None = None) -> Html:
    now = now or time.time()
    since = now - RANGES[range_]
    buckets = history.buckets(since, now, BUCKETS)
    in_use = [(b.start, by_first(b.nodes, ("in-use",))) for b in buckets]
    in_use_series = sorted({p for _, v in in_use for p in v} | set(providers))
    errors = [(b.start, by_second(b.errors)) for b in buckets]
    kinds = sorted({k for _, v in errors for k in v})
    step = RANGES[range_] / BUCKETS
    step_text = f"{step / 60:.0f} min" if step < 3600 else f"{step / 3600:.1f} h"
    return join(
        [
            tag("h2", f"Over the last {range_}", id="history"),
            _range_links("/", range_),
            coverage_note(history, since),
            tag(
                "figure",
                time_stacked(
                    in_use, in_use_series, prefix="inuse", title="Nodes in use by provider",
                ),
            ),
            tag(
                "figure",
                time_lines(_percentiles(buckets, "launch"), ("p50", "p95"),
                           title="Launch to ready time (percentiles)"),
            ),
            tag(
                "figure",
                time_stacked(
                    errors, kinds, prefix="fails", title=f"Launch failures by kind (per {step_text})"
                ),
            ),
            tag(
                "figure",
                time_lines(_percentiles(buckets, "wait"), ("p50", "p95"),
                           title="Request wait time, submitted to fulfilled (percentiles)"),
            ),
        ]
    )  # fmt: skip
