"""What every rackpool HTTP API puts between the wire and its handlers, so that bad input
is a 4xx in that API's own error shape and never a 500.

- ``BodyGuard``: an ASGI middleware. A request body above ``max_bytes`` is refused with
  413, from its Content-Length before anything is read and while reading (chunked
  bodies); a body whose Content-Type is not JSON is refused with 415. Paths matching
  ``exempt`` (image uploads, streamed with their own cap) pass untouched.
- ``parse_json``: request bytes to a value; malformed JSON, numbers that do not fit
  (``1e999``, ``10**400``) and nesting deeper than ``max_depth`` are ``BadRequest``.
- ``query_int``: a query parameter as a bounded integer from ASCII digits only
  (``'１２'`` and ``'1e3'`` are refused, not read as 12 or 1000).

The guard knows nothing about error shapes: each API passes ``render``, which turns a
``RackpoolError`` into the ASGI response its clients parse. Errors raised while the
handler reads the body propagate to the API's own exception handlers.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from rackpool.core.errors import BadRequest, OverLimit, RackpoolError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Render = Callable[[Scope, RackpoolError], ASGIApp]

DEFAULT_MAX_BODY = 4 * 1024 * 1024
MAX_JSON_DEPTH = 32
# application/json, Glance's JSON-patch types and any application/*+json; a body sent
# without a Content-Type is read as JSON, as Nova and Keystone do.
_JSON_TYPE = re.compile(
    r"^application/(json|[\w.+-]*\+json|json-patch\+json|openstack-images-v2\.[01]-json-patch)$"
)


class UnsupportedMediaType(RackpoolError):
    """415: the body is not in a format this API reads."""

    code = 415
    fault = "unsupportedMediaType"


def is_json_type(content_type: str | None) -> bool:
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return bool(_JSON_TYPE.match(media))


def _too_large(limit: int) -> OverLimit:
    return OverLimit(f"Request body is larger than {limit} bytes; send a smaller request.")


class BodyGuard:
    """ASGI middleware enforcing the body size limit and the JSON content type."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        render: Render,
        exempt: re.Pattern[str] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.render = render
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            self.exempt is not None and self.exempt.match(f"{scope['method']} {scope['path']}")
        ):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        error = self._check_headers(headers)
        if error is not None:
            await self.render(scope, error)(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _check_headers(self, headers: dict[bytes, bytes]) -> RackpoolError | None:
        length = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        if length is not None:
            if not (length.isdigit() and len(length) <= 18):
                return BadRequest("Content-Length must be a decimal number of bytes.")
            if int(length) > self.max_bytes:
                return _too_large(self.max_bytes)
        has_body = chunked or (length is not None and int(length) > 0)
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if has_body and not is_json_type(content_type):
            return UnsupportedMediaType(
                f"Content-Type {content_type!r} is not supported; send application/json."
            )
        return None

    def _counting(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_bytes

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(limit)
            return message

        return counted


def _depth_exceeds(value: Any, max_depth: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def parse_json(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value of a request body; ``BadRequest`` names what is wrong."""
    if not raw.strip():
        raise BadRequest("The request body is empty; send a JSON object.")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            raise BadRequest(f"Request body nests deeper than {max_depth} levels.") from None
        raise BadRequest(f"Malformed request body: invalid JSON ({exc})") from None
    if _depth_exceeds(value, max_depth):
        raise BadRequest(f"Request body nests deeper than {max_depth} levels.")
    return value


def query_int(raw: str | None, name: str, default: int, lo: int, hi: int) -> int:
    """A query parameter as an integer in [lo, hi], written in ASCII digits."""
    if raw is None:
        return default
    text = raw.strip()
    digits = text[1:] if text[:1] in ("-", "+") else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 18:
        raise BadRequest(f"{name}: expected an integer between {lo} and {hi}, got {raw[:40]!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise BadRequest(f"{name}: must be between {lo} and {hi}, got {value}")
    return value


def query_number(raw: str | None, name: str, default: float, lo: float, hi: float) -> float:
    """A query parameter as a finite decimal number in [lo, hi], in ASCII."""
    if raw is None:
        return default
    text = raw.strip()
    if not (len(text) <= 40 and text.isascii() and _DECIMAL.match(text)):
        raise BadRequest(f"{name}: expected a number between {lo:g} and {hi:g}, got {raw[:40]!r}")
    value = float(text)
    if not lo <= value <= hi:  # also refuses inf from '1e999'; nan never matched
        raise BadRequest(f"{name}: must be between {lo:g} and {hi:g}, got {text[:40]}")
    return value


_DECIMAL = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,4})?$")
