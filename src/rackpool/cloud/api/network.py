"""Neutron v2.0 subset: the region's ``public`` network, its subnet, server ports, no
floating IPs, and the project's network quota.

Enough for ``openstack network|subnet|port list``, ``server create --network public``
and for clients that list networks or clean leaked ports and floating IPs (nodepool,
Zuul's launcher). Errors come in Neutron's shape: ``{"NeutronError": {"type", "message",
"detail"}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rackpool.cloud.api.common import JSON, auth, base_url, region_of
from rackpool.cloud.ports import Network, Port, PortService
from rackpool.cloud.views import iso
from rackpool.core.errors import BadRequest, NotFound, RackpoolError

PREFIX = "/network/v2.0"
CONTROL_PARAMS = {"fields", "limit", "marker", "page_reverse", "sort_key", "sort_dir"}
_GENERIC_TYPES = {400: "HTTPBadRequest", 401: "HTTPUnauthorized", 403: "HTTPForbidden",
                  404: "HTTPNotFound", 405: "HTTPMethodNotAllowed", 409: "HTTPConflict"}  # fmt: skip
# Neutron resources this region cannot create; their quota is 0 so nobody expects them.
NO_QUOTA = ("network", "subnet", "router", "floatingip", "security_group",
            "security_group_rule", "rbac_policy", "subnetpool")  # fmt: skip


class NetworkNotFound(NotFound):
    pass


def neutron_fault(exc: RackpoolError) -> JSON:
    name = type(exc).__name__
    kind = name if name not in ("NotFound", "BadRequest", "Conflict", "Forbidden",
                                "Unauthorized", "QuotaExceeded") else _GENERIC_TYPES.get(exc.code, name)  # fmt: skip
    return JSON(
        {"NeutronError": {"type": kind, "message": exc.message, "detail": ""}},
        status_code=exc.code,
    )


def ports_of(request: Request) -> PortService:
    svc: PortService = request.app.state.ports
    return svc


# -- views -----------------------------------------------------------------------------
def _network(n: Network) -> dict[str, Any]:
    return {
        "id": n.id, "name": n.name, "status": "ACTIVE", "admin_state_up": True, "shared": True,
        "router:external": False, "subnets": [n.subnet.id], "tenant_id": "", "project_id": "",
        "mtu": 1500, "port_security_enabled": False, "availability_zone_hints": [],
        "availability_zones": [], "ipv4_address_scope": None, "ipv6_address_scope": None,
        "description": "The region's instance network: every server gets one address here.",
        "tags": [], "is_default": True, "l2_adjacency": True, "revision_number": 0,
        "created_at": None, "updated_at": None,
    }  # fmt: skip


def _subnet(n: Network) -> dict[str, Any]:
    s = n.subnet
    return {
        "id": s.id, "name": n.name, "network_id": s.network_id, "tenant_id": "", "project_id": "",
        "ip_version": 4, "cidr": s.cidr, "gateway_ip": s.gateway_ip, "enable_dhcp": False,
        "allocation_pools": [{"start": s.pool_start, "end": s.pool_end}], "dns_nameservers": [],
        "host_routes": [], "ipv6_ra_mode": None, "ipv6_address_mode": None, "subnetpool_id": None,
        "service_types": [], "description": "", "tags": [], "revision_number": 0,
        "created_at": None, "updated_at": None,
    }  # fmt: skip


def _port(p: Port, admin: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": p.id, "name": "", "network_id": p.network_id, "tenant_id": p.project_id,
        "project_id": p.project_id, "mac_address": p.mac_address, "admin_state_up": True,
        "status": p.status, "device_id": p.device_id, "device_owner": p.device_owner,
        "fixed_ips": [{"subnet_id": p.subnet_id, "ip_address": p.ip_address}],
        "allowed_address_pairs": [], "extra_dhcp_opts": [], "security_groups": [],
        "port_security_enabled": False, "binding:vnic_type": "normal", "description": "",
        "tags": [], "revision_number": 0, "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
    }  # fmt: skip
    if admin:
        body["binding:host_id"] = p.host or ""
    return body


# -- list filtering as Neutron does it -------------------------------------------------
def _fixed_ip_pairs(wanted: list[str]) -> list[tuple[str, str]]:
    pairs = [tuple(w.split("=", 1)) for w in wanted]
    if any(len(p) != 2 or p[0] not in ("ip_address", "subnet_id") for p in pairs):
        raise BadRequest("fixed_ips filters look like fixed_ips=ip_address=ADDR or subnet_id=ID")
    return [(p[0], p[1]) for p in pairs]


def _matches(item: dict[str, Any], key: str, wanted: list[str]) -> bool:
    if key == "fixed_ips":
        return all(
            any(ip.get(k) == v for ip in item["fixed_ips"]) for k, v in _fixed_ip_pairs(wanted)
        )
    value = item[key]
    if isinstance(value, bool):
        return str(value).lower() in {w.lower() for w in wanted}
    if isinstance(value, list):
        return any(w in value for w in wanted)
    return str(value) in wanted


def listing(
    request: Request, collection: str, items: list[dict[str, Any]], keys: set[str]
) -> Response:
    """Filter on ``keys`` (a repeated filter is OR), pick ``fields``, page by limit/marker."""
    params: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        params.setdefault(k, []).append(v)
    for key, wanted in params.items():
        if key in CONTROL_PARAMS:
            continue
        if key not in keys:
            raise BadRequest(f"[{key}] is invalid attribute for filtering")
        if key == "fixed_ips":
            _fixed_ip_pairs(wanted)
        items = [i for i in items if _matches(i, key, wanted)]
    body: dict[str, Any] = {}
    if "limit" in params:
        try:
            limit = int(params["limit"][-1])
        except ValueError:
            raise BadRequest("limit must be a positive integer") from None
        if limit > 0:
            marker = params.get("marker", [None])[-1]
            if marker is not None:
                ids = [i["id"] for i in items]
                if marker not in ids:
                    raise BadRequest(f"marker [{marker}] not found")
                items = items[ids.index(marker) + 1 :]
            if len(items) > limit:
                items = items[:limit]
                kept = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
                q = urlencode([*kept, ("marker", items[-1]["id"])])
                href = f"{base_url(request)}{PREFIX}/{collection}?{q}"
                body[f"{collection}_links"] = [{"rel": "next", "href": href}]
    if "fields" in params:
        fields = set(params["fields"])
        items = [{k: v for k, v in i.items() if k in fields} for i in items]
    body[collection] = items
    return JSON(body)


# -- handlers --------------------------------------------------------------------------
FLOATINGIP_KEYS = {"id", "floating_ip_address", "floating_network_id", "port_id", "router_id",
                   "fixed_ip_address", "status", "tenant_id", "project_id", "description", "tags"}  # fmt: skip
PORT_KEYS = set(_port(Port("", "", "", "", "", "", "", "", "", None, 0.0, 0.0), admin=True))


async def versions(request: Request) -> Response:
    href = f"{base_url(request)}{PREFIX}/"
    return JSON(
        {
            "versions": [
                {"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": href}]}
            ]
        }
    )


async def version(request: Request) -> Response:
    base = f"{base_url(request)}{PREFIX}"
    names = {"network": "networks", "subnet": "subnets", "port": "ports", "floatingip": "floatingips", "quota": "quotas"}  # fmt: skip
    return JSON(
        {"resources": [{"name": n, "collection": c, "links": [{"rel": "self", "href": f"{base}/{c}"}]}
                       for n, c in names.items()]}
    )  # fmt: skip


async def extensions(request: Request) -> Response:
    auth(request)
    return JSON({"extensions": []})


async def networks(request: Request) -> Response:
    auth(request)
    net = ports_of(request).network
    item = _network(net)
    return listing(request, "networks", [item], set(item))


async def network_get(request: Request) -> Response:
    auth(request)
    net = ports_of(request).network
    if request.path_params["id"] != net.id:
        raise NetworkNotFound(f"Network {request.path_params['id']} could not be found.")
    return JSON({"network": _network(net)})


async def subnets(request: Request) -> Response:
    auth(request)
    net = ports_of(request).network
    item = _subnet(net)
    return listing(request, "subnets", [item], set(item))


async def subnet_get(request: Request) -> Response:
    auth(request)
    net = ports_of(request).network
    if request.path_params["id"] != net.subnet.id:
        raise NotFound(f"Subnet {request.path_params['id']} could not be found.")
    return JSON({"subnet": _subnet(net)})


async def ports(request: Request) -> Response:
    ctx = auth(request)
    device_ids = request.query_params.getlist("device_id") or None
    rows = ports_of(request).list_ports(ctx, device_ids)
    return listing(request, "ports", [_port(p, ctx.is_cloud_admin) for p in rows], PORT_KEYS)


async def port_get(request: Request) -> Response:
    ctx = auth(request)
    port = ports_of(request).get_port(ctx, request.path_params["id"])
    return JSON({"port": _port(port, ctx.is_cloud_admin)})


async def port_delete(request: Request) -> Response:
    ctx = auth(request)
    ports_of(request).delete_port(ctx, request.path_params["id"])
    return Response(status_code=204)


async def port_create(request: Request) -> Response:
    auth(request)
    raise BadRequest(
        "Ports are made by server create, one per server on network public; "
        "create a server instead."
    )


async def floatingips(request: Request) -> Response:
    auth(request)
    return listing(request, "floatingips", [], FLOATINGIP_KEYS)


async def floatingip_get(request: Request) -> Response:
    auth(request)
    raise NotFound(f"Floating IP {request.path_params['id']} could not be found.")


async def floatingip_create(request: Request) -> Response:
    auth(request)
    raise BadRequest(
        "This region has no floating IPs: servers get a routable address on network public."
    )


def _quota(request: Request) -> tuple[dict[str, int], dict[str, int]]:
    """(limits, usage) of the project in the path; another project's needs admin.

    A port comes only with a server, so the port limit is the instances quota."""
    ctx = auth(request)
    region = region_of(request)
    pid = request.path_params["project_id"]
    if pid != ctx.project_id:
        ctx.require_cloud_admin()
    with region.engine.connect() as conn:
        instances = region.compute.quota(conn, pid)["instances"]
    limits = {k: 0 for k in NO_QUOTA} | {"port": instances}
    usage = {k: 0 for k in NO_QUOTA} | {"port": ports_of(request).count_ports(pid)}
    return limits, usage


async def quota_get(request: Request) -> Response:
    limits, _ = _quota(request)
    return JSON({"quota": limits})


async def quota_details(request: Request) -> Response:
    limits, usage = _quota(request)
    return JSON(
        {"quota": {k: {"limit": v, "used": usage[k], "reserved": 0} for k, v in limits.items()}}
    )


async def quota_default(request: Request) -> Response:
    _quota(request)
    instances = region_of(request).config.default_quota.instances
    limits = {k: 0 for k in NO_QUOTA} | {"port": instances}
    return JSON({"quota": limits})


async def quotas_list(request: Request) -> Response:
    ctx = auth(request)
    ctx.require_cloud_admin()
    return JSON({"quotas": []})


def _r(path: str, fn: Callable[[Request], Any], *methods: str) -> Route:
    return Route(PREFIX + path, fn, methods=list(methods))


routes = [
    Route("/network", versions, methods=["GET"]),
    Route("/network/", versions, methods=["GET"]),
    _r("", version, "GET"),
    _r("/", version, "GET"),
    _r("/extensions", extensions, "GET"),
    _r("/networks", networks, "GET"),
    _r("/networks/{id}", network_get, "GET"),
    _r("/subnets", subnets, "GET"),
    _r("/subnets/{id}", subnet_get, "GET"),
    _r("/ports", ports, "GET"),
    _r("/ports", port_create, "POST"),
    _r("/ports/{id}", port_get, "GET"),
    _r("/ports/{id}", port_delete, "DELETE"),
    _r("/floatingips", floatingips, "GET"),
    _r("/floatingips", floatingip_create, "POST"),
    _r("/floatingips/{id}", floatingip_get, "GET"),
    _r("/quotas", quotas_list, "GET"),
    _r("/quotas/{project_id}", quota_get, "GET"),
    _r("/quotas/{project_id}/details", quota_details, "GET"),
    _r("/quotas/{project_id}/default", quota_default, "GET"),
]
