"""The ASGI application of one region controller."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator

from sqlalchemy.exc import DataError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rackpool.cloud.api import agent, compute, identity, image, network, quotas, services
from rackpool.cloud.api.common import JSON, fault, identity_fault
from rackpool.cloud.api.requestlog import RequestLog
from rackpool.cloud.ports import PortService
from rackpool.cloud.region import Region
from rackpool.cloud.workers import Kind, RegionWorkers
from rackpool.core.errors import BadRequest, NotFound, RackpoolError
from rackpool.core.httpguard import BodyGuard

log = logging.getLogger("rackpool.cloud.api")
# Image data is streamed to disk with its own size cap, not read as a JSON body.
IMAGE_UPLOAD = re.compile(r"^PUT /image/v2/images/[^/]+/file$")


def _render(path: str, exc: RackpoolError) -> Response:
    """``exc`` in the fault shape of the API serving ``path``."""
    if path.startswith("/identity"):
        return identity_fault(exc)
    if path.startswith("/network"):
        return network.neutron_fault(exc)
    return fault(exc)


async def _rackpool_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RackpoolError)
    return _render(request.url.path, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/network") and exc.status_code in (404, 405):
        if exc.status_code == 405:
            bad = BadRequest(f"Method {request.method} is not allowed on {request.url.path}")
            bad.code = 405
            return network.neutron_fault(bad)
        return network.neutron_fault(
            NotFound(f"The resource could not be found: {request.url.path}")
        )
    if exc.status_code == 404:
        return fault(NotFound(f"The resource could not be found: {request.url.path}"))
    if exc.status_code == 405:
        err = BadRequest(f"Method {request.method} is not allowed on {request.url.path}")
        return JSON({"badMethod": {"message": err.message, "code": 405}}, status_code=405)
    return JSON(
        {"computeFault": {"message": str(exc.detail), "code": exc.status_code}},
        status_code=exc.status_code,
    )


def _data_problem(exc: DataError) -> str:
    """What was wrong with a value the database refused (PostgreSQL checks what SQLite
    stores as given), in words that name no backend and no value."""
    text = str(exc.orig).splitlines()[0] if exc.orig is not None else ""
    if "NUL" in text:
        return "Invalid input: text must not contain NUL (\\u0000) characters."
    if "too long" in text:
        return f"Invalid input: a value is too long ({text.split('type ', 1)[-1]})."
    if "out of range" in text:
        return "Invalid input: a number is out of range."
    return "Invalid input: a value has the wrong form."


async def _data_error(request: Request, exc: Exception) -> Response:
    """A value the validation let through but the database refuses: the caller's 400,
    never a 500 (a safety net; validation should name the field first)."""
    assert isinstance(exc, DataError)
    log.warning("database refused a value on %s %s: %s", request.method, request.url.path,
                _data_problem(exc))  # fmt: skip
    return _render(request.url.path, BadRequest(_data_problem(exc)))


async def _crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSON(
        {"computeFault": {"message": "The server has either erred or is incapable of performing "
                          "the requested operation.", "code": 500}},
        status_code=500,
    )  # fmt: skip


async def root(request: Request) -> Response:
    """Runs on the event loop: it touches nothing but the app's config, so it answers
    however busy the worker pools are (load balancers and probes poll it)."""
    return JSON({"service": "rackpool region", "region": request.app.state.region.config.region})


def _offloaded(workers: RegionWorkers, routes: list[Route]) -> list[Route]:
    """Every handler runs in a worker thread, never on the event loop (cloud/workers.py):
    heartbeats in the ``heartbeat`` pool, the rest of the host boundary in the ``agent``
    pool, everything else in the ``api`` pool."""
    return [
        Route(
            r.path,
            workers.offload(r.endpoint, _pool_of(r.path)),
            methods=sorted(r.methods or ()),
            name=r.name,
        )
        for r in routes
    ]


def _pool_of(path: str) -> Kind:
    if path.startswith("/agent/"):
        return "heartbeat" if path.endswith("/heartbeat") else "agent"
    return "api"


def build_app(region: Region, run_background: bool = True) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(region.run_background(stop)) if run_background else None
        try:
            yield
        finally:
            stop.set()
            if task:
                await task

    app = Starlette(
        routes=[Route("/", root, methods=["GET"])]
        + _offloaded(
            region.workers,
            identity.routes
            + compute.routes
            + quotas.routes
            + services.routes
            + image.routes
            + network.routes
            + agent.routes,
        ),
        exception_handlers={
            RackpoolError: _rackpool_error,
            HTTPException: _http_error,
            DataError: _data_error,
            Exception: _crash,
        },
        lifespan=lifespan,
        middleware=[
            Middleware(RequestLog),
            Middleware(
                BodyGuard,
                max_bytes=region.config.max_body_bytes,
                render=lambda scope, exc: _render(scope["path"], exc),
                exempt=IMAGE_UPLOAD,
            ),
        ],
    )
    app.state.region = region
    app.state.ports = PortService(region.engine, region.config)
    return app
