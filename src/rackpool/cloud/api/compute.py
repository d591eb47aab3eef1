"""Nova v2.1 subset."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rackpool.cloud import views
from rackpool.cloud.api.common import JSON, auth, base_url, body_json, region_of
from rackpool.cloud.ports import NETWORK_NAME, PortService
from rackpool.core.errors import BadRequest

PREFIX = "/compute/v2.1"


def _version(base: str) -> dict[str, Any]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": "2.1",
        "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": f"{base}{PREFIX}/"}],
        "media-types": [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1",
            }
        ],
    }


async def versions(request: Request) -> Response:
    return JSON({"versions": [_version(base_url(request))]})


async def version(request: Request) -> Response:
    return JSON({"version": _version(base_url(request))})


def _api(request: Request) -> str:
    return base_url(request) + PREFIX


# -- flavors -------------------------------------------------------------------
async def flavors_list(request: Request) -> Response:
    auth(request)
    rows = region_of(request).compute.list_flavors()
    base = _api(request)
    if request.url.path.endswith("/detail"):
        return JSON({"flavors": [views.flavor(f, base) for f in rows]})
    return JSON(
        {
            "flavors": [
                {"id": f["id"], "name": f["name"], "links": views.flavor(f, base)["links"]}
                for f in rows
            ]
        }
    )


async def flavor_get(request: Request) -> Response:
    auth(request)
    row = region_of(request).compute.get_flavor(request.path_params["flavor_id"])
    return JSON({"flavor": views.flavor(row, _api(request))})


async def flavor_extra_specs(request: Request) -> Response:
    auth(request)
    region_of(request).compute.get_flavor(request.path_params["flavor_id"])
    return JSON({"extra_specs": {}})


async def flavor_create(request: Request) -> Response:
    ctx = auth(request)
    compute = region_of(request).compute
    ctx.require_cloud_admin()
    row = compute.create_flavor(await body_json(request))
    return JSON({"flavor": views.flavor(row, _api(request))})


async def flavor_delete(request: Request) -> Response:
    ctx = auth(request)
    compute = region_of(request).compute
    ctx.require_cloud_admin()
    compute.delete_flavor(request.path_params["flavor_id"])
    return Response(status_code=202)


# -- servers -------------------------------------------------------------------
async def servers_list(request: Request) -> Response:
    ctx = auth(request)
    params = request.query_params
    all_tenants = params.get("all_tenants", "0").lower() in ("1", "true", "yes", "")
    if "all_tenants" not in params:
        all_tenants = False
    rows, marker = region_of(request).compute.list_servers(ctx, params, all_tenants)
    base = _api(request)
    detail = request.url.path.endswith("/detail")
    if detail:
        items = [views.server(r, base, ctx.is_cloud_admin) for r in rows]
    else:
        items = [
            {"id": r.id, "name": r.name,
             "links": [{"rel": "self", "href": f"{base}/servers/{r.id}"}]}
            for r in rows
        ]  # fmt: skip
    body: dict[str, Any] = {"servers": items}
    if marker:
        q = {k: v for k, v in params.items() if k != "marker"}
        q["marker"] = marker
        qs = "&".join(f"{k}={v}" for k, v in q.items())
        path = "servers/detail" if detail else "servers"
        body["servers_links"] = [{"rel": "next", "href": f"{base}/{path}?{qs}"}]
    return JSON(body)


def _check_network_refs(request: Request, body: Any) -> None:
    """A requested network must be the region's one network (by id or name); there are
    no ports to pick, since each server gets its own."""
    s = body.get("server") if isinstance(body, dict) else None
    nets = s.get("networks") if isinstance(s, dict) else None
    if not isinstance(nets, list):
        return
    ports: PortService = request.app.state.ports
    net_id = ports.network.id
    for i, net in enumerate(nets):
        if not isinstance(net, dict):
            continue  # the compute service names the field
        if "port" in net:
            raise BadRequest(
                f"Port {net['port']} could not be found (networks[{i}].port): ports are made "
                "by server create; ask for a network instead."
            )
        ref = net.get("uuid")
        if isinstance(ref, str) and ref not in (net_id, NETWORK_NAME):
            raise BadRequest(
                f"Network {ref} could not be found (networks[{i}].uuid); this region has "
                f"one network, {NETWORK_NAME} ({net_id})."
            )


async def server_create(request: Request) -> Response:
    ctx = auth(request)
    region = region_of(request)
    body = await body_json(request)
    _check_network_refs(request, body)
    ids = region.compute.create_servers(
        ctx,
        body,
        getattr(request.state, "request_id", None),
        getattr(request.state, "global_request_id", None),
    )
    base = _api(request)
    if isinstance(body.get("server"), dict) and body["server"].get("return_reservation_id"):
        return JSON({"reservation_id": "r-" + ids[0][:8]}, status_code=202)
    sid = ids[0]
    link = f"{base}/servers/{sid}"
    return JSON(
        {"server": {"id": sid, "links": [{"rel": "self", "href": link}, {"rel": "bookmark", "href": link}],
                    "OS-DCF:diskConfig": "MANUAL", "security_groups": [{"name": "default"}],
                    "adminPass": "not-used-keys-only"}},
        status_code=202,
    )  # fmt: skip


async def server_get(request: Request) -> Response:
    ctx = auth(request)
    row = region_of(request).compute.get_server(ctx, request.path_params["server_id"])
    return JSON({"server": views.server(row, _api(request), ctx.is_cloud_admin)})


async def server_delete(request: Request) -> Response:
    ctx = auth(request)
    region_of(request).compute.delete_server(ctx, request.path_params["server_id"])
    return Response(status_code=204)


async def server_action(request: Request) -> Response:
    ctx = auth(request)
    compute = region_of(request).compute
    sid = request.path_params["server_id"]
    compute.get_server(ctx, sid)
    body = await body_json(request)
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("An action body must be an object with exactly one action key.")
    action, args = next(iter(body.items()))
    if action == "os-getConsoleOutput":
        text = compute.console_output(ctx, sid, args if isinstance(args, dict) else {})
        return JSON({"output": text})
    raise BadRequest(f"Action {action!r} is not supported; supported: os-getConsoleOutput")


async def server_metadata(request: Request) -> Response:
    ctx = auth(request)
    row = region_of(request).compute.get_server(ctx, request.path_params["server_id"])
    return JSON({"metadata": dict(row.metadata)})


async def server_ips(request: Request) -> Response:
    ctx = auth(request)
    row = region_of(request).compute.get_server(ctx, request.path_params["server_id"])
    return JSON({"addresses": views.server(row, _api(request), False)["addresses"]})


# -- keypairs ------------------------------------------------------------------
def _keypair(k: Any) -> dict[str, Any]:
    return {"name": k["name"], "public_key": k["public_key"], "fingerprint": k["fingerprint"]}


async def keypairs_list(request: Request) -> Response:
    ctx = auth(request)
    rows = region_of(request).compute.list_keypairs(ctx)
    return JSON({"keypairs": [{"keypair": _keypair(k)} for k in rows]})


async def keypair_create(request: Request) -> Response:
    ctx = auth(request)
    row, private = region_of(request).compute.create_keypair(ctx, await body_json(request))
    kp = _keypair(row)
    kp["user_id"] = ctx.user_id
    if private:
        kp["private_key"] = private
    return JSON({"keypair": kp})


async def keypair_get(request: Request) -> Response:
    ctx = auth(request)
    row = region_of(request).compute.get_keypair(ctx, request.path_params["name"])
    kp = _keypair(row)
    kp.update(
        user_id=ctx.user_id, id=row["id"], deleted=False, created_at=views.iso(row["created_at"])
    )
    return JSON({"keypair": kp})


async def keypair_delete(request: Request) -> Response:
    ctx = auth(request)
    region_of(request).compute.delete_keypair(ctx, request.path_params["name"])
    return Response(status_code=202)


# -- limits, zones ------------------------------------------------------------
async def limits(request: Request) -> Response:
    ctx = auth(request)
    project = request.query_params.get("tenant_id") or ctx.project_id
    if project != ctx.project_id:
        ctx.require_cloud_admin()
    return JSON({"limits": region_of(request).compute.limits(project)})


async def zones(request: Request) -> Response:
    auth(request)
    hosts = region_of(request).hosts.list_hosts()
    names = sorted({h["availability_zone"] for h in hosts} or {"nova"})
    return JSON(
        {"availabilityZoneInfo": [
            {"zoneName": z, "zoneState": {"available": any(
                h["state"] == "up" and h["enabled"] for h in hosts if h["availability_zone"] == z)},
             "hosts": None}
            for z in names
        ]}
    )  # fmt: skip


async def images_proxy(request: Request) -> Response:
    """Nova's deprecated image proxy: enough for clients that still look here."""
    ctx = auth(request)
    rows, _ = region_of(request).images.list(ctx, {}, 1000)
    return JSON(
        {
            "images": [
                {"id": i["id"], "name": i["name"], "status": i["status"].upper()} for i in rows
            ]
        }
    )


