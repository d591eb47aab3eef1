"""One log line per ops API request (``event: api_request``), as the region API logs its own.

The line has the method, the path (never the query string, which holds the searches
people run, nor the body), status, duration in ms and, for ``POST /api/ingest``, the
host whose token was shown (``ingest_host``). Levels: a refusal (4xx) is WARNING with
the fault's message (a forged ingest, a wrong token, a bad body), a 5xx ERROR, a push
(build output) INFO; reads and accepted ingests are DEBUG.

Why reads and ingests are DEBUG: the ops daemon indexes its own log, and the API is
what people and dashboards read that index with (``rackpool logs tail`` polls every
second) and every host's shipper writes to it (a request per batch per host). A line per
such request in the index they read would make a tail show its own polling and bury the
daemons' lines; the refusals, which an operator must see, stay at WARNING. Indexing the
daemon's own lines makes no request, so no line makes another (no feedback loop).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from rackpool.core.requestlog import ResponseWatch

log = logging.getLogger("rackpool.ops.api.requests")


class RequestLog:
    """ASGI middleware: one line per request, after its response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        watch = ResponseWatch(send)
        try:
            await self.app(scope, receive, watch)
        finally:
            method, path = scope.get("method", ""), scope.get("path", "")
            extra: dict[str, Any] = {}
            if state.get("ingest_host"):
                extra["ingest_host"] = state["ingest_host"]
            push = method == "POST" and path == "/api/push"
            watch.log(log, method, path, extra, routine=not push)
