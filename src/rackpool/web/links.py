"""Links every page shares: an id to the search for every line carrying it."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

from rackpool.web.html import Html, h, link

ID_FIELDS = ("request_id", "global_request_id", "node_id", "instance_id")


def search_url(query: str, since: str = "10d") -> str:
    return f"/search?q={quote_plus(query)}&since={quote_plus(since)}"


def id_link(field: str, value: object) -> Html:
    """``value`` linking to every log line whose ``field`` is exactly it."""
    if value in (None, ""):
        return Html("")
    text = str(value).replace('"', "")
    return link(search_url(f'{field}:"{text}"'), text, title=f"log lines with {field} {text}")


def context_url(doc_id: object) -> str:
    return f"/context/{quote(str(doc_id), safe='')}"


def ids_cell(doc: dict[str, object]) -> Html:
    """The correlation ids of a log line, each a link to its search."""
    parts = [
        Html(f"{h(f)}: {id_link(f, doc[f])}") for f in ID_FIELDS if doc.get(f) not in (None, "")
    ]
    return Html("<br>".join(parts))
