"""Shared pieces of the API: JSON, faults, auth, URLs."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from rackpool.cloud.identity import AuthContext
from rackpool.cloud.region import Region
from rackpool.core.errors import Forbidden, RackpoolError
from rackpool.core.httpguard import parse_json

log = logging.getLogger("rackpool.cloud.api")


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def region_of(request: Request) -> Region:
    region: Region = request.app.state.region
    return region


def base_url(request: Request) -> str:
    region = region_of(request)
    if region.config.public_url:
        return region.config.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def fault(exc: RackpoolError) -> JSON:
    return JSON({exc.fault: {"message": exc.message, "code": exc.code}}, status_code=exc.code)


def identity_fault(exc: RackpoolError) -> JSON:
    title = {
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        409: "Conflict",
        413: "Request Entity Too Large",
        415: "Unsupported Media Type",
    }.get(exc.code, "Bad Request")
    return JSON(
        {"error": {"code": exc.code, "message": exc.message, "title": title}}, status_code=exc.code
    )


async def body_json(request: Request) -> Any:
    """The request's JSON body; the app's BodyGuard has already bounded its size and
    checked its Content-Type, ``parse_json`` bounds its depth and numbers."""
    return parse_json(await request.body())


READ_METHODS = ("GET", "HEAD")


def auth(request: Request) -> AuthContext:
    """The caller; a cloud reader reads as a cloud admin and may change nothing."""
    ctx = getattr(request.state, "auth", None)
    if ctx is None:
        ctx = region_of(request).identity.validate(request.headers.get("x-auth-token"))
        if ctx.is_cloud_reader:
            if request.method not in READ_METHODS:
                raise Forbidden("Policy doesn't allow this operation to be performed (the "
                                "reader role only reads).")  # fmt: skip
            ctx = replace(ctx, is_cloud_admin=True)
        request.state.auth = ctx
    return ctx
