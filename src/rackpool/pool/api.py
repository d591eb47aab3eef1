"""The pool's HTTP API for any CI, plus nodepool-style read endpoints and /metrics.

    POST /api/requests                 {"labels": [...], "priority": 100, "requestor": "ci"}
    GET  /api/requests/{id}?wait=S     fulfilled requests list nodes with connection facts
    GET  /api/nodes                    POST /api/nodes/{id}/release   POST /api/nodes/{id}/hold
    GET  /api/providers                POST /api/providers/{name}/pause|resume
    GET  /api/launchers                the live launchers sharing the store (any serves all)
    GET  /node-list /request-list /label-list /ready    nodepool's names and JSON fields
    GET  /metrics                      Prometheus

``/api/*`` needs ``Authorization: Bearer <token>`` (token from the pool config); the
nodepool-style read endpoints and /metrics are open, as nodepool's are. Every error is
rendered by one handler in OpenStack fault shape: ``{"itemNotFound": {...}}``.

No handler blocks the event loop: every one runs in a worker thread of a bounded pool
the daemon owns (``api.workers`` threads, core/workers.py), store (SQLite) calls
included, so a slow store call delays only its own request. ``GET /api/requests/{id}
?wait=S`` waits on the loop instead, sending each store read to the pool, so waiting
clients hold no thread.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from rackpool.core.errors import BadRequest, RackpoolError, Unauthorized
from rackpool.core.faults import fault, http_error
from rackpool.core.httpguard import BodyGuard, parse_json, query_number
from rackpool.core.workers import Workers
from rackpool.pool.launcher import Launcher
from rackpool.pool.model import Node, NodeRequest

MAX_WAIT = 600.0
MAX_LABELS = 100  # nodes in one request
MAX_TEXT = 255  # a label name, a requestor
MAX_COMMENT = 4096  # a hold comment
log = logging.getLogger("rackpool.pool.api")


def request_view(req: NodeRequest, launcher: Launcher) -> dict[str, Any]:
    d = req.to_dict()
    d.pop("extra", None)
    d["node_ids"] = d.pop("nodes")
    nodes = []
    if req.state == "fulfilled":
        for nid in req.nodes:
            try:
                nodes.append(launcher.store.get_node(nid).connection())
            except RackpoolError:
                continue
    d["nodes"] = nodes
    return d


def node_view(node: Node) -> dict[str, Any]:
    d = node.to_dict()
    for k in ("launch_state", "delete_state", "version"):
        d.pop(k, None)
    return d


def nodepool_node(node: Node, launcher_name: str) -> dict[str, Any]:
    """A /node-list row with nodepool's field names."""
    return {
        "id": node.id,
        "provider": node.provider,
        "label": [node.label],
        "server_id": node.external_id,
        "public_ipv4": node.public_ipv4 or None,
        "ipv6": node.public_ipv6 or None,
        "state": str(node.state),
        "age": int(node.state_time),
        "locked": "locked" if node.state == "in-use" else "unlocked",
        "pool": node.pool,
        "hostname": node.hostname,
        "private_ipv4": node.private_ipv4 or None,
        "AZ": node.az or None,
        "connection_port": node.connection_port,
        "launcher": launcher_name,
        "allocated_to": node.allocated_to,
        "hold_job": node.hold_job or None,
        "comment": node.comment or None,
    }


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    keys = list(rows[0])
    cells = [[",".join(v) if isinstance(v, list) else str(v) for v in r.values()] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines) + "\n"


def _listing(request: Request, rows: list[dict[str, Any]]) -> Response:
    wants_json = request.url.path.endswith(".json") or "json" in request.headers.get("accept", "")
    return JSONResponse(rows) if wants_json else PlainTextResponse(_table(rows))


async def crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return fault(RackpoolError("The pool failed to handle this request; see its log."))


def api_workers(launcher: Launcher) -> Workers:
    """The API's thread pool, sized by ``api.workers``; whoever makes it closes it."""
    return Workers({"api": launcher.config.api.workers}, f"pool-{launcher.config.pool_name}")


