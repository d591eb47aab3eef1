"""Nova's operator views of the region's hosts (admin only): ``os-services`` (each host
as a ``nova-compute`` service, the controller as ``nova-scheduler`` and
``nova-conductor``), ``os-hypervisors`` and an empty ``os-aggregates``.

A host is ``up`` while its heartbeat is fresh (as Nova's servicegroup decides at query
time, so a silent host shows ``down`` before the health check faults its instances);
``disabled`` hosts take no new servers. Microversion 2.1 shapes.
"""

from __future__ import annotations

import socket
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rackpool.cloud.api.common import JSON, auth, body_json, region_of
from rackpool.cloud.region import Region
from rackpool.cloud.views import iso_micro
from rackpool.core.errors import BadRequest, NotFound, RackpoolError

P = "/compute/v2.1"
COMPUTE = "nova-compute"
CONTROLLER_BINARIES = ("nova-scheduler", "nova-conductor")


class HypervisorUptimeNotImplemented(RackpoolError):
    code = 501
    fault = "notImplemented"


def _admin(request: Request) -> Region:
    ctx = auth(request)
    region = region_of(request)
    ctx.require_cloud_admin()
    return region


def _state(region: Region, h: dict[str, Any]) -> str:
    fresh = region.clock.now() - h["last_heartbeat"] <= region.config.hosts.heartbeat_timeout
    return "up" if h["state"] == "up" and fresh else "down"


def _services(region: Region) -> list[dict[str, Any]]:
    now = iso_micro(region.clock.now())
    controller = socket.gethostname()
    out = [
        {"id": uuid.uuid5(uuid.NAMESPACE_DNS, f"{b}.{region.config.region}").hex, "binary": b,
         "host": controller, "zone": "internal", "status": "enabled", "state": "up",
         "disabled_reason": None, "updated_at": now}
        for b in CONTROLLER_BINARIES
    ]  # fmt: skip
    for h in region.hosts.list_hosts():
        out.append(
            {"id": h["id"], "binary": COMPUTE, "host": h["name"], "zone": h["availability_zone"],
             "status": "enabled" if h["enabled"] else "disabled", "state": _state(region, h),
             "disabled_reason": h["disabled_reason"], "updated_at": iso_micro(h["last_heartbeat"])}
        )  # fmt: skip
    return out


async def services_list(request: Request) -> Response:
    region = _admin(request)
    rows = _services(region)
    for key in ("binary", "host"):
        if key in request.query_params:
            rows = [r for r in rows if r[key] == request.query_params[key]]
    return JSON({"services": rows})


async def service_action(request: Request) -> Response:
    """2.1's ``PUT /os-services/{enable,disable,disable-log-reason}``."""
    region = _admin(request)
    action = request.path_params["action"]
    body = await body_json(request)
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object with 'host' and 'binary'.")
    host, binary = body.get("host"), body.get("binary")
    if not isinstance(host, str) or not isinstance(binary, str):
        raise BadRequest("'host' and 'binary' are required strings.")
    if binary != COMPUTE:
        raise BadRequest(f"Only {COMPUTE} services (hosts) can be enabled or disabled here.")
    try:
        region.hosts.host_view(host)
    except NotFound:
        raise NotFound(f"Compute host {host} could not be found.") from None
    if action == "enable":
        h = region.hosts.set_enabled(host, True)
    elif action in ("disable", "disable-log-reason"):
        reason = body.get("disabled_reason")
        if reason is not None and not isinstance(reason, str):
            raise BadRequest("'disabled_reason' must be a string.")
        h = region.hosts.set_enabled(host, False, reason=reason)
    else:
        raise NotFound(
            f"Unknown service action {action!r}; use enable, disable, disable-log-reason."
        )
    service: dict[str, Any] = {"host": host, "binary": binary,
                               "status": "enabled" if h["enabled"] else "disabled"}  # fmt: skip
    if not h["enabled"]:
        service["disabled_reason"] = h["disabled_reason"]
    return JSON({"service": service})


def _hypervisor(region: Region, h: dict[str, Any], detail: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": h["id"],
        "hypervisor_hostname": h["name"],
        "state": _state(region, h),
        "status": "enabled" if h["enabled"] else "disabled",
    }
    if detail:
        body.update(
            vcpus=h["vcpus"], vcpus_used=h["vcpus_used"], memory_mb=h["ram_mb"],
            memory_mb_used=h["ram_mb_used"], local_gb=h["disk_gb"], local_gb_used=h["disk_gb_used"],
            running_vms=h["instances"], hypervisor_type=h["driver"], hypervisor_version=1,
            host_ip="127.0.0.1", service={"host": h["name"], "id": h["id"], "disabled_reason": h["disabled_reason"]},
            free_ram_mb=h["ram_mb"] - h["ram_mb_used"], free_disk_gb=h["disk_gb"] - h["disk_gb_used"],
            current_workload=0, disk_available_least=h["disk_gb"] - h["disk_gb_used"], cpu_info="{}",
        )  # fmt: skip
    return body


async def hypervisors(request: Request) -> Response:
    region = _admin(request)
    detail = request.url.path.endswith("/detail")
    hosts = region.hosts.list_hosts()
    return JSON({"hypervisors": [_hypervisor(region, h, detail) for h in hosts]})


def _find(region: Region, hid: str) -> dict[str, Any]:
    for h in region.hosts.list_hosts():
        if hid in (h["id"], h["name"]):
            return h
    raise NotFound(f"Hypervisor with ID {hid} could not be found.")


async def hypervisor_get(request: Request) -> Response:
    region = _admin(request)
    h = _find(region, request.path_params["hid"])
    return JSON({"hypervisor": _hypervisor(region, h, True)})


async def hypervisor_uptime(request: Request) -> Response:
    region = _admin(request)
    _find(region, request.path_params["hid"])
    raise HypervisorUptimeNotImplemented("Virt driver does not implement host uptime function.")


async def aggregates(request: Request) -> Response:
    _admin(request)
    return JSON({"aggregates": []})


routes = [
    Route(P + "/os-services", services_list, methods=["GET"]),
    Route(P + "/os-services/{action}", service_action, methods=["PUT"]),
    Route(P + "/os-hypervisors", hypervisors, methods=["GET"]),
    Route(P + "/os-hypervisors/detail", hypervisors, methods=["GET"]),
    Route(P + "/os-hypervisors/{hid}", hypervisor_get, methods=["GET"]),
    Route(P + "/os-hypervisors/{hid}/uptime", hypervisor_uptime, methods=["GET"]),
    Route(P + "/os-aggregates", aggregates, methods=["GET"]),
]
