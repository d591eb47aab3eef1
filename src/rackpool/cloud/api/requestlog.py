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
import time
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rackpool.core.logs import log_context

log = logging.getLogger("rackpool.cloud.api.requests")
_REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_NOISE = re.compile(r"^/$|^/agent/v1/hosts/[^/]+/(heartbeat|instances)$")
_MAX_FAULT_BODY = 4096


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


def valid_request_id(value: str | None) -> bool:
    return value is not None and _REQUEST_ID.match(value) is not None


def _message(body: bytes) -> str:
    """The message of an OpenStack fault body (``{"badRequest": {"message": …}}``)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(doc, dict):
        for value in doc.values():
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])[:500]
            if isinstance(value, str) and value:  # Neutron: {"NeutronError": {...}} / detail
                return value[:500]
    return ""


class RequestLog:
    """ASGI middleware: request ids on every response and one log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = new_request_id()
        headers = dict(scope.get("headers") or ())
        offered = headers.get(b"x-openstack-request-id", b"").decode("latin-1").strip()
        global_id = offered if valid_request_id(offered) else None
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["global_request_id"] = global_id
        path: str = scope.get("path", "")
        compute = path.startswith("/compute")
        status = 500
        fault = bytearray()

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                ids = [(b"x-openstack-request-id", request_id.encode())]
                if compute:
                    ids.append((b"x-compute-request-id", request_id.encode()))
                message["headers"] = [*message.get("headers", ()), *ids]
            elif message["type"] == "http.response.body" and status >= 400:
                fault.extend(message.get("body", b"")[: max(0, _MAX_FAULT_BODY - len(fault))])
            await send(message)

        with log_context(request_id=request_id, global_request_id=global_id):
            try:
                await self.app(scope, receive, send_with_ids)
            finally:
                self._log(scope, state, status, start, bytes(fault))

    @staticmethod
    def _log(scope: Scope, state: dict[str, Any], status: int, start: float, fault: bytes) -> None:
        method, path = scope.get("method", ""), scope.get("path", "")
        ms = (time.perf_counter() - start) * 1000
        auth = state.get("auth")
        project = getattr(auth, "project_id", None)
        extra = {
            "event": "api_request",
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(ms, 1),
            "project": project,
        }
        line = f"{method} {path} {status} {ms:.1f} ms"
        if status >= 500:
            log.error(line, extra=extra)
        elif status >= 400:
            message = _message(fault)
            log.warning(f"{line}: {message}" if message else line, extra=extra)
        elif _NOISE.match(path):
            log.debug(line, extra=extra)
        else:
            log.info(line, extra=extra)
