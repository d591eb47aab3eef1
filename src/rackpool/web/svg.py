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


def _stamp(ts: float, span: float) -> str:
    fmt = "%H:%M" if span <= 86400 else "%m-%d %H:%M"
    return time.strftime(fmt, time.gmtime(ts))


def _axes(parts: list[str], left: int, top: int, w: int, ph: int, peak: float, unit: str) -> None:
    parts += [
        f'<text x="{left - 4}" y="{top + 10}" text-anchor="end" font-size="11">'
        f"{_num(peak)}{h(unit) if len(unit) <= 2 else ''}</text>",
        f'<text x="{left - 4}" y="{top + ph}" text-anchor="end" font-size="11">0</text>',
        f'<line x1="{left}" y1="{top + ph}" x2="{left + w}" y2="{top + ph}" stroke="#000"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#000"/>',
    ]


def _num(v: float) -> str:
    if v >= 100 or float(v).is_integer():
        return f"{v:.0f}"
    return f"{v:.2g}" if v < 1 else f"{v:.1f}"


def _time_labels(parts: list[str], starts: Sequence[float], left: int, bw: float, y: int) -> None:
    if not starts:
        return
    span = starts[-1] - starts[0] + (starts[1] - starts[0] if len(starts) > 1 else 0)
    for i in sorted({0, len(starts) // 2, len(starts) - 1}):
        anchor = "start" if i == 0 else "end" if i == len(starts) - 1 else "middle"
        x = left + i * bw + (bw if anchor == "end" else 0)
        parts.append(
            f'<text x="{x:.1f}" y="{y}" font-size="10" text-anchor="{anchor}">'
            f"{_stamp(starts[i] + (span / len(starts) if anchor == 'end' else 0), span)}</text>"
        )


def time_stacked(
    buckets: Sequence[tuple[float, dict[str, float]]],
    series: Sequence[str],
    *,
    prefix: str,
    title: str,
    unit: str = "",
) -> Html:
    """A bar per time bucket, stacked by ``series`` (a fill pattern each, named in the
    legend and in every piece's tooltip), with the peak and UTC times written."""
    left, top, pw, ph = 44, 22, 700, 110
    n = max(len(buckets), 1)
    bw = pw / n
    peak = max([sum(v.get(s, 0.0) for s in series) for _, v in buckets] + [0.0])
    scale = peak if peak > 0 else 1.0
    parts = [_defs(prefix), f'<text x="0" y="14" font-weight="bold">{h(title)}</text>']
    _axes(parts, left, top, pw, ph, peak, unit)
    for i, (start, values) in enumerate(buckets):
        y = float(top + ph)
        for j, s in enumerate(series):
            v = values.get(s, 0.0)
            if v <= 0:
                continue
            bh = ph * v / scale
            y -= bh
            parts.append(
                f'<rect x="{left + i * bw:.2f}" y="{y:.2f}" width="{max(bw - 0.5, 1):.2f}" '
                f'height="{bh:.2f}" fill="{_fill(prefix, j)}" stroke="#000" stroke-width="0.4">'
                f"<title>{time.strftime('%Y-%m-%d %H:%M', time.gmtime(start))} UTC {h(s)}: "
                f"{_num(v)}{h(unit)}</title></rect>"
            )
    _time_labels(parts, [b[0] for b in buckets], left, bw, top + ph + 14)
    height = top + ph + 24.0
    lx = 0.0
    for i, s in enumerate(series):
        if lx > 600:
            lx, height = 0.0, height + 18
        parts.append(
            f'<rect x="{lx:.0f}" y="{height:.0f}" width="14" height="14" fill="{_fill(prefix, i)}" '
            f'stroke="#000"/><text x="{lx + 18:.0f}" y="{height + 12:.0f}" font-size="12">'
            f"{h(s)}</text>"
        )
        lx += 30 + 7 * len(s)
    totals = ", ".join(f"{s} {_num(sum(v.get(s, 0.0) for _, v in buckets))}" for s in series)
    caption = f"{title}: " + (totals if series else "no data yet")
    return _svg(left + pw + 6, height + 22, caption, parts)


_DASHES = ("", "6,3", "2,3", "10,3,2,3")
_MARKS = (
    '<circle cx="{x}" cy="{y}" r="3"/>',
    '<rect x="{x}" y="{y}" width="6" height="6" transform="translate(-3,-3)"/>',
    '<path d="M{x},{y} m0,-4 l4,7 h-8 z"/>',
    '<path d="M{x},{y} m-4,-4 l8,8 m0,-8 l-8,8" stroke="#000"/>',
)


def time_lines(
    buckets: Sequence[tuple[float, dict[str, float | None]]],
    series: Sequence[str],
    *,
    title: str,
    unit: str = "s",
) -> Html:
    """A line per series (e.g. p50, p95), told apart by dash pattern and marker shape,
    each point's value in its tooltip; buckets without data leave a gap."""
    left, top, pw, ph = 44, 22, 700, 110
    n = max(len(buckets), 1)
    bw = pw / n
    values = [v for _, vs in buckets for v in vs.values() if v is not None]
    peak = max(values + [0.0])
    scale = peak if peak > 0 else 1.0
    parts = [f'<text x="0" y="14" font-weight="bold">{h(title)}</text>']
    _axes(parts, left, top, pw, ph, peak, unit)
    for j, s in enumerate(series):
        runs: list[list[tuple[float, float]]] = [[]]
        for i, (start, vs) in enumerate(buckets):
            v = vs.get(s)
            if v is None:
                runs.append([])
                continue
            x, y = left + (i + 0.5) * bw, top + ph - ph * v / scale
            runs[-1].append((x, y))
            stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(start))
            parts.append(
                f'<g fill="#000">{_MARKS[j % len(_MARKS)].format(x=f"{x:.1f}", y=f"{y:.1f}")}'
                f"<title>{stamp} UTC {h(s)}: {_num(v)}{h(unit)}</title></g>"
            )
        for run in runs:
            if len(run) > 1:
                pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                dash = _DASHES[j % len(_DASHES)]
                parts.append(
                    f'<polyline points="{pts}" fill="none" stroke="#000" stroke-width="1.5"'
                    + (f' stroke-dasharray="{dash}"' if dash else "")
                    + "/>"
                )
    _time_labels(parts, [b[0] for b in buckets], left, bw, top + ph + 14)
    y = top + ph + 24.0
    for j, s in enumerate(series):
        x = j * 120
        dash = _DASHES[j % len(_DASHES)]
        parts.append(
            f'<line x1="{x}" y1="{y + 7}" x2="{x + 24}" y2="{y + 7}" stroke="#000" '
            f'stroke-width="1.5"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
            f'<g fill="#000">{_MARKS[j % len(_MARKS)].format(x=x + 12, y=y + 7)}</g>'
            f'<text x="{x + 30}" y="{y + 12}" font-size="12">{h(s)}</text>'
        )
    last = {s: next((vs[s] for _, vs in reversed(buckets) if vs.get(s) is not None), None)
            for s in series}  # fmt: skip
    shown = ", ".join(f"{s} {_num(v)}{unit}" for s, v in last.items() if v is not None)
    caption = f"{title}: " + (f"latest {shown}" if shown else "no data yet")
    return _svg(left + pw + 6, y + 22, caption, parts)


def share_bars(rows: Sequence[tuple[str, float, str]], *, prefix: str, title: str) -> Html:
    """One horizontal bar per row (name, share 0..1, text written after the bar), each a
    different pattern, so the split reads without colour."""
    label_w, bar_w, row_h, top = 110, 460, 26, 24
    parts = [_defs(prefix), f'<text x="0" y="15" font-weight="bold">{h(title)}</text>']
    y = top
    for i, (name, share, text) in enumerate(rows):
        w = max(bar_w * share, 0.0)
        parts.append(
            f'<text x="0" y="{y + 17}">{h(name)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row_h - 4}" '
            f'fill="{_fill(prefix, i)}" stroke="#000"><title>{h(name)}: {h(text)}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 17}" font-size="12">{h(text)}</text>'
        )
        y += row_h
    caption = f"{title}: " + "; ".join(f"{n} {t}" for n, _, t in rows)
    return _svg(label_w + bar_w + 200, y + 6, caption, parts)


def quota_bars(
    rows: Sequence[tuple[str, float, float, float, str]], *, prefix: str, title: str
) -> Html:
    """One bar per row (name, this pool's use, others' use, limit, unit): the limit is an
    outlined empty box, filled from the left by the pool's use (solid) then the others'
    (hatched), with "used / limit (N%)" written after it, so it reads without colour."""
    label_w, bar_w, row_h, top = 150, 400, 26, 24
    parts = [_defs(prefix), f'<text x="0" y="15" font-weight="bold">{h(title)}</text>']
    said = []
    y = top
    for name, pool, other, limit, unit in rows:
        used = pool + other
        parts.append(
            f'<text x="0" y="{y + 17}">{h(name)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{bar_w}" height="{row_h - 4}" fill="#fff" '
            f'stroke="#000"><title>{h(name)} limit: {_num(limit)}{h(unit)}</title></rect>'
        )
        x = float(label_w)
        for i, (what, n) in enumerate((("this pool's nodes", pool), ("other servers", other))):
            w = min(bar_w * n / limit, label_w + bar_w - x) if limit > 0 else 0.0
            if n > 0 and w > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 4}" '
                    f'fill="{_fill(prefix, i)}" stroke="#000">'
                    f"<title>{h(name)} {what}: {_num(n)}{h(unit)}</title></rect>"
                )
                x += w
        pct = f" ({100 * used / limit:.0f}%)" if limit > 0 else ""
        over = " OVER THE LIMIT" if used > limit else ""
        text = f"{_num(used)} / {_num(limit)}{unit}{pct}{over}"
        parts.append(
            f'<text x="{label_w + bar_w + 6}" y="{y + 17}" font-size="12">{h(text)}</text>'
        )
        said.append(f"{name} {text}")
        y += row_h
    legend_y = y + 8
    for i, (what, lx) in enumerate((("this pool's nodes", 0), ("other servers", 150))):
        parts.append(
            f'<rect x="{lx}" y="{legend_y}" width="14" height="14" fill="{_fill(prefix, i)}" '
            f'stroke="#000"/><text x="{lx + 18}" y="{legend_y + 12}" font-size="12">{what}</text>'
        )
    parts.append(
        f'<rect x="300" y="{legend_y}" width="14" height="14" fill="#fff" stroke="#000"/>'
        f'<text x="318" y="{legend_y + 12}" font-size="12">free (up to the limit)</text>'
    )
    caption = f"{title}: " + ("; ".join(said) if said else "no provider has a limit")
    return _svg(label_w + bar_w + 200, legend_y + 22, caption, parts)
