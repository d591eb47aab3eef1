"""Nodes, requests and labels with the columns nodepool's webapp shows, filterable
by URL (``/nodes?provider=r1&state=ready``)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from rackpool.web.html import Html, age, join, link, table, tag, url
from rackpool.web.links import id_link
from rackpool.web.sources import SourceError, Sources

NODE_COLUMNS = ("ID", "Provider", "Label", "Server ID", "Public IPv4", "IPv6", "State", "Age",
                "Locked", "Pool", "Hostname", "Private IPv4", "AZ", "Port", "Launcher",
                "Allocated to", "Hold job", "Comment", "Global request ID")  # fmt: skip
REQUEST_COLUMNS = ("Request ID", "Priority", "State", "Requestor", "Node types", "Nodes",
                   "Declined by")  # fmt: skip


def _filters(
    rows: list[dict[str, Any]], params: dict[str, str], keys: tuple[str, ...]
) -> list[dict[str, Any]]:
    for key in keys:
        want = params.get(key)
        if want:
            rows = [r for r in rows if want == r.get(key) or want in (r.get(key) or [])]
    return rows


def _filter_note(params: dict[str, str], keys: tuple[str, ...], path: str) -> Html:
    active = [f"{k} = {params[k]}" for k in keys if params.get(k)]
    if not active:
        return Html("")
    return tag("p", join(["Showing only " + ", ".join(active) + ". ", link(path, "Show all")]))


SIZES = (100, 500, 1000, 5000)
DEFAULT_SIZE = 500


def _page(params: dict[str, str], total: int) -> tuple[int, int]:
    """(first row index, rows per page) from ``page`` and ``size``: a 10,000-node pool
    is shown a page at a time, so the page stays quick and small (also on a phone)."""
    size = int(params["size"]) if params.get("size", "").isdigit() else DEFAULT_SIZE
    size = size if size in SIZES else DEFAULT_SIZE
    pages = max(1, -(-total // size))
    page = int(params["page"]) if params.get("page", "").isdigit() else 1
    return (min(max(page, 1), pages) - 1) * size, size


def _pager(path: str, params: dict[str, str], first: int, size: int, total: int) -> Html:
    keep = {k: v for k, v in params.items() if k not in ("page", "refresh")}
    page = first // size + 1
    links = []
    if first > 0:
        links.append(link(url(path, **keep, page=page - 1), "← previous", rel="prev"))
    if first + size < total:
        links.append(link(url(path, **keep, page=page + 1), "next →", rel="next"))
    sizes = join(
        ((tag("strong", n) if n == size else link(url(path, **{**keep, "size": n}), n))
         for n in SIZES),
        " ",
    )  # fmt: skip
    shown = f"showing {first + 1}–{min(first + size, total)}; " if total else ""
    return tag(
        "nav",
        join([shown, "per page: ", sizes, " ", join(links, " · ")]),
        aria_label="pages",
    )


def _list(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value or "")


async def _global_ids(sources: Sources) -> dict[str, str]:
    """Node id -> the global request id its creates carried (the pool's /api/nodes; the
    nodepool-style /node-list has no such column). Only that field is kept."""
    try:
        full = await sources.pool_get("/api/nodes")
    except SourceError:
        return {}
    return {str(n["id"]): str(n["global_request_id"]) for n in full if n.get("global_request_id")}


async def nodes(sources: Sources, params: dict[str, str]) -> Html:
    listed, gids = await asyncio.gather(sources.pool_get("/node-list.json"), _global_ids(sources))
    rows = _filters(listed, params, ("provider", "state", "label"))
    first, size = _page(params, len(rows))
    by_provider = {p: link(url("/nodes", provider=p), p) for p in {n.get("provider") for n in rows}}
    by_state = {s: link(url("/nodes", state=s), s) for s in {n.get("state") for n in rows}}
    body = [
        (
            id_link("node_id", n["id"]),
            by_provider[n.get("provider")],
            _list(n.get("label")),
            id_link("instance_id", n.get("server_id")),
            n.get("public_ipv4"),
            n.get("ipv6"),
            by_state[n.get("state")],
            age(n.get("age")),
            n.get("locked"),
            n.get("pool"),
            n.get("hostname"),
            n.get("private_ipv4"),
            n.get("AZ"),
            n.get("connection_port"),
            n.get("launcher"),
            id_link("request_id", n.get("allocated_to")),
            n.get("hold_job"),
            n.get("comment"),
            id_link("global_request_id", gids.get(str(n["id"]))),
        )  # fmt: skip
        for n in rows[first : first + size]
    ]
    return join(
        [
            _filter_note(params, ("provider", "state", "label"), "/nodes"),
            tag("p", f"{len(rows)} node(s)."),
            _pager("/nodes", params, first, size, len(rows)),
            table(NODE_COLUMNS, body),
        ]
    )


async def requests(sources: Sources, params: dict[str, str]) -> Html:
    rows = _filters(await sources.pool_get("/request-list.json"), params, ("state", "requestor"))
    first, size = _page(params, len(rows))
    body = [
        (
            id_link("request_id", r["id"]),
            r.get("relative_priority"),
            link(url("/requests", state=r.get("state")), r.get("state")),
            r.get("requestor"),
            _list(r.get("node_types")),
            join((id_link("node_id", n) for n in r.get("nodes") or []), " "),
            _list(r.get("declined_by")),
        )  # fmt: skip
        for r in rows[first : first + size]
    ]
    return join(
        [
            _filter_note(params, ("state", "requestor"), "/requests"),
            tag("p", f"{len(rows)} request(s)."),
            _pager("/requests", params, first, size, len(rows)),
            table(REQUEST_COLUMNS, body),
        ]
    )


async def labels(sources: Sources, params: dict[str, str]) -> Html:
    rows, nodes_ = await asyncio.gather(
        sources.pool_get("/label-list.json"), sources.pool_get("/node-list.json")
    )
    ready: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for n in nodes_:
        for lab in n.get("label") or []:
            total[lab] += 1
            ready[lab] += n.get("state") == "ready"
    body = [
        (
            r["label"],
            link(url("/nodes", label=r["label"], state="ready"), ready[r["label"]]),
            link(url("/nodes", label=r["label"]), total[r["label"]]),
        )  # fmt: skip
        for r in rows
    ]
    return table(("Label", "Ready nodes", "All nodes"), body)