def create_app(launcher: Launcher, token: str, workers: Workers | None = None) -> Starlette:
    """The API; its handlers run in ``workers`` (default: a pool of its own, left to the
    process's exit to end; the daemon passes and closes its own)."""
    name = f"{launcher.config.pool_name}-launcher"
    workers = workers or api_workers(launcher)

    def auth(request: Request) -> None:
        given = request.headers.get("authorization", "")
        if given.lower().startswith("bearer "):
            given = given[7:]
        else:
            given = request.headers.get("x-auth-token", "")
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized("missing or wrong API token (Authorization: Bearer <token>)")

    async def body(request: Request) -> dict[str, Any]:
        data = parse_json(await request.body())
        if not isinstance(data, dict):
            raise BadRequest("request body must be a JSON object")
        return data

    async def create_request(request: Request) -> Response:
        auth(request)
        data = await body(request)
        labels = data.get("labels")
        if (
            not isinstance(labels, list)
            or not 0 < len(labels) <= MAX_LABELS
            or not all(isinstance(x, str) and 0 < len(x) <= MAX_TEXT for x in labels)
        ):
            raise BadRequest(
                f"labels: give a list of 1-{MAX_LABELS} label names (each 1-{MAX_TEXT} characters)"
            )
        priority = data.get("priority", 100)
        if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 999:
            raise BadRequest("priority: an integer 0-999 (lower is served first)")
        requestor = data.get("requestor", "")
        if not isinstance(requestor, str) or len(requestor) > MAX_TEXT:
            raise BadRequest(f"requestor: a string of at most {MAX_TEXT} characters")
        req = launcher.submit(labels, priority, requestor)
        return JSONResponse(request_view(req, launcher), status_code=201)

    async def get_request(request: Request) -> Response:
        auth(request)
        rid = request.path_params["id"]
        wait = query_number(request.query_params.get("wait"), "wait", 0.0, 0.0, MAX_WAIT)
        deadline = time.monotonic() + wait
        req = await workers.run("api", launcher.store.get_request, rid)
        while not req.done and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
            # the store's watch-fed copy while polling (ZooKeeper: no read per poll)
            req = await workers.run("api", launcher.store.get_request, rid, True)
        return JSONResponse(await workers.run("api", request_view, req, launcher))

    async def list_nodes(request: Request) -> Response:
        auth(request)
        return JSONResponse([node_view(n) for n in launcher.store.list_nodes()])

    async def get_node(request: Request) -> Response:
        auth(request)
        return JSONResponse(node_view(launcher.store.get_node(request.path_params["id"])))

    async def release(request: Request) -> Response:
        auth(request)
        return JSONResponse(node_view(launcher.release(request.path_params["id"])))

    async def hold(request: Request) -> Response:
        auth(request)
        data = await body(request) if await request.body() else {}
        comment = data.get("comment", "")
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            raise BadRequest(f"comment: a string of at most {MAX_COMMENT} characters")
        return JSONResponse(node_view(launcher.hold(request.path_params["id"], comment)))

    async def providers(request: Request) -> Response:
        auth(request)
        return JSONResponse([p.to_dict() for p in launcher.provider_status().values()])

    async def launchers(request: Request) -> Response:
        auth(request)
        rows = [
            {"id": lid, **{k: v for k, v in info.items() if k != "id"}, "self": lid == launcher.id}
            for lid, info in launcher.store.launchers().items()
        ]
        return JSONResponse(rows)

    async def pause(request: Request) -> Response:
        auth(request)
        action = request.path_params["action"]
        if action not in ("pause", "resume"):
            raise BadRequest(f"unknown provider action {action!r}: use pause or resume")
        paused = action == "pause"
        return JSONResponse(launcher.set_paused(request.path_params["name"], paused).to_dict())

    async def node_list(request: Request) -> Response:
        rows = [nodepool_node(n, name) for n in launcher.store.list_nodes()]
        if nid := request.query_params.get("node_id"):
            rows = [r for r in rows if r["id"] == nid]
        return _listing(request, rows)

    async def request_list(request: Request) -> Response:
        rows = [
            {
                "id": r.id,
                "relative_priority": r.priority,
                "state": str(r.state),
                "requestor": r.requestor,
                "node_types": list(r.labels),
                "nodes": list(r.nodes),
                "declined_by": list(r.declined_by),
            }
            for r in launcher.store.list_requests()
        ]
        return _listing(request, rows)

    async def label_list(request: Request) -> Response:
        labels = sorted({lab for p in launcher.providers.values() for lab in p.labels()})
        return _listing(request, [{"label": lab} for lab in labels])

    async def ready(request: Request) -> Response:
        if launcher.ticks > 0:
            return PlainTextResponse("OK")
        return PlainTextResponse("starting", status_code=503)

    async def metrics(request: Request) -> Response:
        return Response(launcher.metrics.render(), media_type="text/plain; version=0.0.4")

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RackpoolError)
        return fault(exc)

    on_loop = {get_request}  # waits on the loop; each store read goes to the pool
    routes = [
        Route("/api/requests", create_request, methods=["POST"]),
        Route("/api/requests/{id}", get_request, methods=["GET"]),
        Route("/api/nodes", list_nodes, methods=["GET"]),
        Route("/api/nodes/{id}", get_node, methods=["GET"]),
        Route("/api/nodes/{id}/release", release, methods=["POST"]),
        Route("/api/nodes/{id}/hold", hold, methods=["POST"]),
        Route("/api/providers", providers, methods=["GET"]),
        Route("/api/launchers", launchers, methods=["GET"]),
        Route("/api/providers/{name}/{action:str}", pause, methods=["POST"]),
        Route("/node-list", node_list),
        Route("/node-list.json", node_list),
        Route("/request-list", request_list),
        Route("/request-list.json", request_list),
        Route("/label-list", label_list),
        Route("/label-list.json", label_list),
        Route("/ready", ready),
        Route("/metrics", metrics),
    ]
    routes = [
        r
        if r.endpoint in on_loop
        else Route(r.path, workers.offload(r.endpoint, "api"), methods=r.methods, name=r.name)
        for r in routes
    ]
    guard = Middleware(
        BodyGuard,
        max_bytes=launcher.config.api.max_body_bytes,
        render=lambda scope, exc: fault(exc),
    )
    return Starlette(
        routes=routes,
        exception_handlers={RackpoolError: on_error, HTTPException: http_error, Exception: crash},
        middleware=[guard],
    )
