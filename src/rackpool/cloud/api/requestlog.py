"""Request ids and one log line per API request, as Nova and oslo do it.

Every response carries ``x-openstack-request-id: req-<uuid>`` (and, on compute,
``x-compute-request-id``, the same id). A client's ``X-Openstack-Request-Id`` header is
its *global* request id: accepted only in oslo's form ``req-<uuid>`` (anything else is
ignored, as oslo.middleware's request_id does) and logged as ``global_request_id``.
Both ids are in the log context of the handler (:func:`rackpool.core.logs.log_context`),
so every line it logs carries them, and handlers read them from ``request.state``.

After the response, one line: method, path (never the query string, which can hold a
token, nor the body), status, duration in ms, project, ids. Health and heartbeat
noise (``GET /``, agent heartbeats and pulls) is DEBUG, a refusal (4xx) is WARNING
with the fault's message, a 5xx ERROR, the rest INFO.
"""

from __future__ import annotations

import logging
import re
import uuid

from starlette.types import ASGIApp, Receive, Scope, Send

from rackpool.core.logs import log_context
from rackpool.core.requestlog import ResponseWatch

log = logging.getLogger("rackpool.cloud.api.requests")
_REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_NOISE = re.compile(r"^/$|^/agent/v1/hosts/[^/]+/(heartbeat|instances)$")


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


def valid_request_id(value: str | None) -> bool:
    return value is not None and _REQUEST_ID.match(value) is not None


class RequestLog:
    """ASGI middleware: request ids on every response and one log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        headers = dict(scope.get("headers") or ())
        offered = headers.get(b"x-openstack-request-id", b"").decode("latin-1").strip()
        global_id = offered if valid_request_id(offered) else None
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["global_request_id"] = global_id
        path: str = scope.get("path", "")
        ids = [(b"x-openstack-request-id", request_id.encode())]
        if path.startswith("/compute"):
            ids.append((b"x-compute-request-id", request_id.encode()))
        watch = ResponseWatch(send, ids)
        with log_context(request_id=request_id, global_request_id=global_id):
            try:
                await self.app(scope, receive, watch)
            finally:
                project = getattr(state.get("auth"), "project_id", None)
                watch.log(log, scope.get("method", ""), path, {"project": project},
                          routine=_NOISE.match(path) is not None)  # fmt: skip
