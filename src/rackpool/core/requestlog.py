"""What the HTTP APIs share to log one line per request after its response.

Each API has its own middleware (the region adds request ids, the ops API the ingest
host) and decides which requests are routine; this module watches the response and
writes the line the same way for all: method, path (never the query string, which can
hold a token or a search, nor the body), status and duration; a 5xx is ERROR, a refusal
(4xx) WARNING with the fault's message, a routine request DEBUG, the rest INFO.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]

MAX_FAULT_BODY = 4096  # bytes of an error body kept to find its message


def fault_message(body: bytes) -> str:
    """The message of an error body: OpenStack's ``{"badRequest": {"message": …}}``,
    Neutron's ``{"NeutronError": "…"}`` or the ops/pool shapes; "" if none."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(doc, dict):
        for value in doc.values():
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])[:500]
            if isinstance(value, str) and value:
                return value[:500]
    return ""


class ResponseWatch:
    """Wraps an ASGI ``send``: remembers the status and the start of an error body;
    ``add_headers`` (if given) are appended to the response's headers."""

    def __init__(self, send: Send, add_headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self._send = send
        self._add = add_headers or []
        self.status = 500  # what a request that never answered counts as
        self.fault = bytearray()
        self.start = time.perf_counter()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if self._add:
                message["headers"] = [*message.get("headers", ()), *self._add]
        elif message["type"] == "http.response.body" and self.status >= 400:
            room = max(0, MAX_FAULT_BODY - len(self.fault))
            self.fault.extend(message.get("body", b"")[:room])
        await self._send(message)

    def log(
        self,
        logger: logging.Logger,
        method: str,
        path: str,
        extra: dict[str, Any],
        routine: bool,
    ) -> None:
        """The request's line: ERROR, WARNING with the fault's message, DEBUG when
        ``routine``, else INFO. ``extra`` gains event, method, path, status, duration."""
        ms = (time.perf_counter() - self.start) * 1000
        fields = {"event": "api_request", "method": method, "path": path,
                  "status": self.status, "duration_ms": round(ms, 1), **extra}  # fmt: skip
        line = f"{method} {path} {self.status} {ms:.1f} ms"
        if self.status >= 500:
            logger.error(line, extra=fields)
        elif self.status >= 400:
            message = fault_message(bytes(self.fault))
            logger.warning(f"{line}: {message}" if message else line, extra=fields)
        elif routine:
            logger.debug(line, extra=fields)
        else:
            logger.info(line, extra=fields)
