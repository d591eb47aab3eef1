"""Log search over the ops API: the query box, a time range, paging, highlighted hits,
a context link per line, and links from each id to every line carrying it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from rackpool.web.highlight import mark, terms
from rackpool.web.html import Html, h, join, link, table, tag, url, when
from rackpool.web.links import context_url, ids_cell
from rackpool.web.sources import SourceRefused, Sources

RANGES = ("15m", "1h", "6h", "24h", "3d", "10d", "30d")
SIZES = ("20", "50", "100", "200")
EXAMPLES = ('loglevel:ERROR', 'event:launch_failed', 'message:"Quota exceeded"', 'component:pool AND loglevel:WARNING')  # fmt: skip


def _form(q: str, since: str, until: str, size: str, fields: str) -> Html:
    options = join(
        tag("option", f"last {r}", value=r, selected="selected" if r == since else None)
        for r in RANGES
    )
    sizes = join(
        tag("option", s, value=s, selected="selected" if s == size else None) for s in SIZES
    )
    return Html(
        '<form class="search" method="get" action="/search" role="search">'
        f'<p><label>Query (Lucene subset) <input type="search" name="q" value="{h(q)}" '
        "placeholder='message:\"Quota exceeded\" AND loglevel:WARNING'></label></p>"
        f'<p><label>Since <select name="since">{options}</select></label> '
        f'<label>Until <input name="until" value="{h(until)}" size="12" '
        'placeholder="now, 2h, ISO time"></label> '
        f'<label>Per page <select name="size">{sizes}</select></label> '
        f'<label>More fields <input name="fields" value="{h(fields)}" size="14" '
        'placeholder="e.g. region,label"></label> '
        '<button type="submit">Search</button></p></form>'
    )


def _examples() -> Html:
    return tag(
        "p",
        join(["Examples: ", join((link(url("/search", q=e), e) for e in EXAMPLES), " · ")]),
    )


def _hit_row(hit: dict[str, Any], words: list[str], extra: list[str]) -> tuple[object, ...]:
    return (
        link(context_url(hit["id"]), when(hit.get("ts")), title="lines around this one"),
        hit.get("level", ""),
        hit.get("component", "") or hit.get("build_name", ""),
        Html(f'<span class="msg">{mark(str(hit.get("message", "")), words)}</span>'),
        ids_cell(hit),
        *(hit.get(f, "") for f in extra),
    )


async def render(sources: Sources, params: dict[str, str]) -> tuple[Html, int]:
    q = params.get("q", "").strip()
    since = params.get("since") if params.get("since") in RANGES else "24h"
    until = params.get("until", "").strip()
    size = params.get("size") if params.get("size") in SIZES else "50"
    fields = params.get("fields", "")
    extra = [f.strip() for f in fields.split(",") if f.strip()][:8]
    try:
        page = max(1, min(int(params.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    top = join([_form(q, since or "24h", until, size or "50", fields), _examples()])
    query = {"q": q, "since": since, "until": until or None, "page": page, "size": size}
    try:
        found = await sources.ops_get("/api/search", {k: v for k, v in query.items() if v})
    except SourceRefused as exc:
        if exc.code >= 500:
            raise
        return join(
            [top, tag("p", f"Query not accepted: {exc.message}", class_="err", role="alert")]
        ), 400
    hits, total = found["hits"], int(found["total"])
    words = terms(q)
    first = (page - 1) * int(size or 50) + 1
    summary = (
        f"{total} line(s) match; showing {first}–{first + len(hits) - 1}."
        if hits
        else "No line matches."
    )
    rows = [_hit_row(hit, words, extra) for hit in hits]
    return join(
        [
            top,
            tag("p", summary, role="status"),
            table(("Time (UTC)", "Level", "Daemon", "Message", "Ids", *extra), rows),
            _pager(params, page, int(size or 50), total),
        ]
    ), 200


def _pager(params: dict[str, str], page: int, size: int, total: int) -> Html:
    keep = {k: params.get(k) for k in ("q", "since", "until", "size", "fields")}
    links = []
    if page > 1:
        links.append(link(url("/search", **keep, page=page - 1), "← newer", rel="prev"))
    if page * size < total:
        links.append(link(url("/search", **keep, page=page + 1), "older →", rel="next"))
    return tag("nav", join(links, " · "), aria_label="pages") if links else Html("")


async def context(sources: Sources, doc_id: str, params: dict[str, str]) -> Html:
    """The lines before and after one line, from the same daemon's log (or build log)."""
    n = params.get("n", "10")
    n = n if n in ("5", "10", "25", "50", "100") else "10"
    got = await sources.ops_get(
        f"/api/docs/{quote(doc_id, safe='')}/context", {"before": n, "after": n}
    )
    rows = []
    for hit in got["hits"]:
        focus = str(hit["id"]) == doc_id
        msg = tag("strong", hit.get("message", "")) if focus else h(hit.get("message", ""))
        rows.append(
            (
                ("▶ " if focus else "") + when(hit.get("ts")),
                hit.get("level", ""),
                hit.get("component", ""),
                Html(f'<span class="msg">{msg}</span>'),
                ids_cell(hit),
            )
        )
    source = got["hits"][0].get("source", "") if got["hits"] else ""
    more = str(min(int(n) * 2, 100))
    return join(
        [
            tag("p", f"{n} lines before and after line {doc_id} (marked ▶) of {source}."),
            table(("Time (UTC)", "Level", "Daemon", "Message", "Ids"), rows),
            tag("p", link(url(context_url(doc_id), n=more), f"show {more} lines around it")),
        ]
    )
