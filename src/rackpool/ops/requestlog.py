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
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("rackpool.ops.api.requests")
_MAX_FAULT_BODY = 4096


def _message(body: bytes) -> str:
    """The message of a fault body (``{"forbidden": {"message": …}}``), else ""."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(doc, dict):
        for value in doc.values():
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])[:500]
    return ""


class RequestLog:
    """ASGI middleware: one line per request, after its response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = scope.setdefault("state", {})
        status = 500
        fault = bytearray()

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status >= 400:
                fault.extend(message.get("body", b"")[: max(0, _MAX_FAULT_BODY - len(fault))])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            _log(scope, state, status, start, bytes(fault))


def _log(scope: Scope, state: dict[str, Any], status: int, start: float, fault: bytes) -> None:
    method, path = scope.get("method", ""), scope.get("path", "")
    ms = (time.perf_counter() - start) * 1000
    extra: dict[str, Any] = {
        "event": "api_request",
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(ms, 1),
    }
    if state.get("ingest_host"):
        extra["ingest_host"] = state["ingest_host"]
    line = f"{method} {path} {status} {ms:.1f} ms"
    if status >= 500:
        log.error(line, extra=extra)
    elif status >= 400:
        message = _message(fault)
        log.warning(f"{line}: {message}" if message else line, extra=extra)
    elif method == "POST" and path == "/api/push":
        log.info(line, extra=extra)
    else:
        log.debug(line, extra=extra)
