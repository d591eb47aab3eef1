"""The agent boundary over HTTP (docs/agent-api.md) and the admin host API."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from rackpool.cloud.api.common import JSON, auth, body_json, region_of
from rackpool.core.errors import NotFound, Unauthorized


def _agent(request: Request) -> None:
    token = request.headers.get("x-agent-token") or ""
    expected = region_of(request).config.agent_token
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("agent token missing or wrong (X-Agent-Token)")


async def register(request: Request) -> Response:
    _agent(request)
    return JSON(region_of(request).hosts.register(await body_json(request)))


async def heartbeat(request: Request) -> Response:
    _agent(request)
    raw = await request.body()
    body = await body_json(request) if raw else {}
    return JSON(region_of(request).hosts.heartbeat(request.path_params["name"], body))


async def pull(request: Request) -> Response:
    _agent(request)
    return JSON({"instances": region_of(request).hosts.pull(request.path_params["name"])})


async def report(request: Request) -> Response:
    _agent(request)
    region_of(request).hosts.report(request.path_params["server_id"], await body_json(request))
    return JSON({"ok": True})


async def image_file(request: Request) -> Response:
    _agent(request)
    region = region_of(request)
    row = region.images.get_any(request.path_params["image_id"])
    path = region.images.path(row["id"])
    if row["builtin"] or row["status"] != "active" or not path.exists():
        raise NotFound(f"image {row['id']} has no data")
    return FileResponse(path, headers={"X-Image-Checksum": row["checksum"] or ""})


async def admin_hosts(request: Request) -> Response:
    ctx = auth(request)
    region = region_of(request)
    region.compute.require_admin(ctx)
    return JSON({"hosts": region.hosts.list_hosts()})


async def admin_host_action(request: Request) -> Response:
    ctx = auth(request)
    region = region_of(request)
    region.compute.require_admin(ctx)
    name, action = request.path_params["name"], request.path_params["action"]
    if action == "enable":
        return JSON({"host": region.hosts.set_enabled(name, True)})
    if action in ("disable", "drain"):
        host = region.hosts.set_enabled(name, False, reason=f"{action} by {ctx.user_name}")
        return JSON({"host": host, "remaining_instances": host["instances"]})
    raise NotFound(f"unknown host action {action!r}; use enable, disable or drain")


routes = [
    Route("/agent/v1/hosts", register, methods=["POST"]),
    Route("/agent/v1/hosts/{name}/heartbeat", heartbeat, methods=["POST"]),
    Route("/agent/v1/hosts/{name}/instances", pull, methods=["GET"]),
    Route("/agent/v1/instances/{server_id}/report", report, methods=["POST"]),
    Route("/agent/v1/images/{image_id}/file", image_file, methods=["GET"]),
    Route("/admin/v1/hosts", admin_hosts, methods=["GET"]),
    Route("/admin/v1/hosts/{name}/{action}", admin_host_action, methods=["POST"]),
]
