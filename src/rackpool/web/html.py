"""Server-side HTML: every value is escaped; ``Html`` marks text that already is HTML.

No template engine: pages are small functions returning ``Html``, so what reaches the
browser is visible in one place and nothing unescaped slips in.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import urlencode


class Html(str):
    """A string that is already safe HTML."""


def h(value: object) -> Html:
    """``value`` as HTML: escaped unless it already is ``Html``; None is empty."""
    if isinstance(value, Html):
        return value
    return Html(escape("" if value is None else str(value)))


def join(parts: Iterable[object], sep: str = "") -> Html:
    return Html(sep.join(h(p) for p in parts))


def tag(name: str, content: object = "", **attrs: object) -> Html:
    """``<name attrs>content</name>``; attribute names use ``_`` for ``-`` (``class_``)."""
    if not attrs:  # most table cells: the fast path
        return Html(f"<{name}>{h(content)}</{name}>")
    rendered = "".join(
        f' {k.rstrip("_").replace("_", "-")}="{escape(str(v))}"'
        for k, v in attrs.items()
        if v is not None and v is not False
    )
    return Html(f"<{name}{rendered}>{h(content)}</{name}>")


def link(href: str, text: object, **attrs: object) -> Html:
    return tag("a", text, href=href, **attrs)


def url(path: str, **params: object) -> str:
    """``path?query`` with the params that are set (None and "" dropped)."""
    kept = {k: str(v) for k, v in params.items() if v is not None and v != ""}
    return f"{path}?{urlencode(kept)}" if kept else path


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], caption: str = "") -> Html:
    head = tag("tr", join(tag("th", c, scope="col") for c in headers))
    body = join(tag("tr", join(tag("td", c) for c in row)) for row in rows)
    cap = tag("caption", caption) if caption else ""
    return Html(
        f'<div class="scroll"><table>{cap}<thead>{head}</thead><tbody>{body}</tbody></table></div>'
    )


def age(seconds_since: float | None, now: float | None = None) -> str:
    """``3m 20s``-style time since an epoch timestamp."""
    if not seconds_since:
        return ""
    s = max(0, int((now or time.time()) - seconds_since))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def when(ts: float | None) -> str:
    if not ts:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


NAV = (
    ("/", "Overview"),
    ("/capacity", "Capacity"),
    ("/nodes", "Nodes"),
    ("/requests", "Requests"),
    ("/labels", "Labels"),
    ("/search", "Log search"),
    ("/bugs", "Known bugs"),
)

CSS = """
body{font:15px/1.4 system-ui,sans-serif;margin:0;color:#111;background:#fff}
header{background:#223;color:#fff;padding:.4em .8em}
header nav{display:flex;flex-wrap:wrap;gap:.2em 1em}
header a{color:#fff;text-decoration:none;white-space:nowrap}
header a[aria-current]{text-decoration:underline;font-weight:bold}
main{padding:.5em .8em;max-width:80em}
.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #bbb;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#eee}
td.msg{font-family:monospace;white-space:pre-wrap;word-break:break-word}
mark{background:#ff0;font-weight:bold;text-decoration:underline}
.err{border:2px solid #a00;padding:.4em;background:#fee}
.bad{font-weight:bold}
form.search input[name=q]{width:min(40em,95%)}
svg{max-width:100%;height:auto}
footer{color:#555;font-size:85%;padding:.5em .8em}
"""


def page(title: str, body: object, *, active: str = "", refresh: int = 0) -> Html:
    """A whole page: nav, body, and a meta refresh when ``refresh`` > 0."""
    nav = join(
        link(href, text, aria_current="page" if href == active else None) for href, text in NAV
    )
    meta = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh > 0 else ""
    note = f"reloads every {refresh}s" if refresh > 0 else "does not reload"
    return Html(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta}<title>{h(title)} · rackpool</title><style>{CSS}</style></head><body>"
        f"<header><nav>{nav}</nav></header><main><h1>{h(title)}</h1>{h(body)}</main>"
        f"<footer>rackpool dashboard, read-only; rendered {h(when(time.time()))} UTC; "
        f"{h(note)}</footer></body></html>"
    )


def error_box(message: str) -> Html:
    return tag("p", message, class_="err", role="alert")
