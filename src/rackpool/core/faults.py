"""Errors as HTTP responses in OpenStack fault shape, for the pool and ops APIs.

``{"itemNotFound": {"message": ..., "code": 404}}``: the one shape their clients parse,
for rackpool's own errors and for Starlette's (no such route, wrong method).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from rackpool.core.errors import BadRequest, NotFound, RackpoolError


def fault(exc: RackpoolError) -> JSONResponse:
    """Every API error, in OpenStack fault shape."""
    return JSONResponse({exc.fault: {"message": exc.message, "code": exc.code}}, exc.code)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own 404/405 (no such route, wrong method), in the same fault shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return fault(NotFound(f"The resource could not be found: {request.url.path}"))
    err = BadRequest(f"{request.method} {request.url.path}: {exc.detail}")
    err.code, err.fault = exc.status_code, "badMethod" if exc.status_code == 405 else err.fault
    return fault(err)
