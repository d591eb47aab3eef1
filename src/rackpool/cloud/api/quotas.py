"""Quota sets as Nova (``/compute/v2.1/os-quota-sets``) and Cinder
(``/volume/v3/{project}/os-quota-sets``) report them, for ``openstack quota show``.

Only what the region enforces is reported: Nova's instances, cores and ram (checked at
server create; the region's ``default_quota`` unless an admin set the project's own) and
metadata_items (per server). Cinder's resources are all -1 (no limit enforced), as in
``/volume/v3/limits``: this region has no volumes, a boot-from-volume server gets a local
root disk counted by the compute quota, and a 0 would make Zuul's launcher and nodepool
treat every boot-from-volume label as never fitting.
Reading another project's quota needs the admin role.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rackpool.cloud.api.common import JSON, auth, body_json, region_of
from rackpool.cloud.compute import ComputeService
from rackpool.cloud.identity import AuthContext
from rackpool.core.errors import BadRequest

NOVA = "/compute/v2.1/os-quota-sets/{target}"
NO_LIMIT = -1
METADATA_ITEMS = 128  # validation.metadata's per-server limit
CINDER_KEYS = ("volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes", "groups",
               "per_volume_gigabytes")  # fmt: skip


def _target(request: Request) -> tuple[AuthContext, str]:
    ctx = auth(request)
    target = request.path_params["target"]
    if target != ctx.project_id:
        ctx.require_cloud_admin()
    return ctx, target


def _nova(
    compute: ComputeService, engine: Any, target: str
) -> tuple[dict[str, int], dict[str, int]]:
    with engine.connect() as conn:
        limits, usage = compute.quota(conn, target), compute.usage(conn, target)
    return limits | {"metadata_items": METADATA_ITEMS}, usage | {"metadata_items": 0}


async def nova_get(request: Request) -> Response:
    _, target = _target(request)
    region = region_of(request)
    limits, _ = _nova(region.compute, region.engine, target)
    return JSON({"quota_set": {"id": target, **limits}})


async def nova_detail(request: Request) -> Response:
    _, target = _target(request)
    region = region_of(request)
    limits, usage = _nova(region.compute, region.engine, target)
    detail = {k: {"limit": v, "in_use": usage[k], "reserved": 0} for k, v in limits.items()}
    return JSON({"quota_set": {"id": target, **detail}})


async def nova_defaults(request: Request) -> Response:
    _, target = _target(request)
    q = region_of(request).config.default_quota
    limits = {"cores": q.cores, "ram": q.ram, "instances": q.instances}
    return JSON({"quota_set": {"id": target, **limits, "metadata_items": METADATA_ITEMS}})


async def nova_put(request: Request) -> Response:
    ctx = auth(request)
    region = region_of(request)
    ctx.require_cloud_admin()
    body = await body_json(request)
    qs = body.get("quota_set") if isinstance(body, dict) else None
    if not isinstance(qs, dict):
        raise BadRequest("'quota_set' is a required property and must be an object.")
    q = region.compute.set_quota(request.path_params["target"], qs)
    return JSON({"quota_set": q})


async def cinder_get(request: Request) -> Response:
    _, target = _target(request)
    region = region_of(request)
    _nova(region.compute, region.engine, target)  # 404 for an unknown project
    usage = request.query_params.get("usage", "false").lower() in ("1", "true", "yes")
    if usage:
        values: dict[str, Any] = {
            k: {"limit": NO_LIMIT, "in_use": 0, "reserved": 0, "allocated": 0} for k in CINDER_KEYS
        }
    else:
        values = dict.fromkeys(CINDER_KEYS, NO_LIMIT)
    return JSON({"quota_set": {"id": target, **values}})


async def cinder_defaults(request: Request) -> Response:
    _, target = _target(request)
    return JSON({"quota_set": {"id": target, **dict.fromkeys(CINDER_KEYS, NO_LIMIT)}})


routes = [
    Route(NOVA, nova_get, methods=["GET"]),
    Route(NOVA, nova_put, methods=["PUT"]),
    Route(NOVA + "/detail", nova_detail, methods=["GET"]),
    Route(NOVA + "/defaults", nova_defaults, methods=["GET"]),
]
for _prefix in ("/volume/v3/{project_id}", "/volume/v3"):
    routes += [
        Route(_prefix + "/os-quota-sets/{target}", cinder_get, methods=["GET"]),
        Route(_prefix + "/os-quota-sets/{target}/defaults", cinder_defaults, methods=["GET"]),
    ]
