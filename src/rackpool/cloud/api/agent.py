"""The agent boundary over HTTP (docs/agent-api.md) and the admin host API."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from rackpool.cloud.api.common import JSON, auth, body_json, region_of
from rackpool.cloud.hostcreds import AgentCaller
from rackpool.core import agentapi
from rackpool.core.errors import BadRequest, Forbidden, NotFound, Unauthorized


def _caller(request: Request) -> AgentCaller:
    """Who presents X-Agent-Token: a host by its own credential, or the region's
    enrollment token (good only for a first registration). Every agent call names the
    agent API version it speaks (none: 1.0); one this controller does not serve is a 406
    naming both versions (docs/agent-api.md "Versions")."""
    agentapi.check_agent(request.headers.get(agentapi.HEADER))
    token = request.headers.get("x-agent-token") or ""
    caller = region_of(request).hosts.credentials.identify(token)
    if caller is None:
        raise Unauthorized("agent token missing or wrong (X-Agent-Token)")
    return caller


def _host(request: Request, name: str | None = None) -> str:
    """The calling host's name; 403 unless it is ``name`` (when given)."""
    caller = _caller(request)
    if caller.host is None:
        raise Forbidden(
            "the region's enrollment token only registers a new host; present this host's "
            "own credential (returned by its first registration)"
        )
    if name is not None and caller.host != name:
        raise Forbidden(f"this credential belongs to host {caller.host}, not {name}")
    return caller.host


async def register(request: Request) -> Response:
    caller = _caller(request)
    body = await body_json(request)
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("'name' is required and must be a non-empty string")
    hosts = region_of(request).hosts
    if caller.host is not None and caller.host != name:
        raise Forbidden(f"this credential belongs to host {caller.host}, not {name}")
    if caller.enrolling and hosts.credentials.has(name):
        raise Forbidden(
            f"host {name} already has a credential: present it, or have an admin issue a new "
            f"one (rackpool cloud admin host credential {name})"
        )
    out = hosts.register(body)
    if caller.enrolling:
        secret = hosts.credentials.enroll(name)
        if secret is None:  # another enrollment of this name won the race
            raise Forbidden(f"host {name} already has a credential")
        out["credential"] = secret
    out["agent_api"] = agentapi.advertised()
    return JSON(out)


async def version(request: Request) -> Response:
    """The agent API versions this controller serves; no token needed (an agent asks
    before it registers, to refuse a controller older than itself)."""
    return JSON({"agent_api": agentapi.advertised()})


async def heartbeat(request: Request) -> Response:
    name = _host(request, request.path_params["name"])
    raw = await request.body()
    body = await body_json(request) if raw else {}
    return JSON(region_of(request).hosts.heartbeat(name, body))


async def pull(request: Request) -> Response:
    name = _host(request, request.path_params["name"])
    return JSON({"instances": region_of(request).hosts.pull(name)})


async def report(request: Request) -> Response:
    name = _host(request)
    body = await body_json(request)
    if isinstance(body, dict) and body.get("host", name) != name:
        raise Forbidden(f"this credential belongs to host {name}, not {body.get('host')}")
    # the instance must be on this host (404 otherwise), whatever the body says
    region_of(request).hosts.report(request.path_params["server_id"], body)
    return JSON({"ok": True})


async def image_file(request: Request) -> Response:
    name = _host(request)
    region = region_of(request)
    image_id = request.path_params["image_id"]
    if not region.hosts.uses_image(name, image_id):
        raise NotFound(f"image {image_id} is not used by an instance on host {name}")
    row = region.images.get_any(image_id)
    path = region.images.path(row["id"])
    if row["builtin"] or row["status"] != "active" or not path.exists():
        raise NotFound(f"image {row['id']} has no data")
    return FileResponse(path, headers={"X-Image-Checksum": row["checksum"] or ""})


async def admin_hosts(request: Request) -> Response:
    ctx = auth(request)
    region = region_of(request)
    ctx.require_cloud_admin()
    return JSON({"hosts": region.hosts.list_hosts()})


async def admin_host_action(request: Request) -> Response:
    ctx = auth(request)
    region = region_of(request)
    ctx.require_cloud_admin()
    name, action = request.path_params["name"], request.path_params["action"]
    if action == "enable":
        return JSON({"host": region.hosts.set_enabled(name, True)})
    if action in ("disable", "drain"):
        host = region.hosts.set_enabled(name, False, reason=f"{action} by {ctx.user_name}")
        return JSON({"host": host, "remaining_instances": host["instances"]})
    raise NotFound(f"unknown host action {action!r}; use enable, disable or drain")


async def admin_host_credential(request: Request) -> Response:
    """Issue host ``name`` a new credential (the old one stops working), shown once."""
    auth(request).require_cloud_admin()
    name = request.path_params["name"]
    secret = region_of(request).hosts.credentials.issue(name)
    return JSON({"host": name, "credential": secret})


routes = [
    Route(agentapi.VERSION_PATH, version, methods=["GET"]),
    Route("/agent/v1/hosts", register, methods=["POST"]),
    Route("/agent/v1/hosts/{name}/heartbeat", heartbeat, methods=["POST"]),
    Route("/agent/v1/hosts/{name}/instances", pull, methods=["GET"]),
    Route("/agent/v1/instances/{server_id}/report", report, methods=["POST"]),
    Route("/agent/v1/images/{image_id}/file", image_file, methods=["GET"]),
    Route("/admin/v1/hosts", admin_hosts, methods=["GET"]),
    Route("/admin/v1/hosts/{name}/credential", admin_host_credential, methods=["POST"]),
    Route("/admin/v1/hosts/{name}/{action}", admin_host_action, methods=["POST"]),
]
