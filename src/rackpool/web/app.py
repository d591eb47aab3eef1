"""The dashboard's ASGI app: read-only GET pages rendered on the server.

    /?range=6h           overview: providers, nodes by state, plots, requests, regions
    /capacity?period=24h node-hours each provider served; what each rack added
    /nodes /requests /labels      nodepool's columns; filters by query parameters
    /search?q=&since=&until=&size=&page=&fields=    log search
    /context/{doc_id}?n=10        the lines around one line
    /bugs                known bugs and uncategorized failures
    /health              "ok" (the dashboard itself; no source is asked)

A source that fails is shown as a message on the page (503), never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from rackpool.core.errors import RackpoolError
from rackpool.web.config import WebConfig
from rackpool.web.history import parse_metrics
from rackpool.web.html import Html, error_box, page
from rackpool.web.pages import bugs, capacity, overview, search, tables
from rackpool.web.sources import SourceError, Sources

log = logging.getLogger("rackpool.web.app")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def build_app(config: WebConfig, sources: Sources | None = None) -> Starlette:
    src = sources or Sources(config)

    def respond(
        title: str, body: Html, active: str, status: int = 200, refresh: bool = True
    ) -> Response:
        html = page(title, body, active=active, refresh=config.refresh if refresh else 0)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def view(
        title: str,
        active: str,
        render: Callable[[Request], Awaitable[Html | tuple[Html, int]]],
        refresh: bool = True,
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            refresh_now = refresh and request.query_params.get("refresh") != "0"
            try:
                got = await render(request)
            except RackpoolError as exc:
                log.warning(
                    "%s: %s", request.url.path, exc.message, extra={"event": "web_source_error"}
                )
                return respond(
                    title,
                    error_box(exc.message),
                    active,
                    exc.code if exc.code >= 400 else 503,
                    refresh_now,
                )
            body, status = got if isinstance(got, tuple) else (got, 200)
            return respond(title, body, active, status, refresh_now)

        return endpoint

    def params(request: Request) -> dict[str, str]:
        return dict(request.query_params)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def not_found(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        return respond(
            "Not found" if code == 404 else "Error", error_box(f"HTTP {code}"), "", code, False
        )

    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return respond(
            "Error",
            error_box("The dashboard failed to render this page; see its log."),
            "",
            500,
            False,
        )

    async def sample_forever(interval: float) -> None:
        """The history: the pool's /metrics every ``interval`` seconds (history.py)."""
        while True:
            started = time.monotonic()
            try:
                text = await src.pool_get("/metrics")
                await asyncio.to_thread(src.history.record, parse_metrics(text), time.time())
            except SourceError as exc:
                log.debug("no history sample: %s", exc.message)
            except Exception:
                log.exception("recording a history sample failed")
            await asyncio.sleep(max(0.5, interval - (time.monotonic() - started)))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        interval = config.history.interval
        sampler = asyncio.create_task(sample_forever(interval)) if interval > 0 else None
        try:
            yield
        finally:
            if sampler is not None:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            await src.close()

    routes = [
        Route("/", view("Overview", "/", lambda r: overview.render(src, params(r)))),
        Route(
            "/capacity", view("Capacity", "/capacity", lambda r: capacity.render(src, params(r)))
        ),
        Route("/nodes", view("Nodes", "/nodes", lambda r: tables.nodes(src, params(r)))),
        Route(
            "/requests", view("Requests", "/requests", lambda r: tables.requests(src, params(r)))
        ),
        Route("/labels", view("Labels", "/labels", lambda r: tables.labels(src, params(r)))),
        Route(
            "/search",
            view("Log search", "/search", lambda r: search.render(src, params(r)), refresh=False),
        ),
        Route(
            "/context/{doc_id}",
            view(
                "Log context",
                "/search",
                lambda r: search.context(src, r.path_params["doc_id"], params(r)),
                refresh=False,
            ),
        ),
        Route("/bugs", view("Known bugs", "/bugs", lambda r: bugs.render(src))),
        Route("/health", health),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: not_found, Exception: crash},
        lifespan=lifespan,
    )
