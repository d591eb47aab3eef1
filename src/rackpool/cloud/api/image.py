"""Glance v2 subset."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from rackpool.cloud import views
from rackpool.cloud.api.common import JSON, auth, base_url, body_json, region_of
from rackpool.core.errors import BadRequest, NotFound


def _version(base: str) -> dict[str, object]:
    return {
        "id": "v2.16",
        "status": "CURRENT",
        "links": [{"rel": "self", "href": f"{base}/image/v2/"}],
    }


async def versions(request: Request) -> Response:
    return JSON({"versions": [_version(base_url(request))]}, status_code=300)


async def images_list(request: Request) -> Response:
    ctx = auth(request)
    region = region_of(request)
    rows, marker = region.images.list(ctx, request.query_params, region.config.page_limit)
    body: dict[str, object] = {
        "images": [views.image(i) for i in rows],
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    }
    if marker:
        q = {k: v for k, v in request.query_params.items() if k != "marker"}
        q["marker"] = marker
        body["next"] = "/v2/images?" + "&".join(f"{k}={v}" for k, v in q.items())
    return JSON(body)


async def image_create(request: Request) -> Response:
    ctx = auth(request)
    row = region_of(request).images.create(ctx, await body_json(request))
    return JSON(views.image(row), status_code=201)


async def image_get(request: Request) -> Response:
    ctx = auth(request)
    return JSON(views.image(region_of(request).images.get(ctx, request.path_params["image_id"])))


async def image_patch(request: Request) -> Response:
    ctx = auth(request)
    row = region_of(request).images.update(
        ctx, request.path_params["image_id"], await body_json(request)
    )
    return JSON(views.image(row))


async def image_delete(request: Request) -> Response:
    ctx = auth(request)
    region_of(request).images.delete(ctx, request.path_params["image_id"])
    return Response(status_code=204)


async def image_upload(request: Request) -> Response:
    ctx = auth(request)
    length = request.headers.get("content-length")
    declared = int(length) if length and length.isascii() and length.isdigit() else None
    await region_of(request).images.upload(
        ctx, request.path_params["image_id"], request.stream(), declared
    )
    return Response(status_code=204)


async def image_download(request: Request) -> Response:
    ctx = auth(request)
    region = region_of(request)
    row = region.images.get(ctx, request.path_params["image_id"])
    if row["status"] != "active" or row["builtin"]:
        raise NotFound(f"Image {row['id']} has no data to download")
    return FileResponse(
        region.images.path(row["id"]), headers={"Content-MD5": row["checksum"] or ""}
    )


async def image_import(request: Request) -> Response:
    raise BadRequest("Image import is not supported here; upload with PUT /v2/images/{id}/file")


async def schema(request: Request) -> Response:
    return JSON({"name": "image", "properties": {}, "additionalProperties": {"type": "string"}})


async def volume_versions(request: Request) -> Response:
    base = base_url(request)
    return JSON(
        {"versions": [{"id": "v3.0", "status": "CURRENT", "version": "3.0", "min_version": "3.0",
                       "updated": "2023-01-01T00:00:00Z",
                       "links": [{"rel": "self", "href": f"{base}/volume/v3/"}]}]},
        status_code=300,
    )  # fmt: skip


async def volume_limits(request: Request) -> Response:
    """No volume limit is enforced (-1), and none is needed: this region has no volumes; a
    boot-from-volume server gets a local root disk counted by the compute quota. A 0
    here would make Zuul's launcher and nodepool see every boot-from-volume label as
    never fitting (they need ``volumes`` 1 and ``volume-gb`` of the label's size)."""
    auth(request)
    return JSON(
        {"limits": {"rate": [], "absolute": {
            "maxTotalVolumes": -1, "maxTotalSnapshots": -1, "maxTotalVolumeGigabytes": -1,
            "maxTotalBackups": -1, "maxTotalBackupGigabytes": -1, "totalVolumesUsed": 0,
            "totalGigabytesUsed": 0, "totalSnapshotsUsed": 0, "totalBackupsUsed": 0,
            "totalBackupGigabytesUsed": 0}}}
    )  # fmt: skip


async def volumes_detail(request: Request) -> Response:
    auth(request)
    return JSON({"volumes": []})


async def volume_version(request: Request) -> Response:
    base = base_url(request)
    return JSON({"version": {"id": "v3.0", "status": "CURRENT", "version": "3.0", "min_version": "3.0",
                             "links": [{"rel": "self", "href": f"{base}/volume/v3/"}]}})  # fmt: skip


routes = [
    Route("/image", versions, methods=["GET"]),
    Route("/image/", versions, methods=["GET"]),
    Route("/image/v2/images", images_list, methods=["GET"]),
    Route("/image/v2/images", image_create, methods=["POST"]),
    Route("/image/v2/images/{image_id}", image_get, methods=["GET"]),
    Route("/image/v2/images/{image_id}", image_patch, methods=["PATCH"]),
    Route("/image/v2/images/{image_id}", image_delete, methods=["DELETE"]),
    Route("/image/v2/images/{image_id}/file", image_upload, methods=["PUT"]),
    Route("/image/v2/images/{image_id}/file", image_download, methods=["GET"]),
    Route("/image/v2/images/{image_id}/import", image_import, methods=["POST"]),
    Route("/image/v2/schemas/image", schema, methods=["GET"]),
    Route("/volume", volume_versions, methods=["GET"]),
    Route("/volume/", volume_versions, methods=["GET"]),
    Route("/volume/v3", volume_version, methods=["GET"]),
    Route("/volume/v3/", volume_version, methods=["GET"]),
    Route("/volume/v3/limits", volume_limits, methods=["GET"]),
    Route("/volume/v3/{project_id}/limits", volume_limits, methods=["GET"]),
    Route("/volume/v3/volumes/detail", volumes_detail, methods=["GET"]),
    Route("/volume/v3/{project_id}/volumes/detail", volumes_detail, methods=["GET"]),
    Route("/volume/v3/{project_id}/volumes", volumes_detail, methods=["GET"]),
]