P = PREFIX
routes = [
    Route("/compute", versions, methods=["GET"]),
    Route("/compute/", versions, methods=["GET"]),
    Route(P, version, methods=["GET"]),
    Route(P + "/", version, methods=["GET"]),
    Route(P + "/flavors", flavors_list, methods=["GET"]),
    Route(P + "/flavors", flavor_create, methods=["POST"]),
    Route(P + "/flavors/detail", flavors_list, methods=["GET"]),
    Route(P + "/flavors/{flavor_id}", flavor_get, methods=["GET"]),
    Route(P + "/flavors/{flavor_id}", flavor_delete, methods=["DELETE"]),
    Route(P + "/flavors/{flavor_id}/os-extra_specs", flavor_extra_specs, methods=["GET"]),
    Route(P + "/servers", servers_list, methods=["GET"]),
    Route(P + "/servers", server_create, methods=["POST"]),
    Route(P + "/servers/detail", servers_list, methods=["GET"]),
    Route(P + "/servers/{server_id}", server_get, methods=["GET"]),
    Route(P + "/servers/{server_id}", server_delete, methods=["DELETE"]),
    Route(P + "/servers/{server_id}/action", server_action, methods=["POST"]),
    Route(P + "/servers/{server_id}/metadata", server_metadata, methods=["GET"]),
    Route(P + "/servers/{server_id}/ips", server_ips, methods=["GET"]),
    Route(P + "/os-keypairs", keypairs_list, methods=["GET"]),
    Route(P + "/os-keypairs", keypair_create, methods=["POST"]),
    Route(P + "/os-keypairs/{name}", keypair_get, methods=["GET"]),
    Route(P + "/os-keypairs/{name}", keypair_delete, methods=["DELETE"]),
    Route(P + "/limits", limits, methods=["GET"]),
    Route(P + "/os-availability-zone", zones, methods=["GET"]),
    Route(P + "/os-availability-zone/detail", zones, methods=["GET"]),
    Route(P + "/images", images_proxy, methods=["GET"]),
]
