"""Plots as inline SVG made on the server: bars with fill patterns and text labels,
so they read without colour (and in a screen reader, through titles and a caption)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rackpool.web.html import Html, h, join

# (pattern id, SVG for one 8x8 tile): told apart by shape, not only by colour
_PATTERNS = (
    ("solid", '<rect width="8" height="8" fill="#333"/>'),
    ("hatch", '<rect width="8" height="8" fill="#fff"/><path d="M0,8 L8,0" stroke="#000"/>'),
    ("dots", '<rect width="8" height="8" fill="#fff"/><circle cx="4" cy="4" r="1.6"/>'),
    (
        "cross",
        '<rect width="8" height="8" fill="#ddd"/><path d="M0,0 L8,8 M0,8 L8,0" stroke="#000"/>',
    ),
    ("vlines", '<rect width="8" height="8" fill="#fff"/><path d="M2,0 V8 M6,0 V8" stroke="#000"/>'),
    ("grey", '<rect width="8" height="8" fill="#999"/>'),
    ("hlines", '<rect width="8" height="8" fill="#fff"/><path d="M0,4 H8" stroke="#000"/>'),
    ("blank", '<rect width="8" height="8" fill="#fff"/>'),
)


def _defs(prefix: str) -> str:
    tiles = "".join(
        f'<pattern id="{prefix}-{name}" width="8" height="8" patternUnits="userSpaceOnUse">'
        f"{body}</pattern>"
        for name, body in _PATTERNS
    )
    return f"<defs>{tiles}</defs>"


def _fill(prefix: str, i: int) -> str:
    return f"url(#{prefix}-{_PATTERNS[i % len(_PATTERNS)][0]})"


def stacked_bars(
    rows: Sequence[tuple[str, dict[str, int]]], series: Sequence[str], *, prefix: str, title: str
) -> Html:
    """One horizontal bar per row (e.g. a provider), split into ``series`` (e.g. node
    states), each a pattern with its count written on it; a legend names the patterns."""
    label_w, bar_w, row_h = 110, 480, 26
    top = 24
    total_max = max([sum(c.values()) for _, c in rows] + [1])
    parts = [_defs(prefix), f'<text x="0" y="15" font-weight="bold">{h(title)}</text>']
    y = top
    for name, counts in rows:
        parts.append(f'<text x="0" y="{y + 17}">{h(name)}</text>')
        x = float(label_w)
        for i, s in enumerate(series):
            n = counts.get(s, 0)
            if not n:
                continue
            w = bar_w * n / total_max
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 4}" '
                f'fill="{_fill(prefix, i)}" stroke="#000"><title>{h(name)} {h(s)}: {n}</title></rect>'
            )
            if w >= 18:
                parts.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + 16}" text-anchor="middle" '
                    f'font-size="12" paint-order="stroke" stroke="#fff" stroke-width="3">{n}</text>'
                )
            x += w
        parts.append(
            f'<text x="{x + 4:.1f}" y="{y + 17}" font-size="12">{sum(counts.values())}</text>'
        )
        y += row_h
    legend_y = y + 8
    lx = 0
    for i, s in enumerate(series):
        parts.append(
            f'<rect x="{lx}" y="{legend_y}" width="14" height="14" fill="{_fill(prefix, i)}" '
            f'stroke="#000"/><text x="{lx + 18}" y="{legend_y + 12}" font-size="12">{h(s)}</text>'
        )
        lx += 24 + 7 * len(s)
    height = legend_y + 22
    width = max(label_w + bar_w + 40, lx)
    return _svg(width, height, title, parts)


def hourly_bars(
    buckets: Sequence[tuple[float, int]], *, prefix: str, title: str, now: float | None = None
) -> Html:
    """Failures per hour (e.g. 240 hours = 10 days): hatched bars, the peak and each
    day's start written as text."""
    n = max(len(buckets), 1)
    plot_w, plot_h, left, top = 720, 80, 34, 22
    bw = plot_w / n
    peak = max([c for _, c in buckets] + [1])
    parts = [
        _defs(prefix),
        f'<text x="0" y="14" font-weight="bold">{h(title)}</text>',
        f'<text x="{left - 4}" y="{top + 10}" text-anchor="end" font-size="11">{peak}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" font-size="11">0</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#000"/>',
    ]
    for i, (start, count) in enumerate(buckets):
        x = left + i * bw
        if count:
            bh = max(plot_h * count / peak, 2)
            stamp = time.strftime("%Y-%m-%d %H:00", time.gmtime(start))
            parts.append(
                f'<rect x="{x:.2f}" y="{top + plot_h - bh:.2f}" width="{max(bw, 1.5):.2f}" '
                f'height="{bh:.2f}" fill="{_fill(prefix, 1)}" stroke="#000" stroke-width="0.5">'
                f"<title>{stamp} UTC: {count}</title></rect>"
            )
        if time.gmtime(start).tm_hour == 0:
            parts.append(
                f'<line x1="{x:.2f}" y1="{top + plot_h}" x2="{x:.2f}" y2="{top + plot_h + 4}" '
                f'stroke="#000"/><text x="{x:.2f}" y="{top + plot_h + 15}" font-size="10">'
                f"{time.strftime('%m-%d', time.gmtime(start))}</text>"
            )
    total = sum(c for _, c in buckets)
    caption = f"{title}: {total} in {len(buckets)} hours, at most {peak} in one hour"
    return _svg(left + plot_w + 4, top + plot_h + 20, caption, parts)


def _svg(width: float, height: float, label: str, parts: list[str]) -> Html:
    return Html(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="{h(label)}">'
        f"<title>{h(label)}</title>{join(Html(p) for p in parts)}</svg>"
    )
