"""Images (the Glance part of a region): metadata in the database, bytes on disk."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, insert, or_, select, update

from rackpool.cloud import validation
from rackpool.cloud.config import ImageLimits
from rackpool.cloud.db.schema import images
from rackpool.cloud.identity import AuthContext
from rackpool.core.clock import Clock
from rackpool.core.errors import BadRequest, Conflict, Forbidden, NotFound, OverLimit

log = logging.getLogger("rackpool.cloud.images")

DISK_FORMATS = ("raw", "qcow2", "vhd", "vmdk", "vdi", "iso", "ami", "ari", "aki", "ploop")
CONTAINER_FORMATS = ("bare", "ovf", "ova", "docker", "tar", "ami", "ari", "aki", "compressed")
CORE_KEYS = {
    "id", "name", "visibility", "disk_format", "container_format", "min_disk", "min_ram",
    "protected", "tags", "os_hidden",
}  # fmt: skip
READ_ONLY = {"status", "size", "checksum", "owner", "created_at", "updated_at", "self", "file", "schema",
             "os_hash_algo", "os_hash_value", "virtual_size", "direct_url", "locations"}  # fmt: skip
HOST_IMAGE_ID = "host"


class ImageService:
    def __init__(
        self, engine: Engine, clock: Clock, data_dir: Path, limits: ImageLimits | None = None
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._limits = limits or ImageLimits()
        self._dir = data_dir
        self._dir.mkdir(parents=True, exist_ok=True)

    def path(self, image_id: str) -> Path:
        return self._dir / image_id

    def ensure_host_image(self) -> None:
        now = self._clock.now()
        with self._engine.begin() as conn:
            if conn.execute(select(images.c.id).where(images.c.id == HOST_IMAGE_ID)).first():
                return
            conn.execute(
                insert(images).values(
                    id=HOST_IMAGE_ID, name="host", owner=None, visibility="public", status="active",
                    disk_format="raw", container_format="bare", size=0, builtin="host",
                    properties={"description": "the host's own root, read-only under an overlay"},
                    tags=[], created_at=now, updated_at=now, min_disk=0, min_ram=0, protected=True,
                )
            )  # fmt: skip

    def _visible(self, ctx: AuthContext) -> Any:
        if ctx.is_cloud_admin:
            return images.c.id.is_not(None)
        return or_(
            images.c.visibility.in_(("public", "community")), images.c.owner == ctx.project_id
        )

    def list(self, ctx: AuthContext, params: Any, max_limit: int) -> tuple[list[Any], str | None]:
        limit, marker = validation.limit_marker(params, max_limit)
        cond = self._visible(ctx)
        for key in ("name", "status", "visibility", "disk_format", "container_format", "owner"):
            if params.get(key):
                cond = cond & (images.c[key] == params[key])
        with self._engine.connect() as conn:
            if marker:
                m = conn.execute(
                    select(images.c.created_at, images.c.id).where(images.c.id == marker)
                ).first()
                if m is None:
                    raise BadRequest(f"marker {marker} not found")
                cond = cond & (
                    (images.c.created_at < m.created_at)
                    | ((images.c.created_at == m.created_at) & (images.c.id < m.id))
                )
            rows = list(
                conn.execute(
                    select(images)
                    .where(cond)
                    .order_by(images.c.created_at.desc(), images.c.id.desc())
                    .limit(limit + 1)
                ).mappings()
            )
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1]["id"] if more and rows else None)

    def get(self, ctx: AuthContext, image_id: str) -> Any:
        with self._engine.connect() as conn:
            row = (
                conn.execute(select(images).where(images.c.id == image_id, self._visible(ctx)))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"No image found with ID {image_id}")
        return row

    def get_any(self, image_id: str) -> Any:
        with self._engine.connect() as conn:
            row = conn.execute(select(images).where(images.c.id == image_id)).mappings().first()
        if row is None:
            raise NotFound(f"No image found with ID {image_id}")
        return row

    def create(self, ctx: AuthContext, body: Any) -> Any:
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object.")
        bad = sorted(set(body) & READ_ONLY)
        if bad:
            raise Forbidden(f"Attribute '{bad[0]}' is read-only.")
        name = body.get("name")
        if name is not None:
            validation.name(name, "name")
        visibility = body.get("visibility", "private")
        if visibility not in ("private", "public", "shared", "community"):
            raise BadRequest(
                f"Invalid visibility value: {visibility!r}; use private, shared, community or public"
            )
        if visibility == "public" and not ctx.is_cloud_admin:
            raise Forbidden("You are not authorized to set visibility to public (admin only).")
        df, cf = body.get("disk_format"), body.get("container_format")
        if df is not None and df not in DISK_FORMATS:
            raise BadRequest(f"Invalid disk_format {df!r}; use one of {', '.join(DISK_FORMATS)}")
        if cf is not None and cf not in CONTAINER_FORMATS:
            raise BadRequest(
                f"Invalid container_format {cf!r}; use one of {', '.join(CONTAINER_FORMATS)}"
            )
        tags = body.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise BadRequest("tags must be a list of strings")
        props = {k: v for k, v in body.items() if k not in CORE_KEYS}
        for k, v in props.items():
            if not isinstance(v, str | int | float | bool) and v is not None:
                raise BadRequest(f"Property {k!r} must be a scalar value")
        iid = body.get("id") or str(uuid.uuid4())
        if not isinstance(iid, str) or not validation.UUID_RE.match(iid):
            raise BadRequest("id must be a UUID")
        now = self._clock.now()
        with self._engine.begin() as conn:
            if conn.execute(select(images.c.id).where(images.c.id == iid)).first():
                raise Conflict(f"Image with identifier {iid} already exists!")
            self._check_count(conn, ctx.project_id)
            conn.execute(
                insert(images).values(
                    id=iid, name=name, owner=ctx.project_id, visibility=visibility, status="queued",
                    disk_format=df, container_format=cf, size=None, checksum=None,
                    min_disk=validation.positive_int(body.get("min_disk", 0), "min_disk", 0),
                    min_ram=validation.positive_int(body.get("min_ram", 0), "min_ram", 0),
                    protected=validation.boolean(body.get("protected", False), "protected"),
                    properties=props, tags=tags, created_at=now, updated_at=now,
                )
            )  # fmt: skip
        return self.get(ctx, iid)

    def _check_count(self, conn: Any, project_id: str) -> None:
        limit = self._limits.project_count
        if limit < 0:
            return
        count = conn.execute(
            select(func.count()).select_from(images).where(images.c.owner == project_id)
        ).scalar()
        if count >= limit:
            raise OverLimit(
                f"Quota exceeded: project {project_id} owns {count} images, its limit is {limit}; "
                "delete images it no longer needs"
            )

    def _upload_cap(self, owner: str | None, image_id: str) -> tuple[int, str]:
        """How many bytes this upload may store, and what sets that cap."""
        lim = self._limits
        cap, why = lim.max_size, f"Image exceeds the largest image size of {lim.max_size} bytes"
        if lim.project_bytes >= 0 and owner is not None:
            with self._engine.connect() as conn:
                used = conn.execute(
                    select(func.coalesce(func.sum(images.c.size), 0)).where(
                        images.c.owner == owner, images.c.id != image_id
                    )
                ).scalar()
            left = max(lim.project_bytes - int(used or 0), 0)
            if left < cap:
                cap = left
                why = (f"Quota exceeded: image storage of project {owner} is "
                       f"{lim.project_bytes} bytes and {used} are in use")  # fmt: skip
        return cap, why

    async def upload(
        self,
        ctx: AuthContext,
        image_id: str,
        chunks: AsyncIterator[bytes],
        declared: int | None = None,
    ) -> None:
        """Store the image's data as it streams in; refused (413, nothing kept) as soon as
        it passes the largest image size or the project's image storage quota."""
        row = self.get(ctx, image_id)
        if row["owner"] != ctx.project_id and not ctx.is_cloud_admin:
            raise Forbidden("You are not permitted to upload data for this image.")
        if row["status"] != "queued":
            raise Conflict(f"Image status transition from {row['status']} to saving is not allowed")
        if row["disk_format"] is None or row["container_format"] is None:
            raise BadRequest(
                "Properties disk_format and container_format must be set prior to uploading data."
            )
        cap, why = self._upload_cap(row["owner"], image_id)
        if declared is not None and declared > cap:
            raise OverLimit(why)
        with self._engine.begin() as conn:
            conn.execute(update(images).where(images.c.id == image_id).values(status="saving"))
        tmp = self.path(image_id + ".part")
        md5 = hashlib.md5(usedforsecurity=False)
        sha = hashlib.sha512()
        size = 0
        try:
            with open(tmp, "wb") as fh:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > cap:
                        raise OverLimit(why)
                    md5.update(chunk)
                    sha.update(chunk)
                    fh.write(chunk)
            os.replace(tmp, self.path(image_id))
        except BaseException:
            tmp.unlink(missing_ok=True)
            with self._engine.begin() as conn:
                conn.execute(update(images).where(images.c.id == image_id).values(status="queued"))
            raise
        with self._engine.begin() as conn:
            conn.execute(
                update(images)
                .where(images.c.id == image_id)
                .values(
                    status="active", size=size, checksum=md5.hexdigest(), os_hash_algo="sha512",
                    os_hash_value=sha.hexdigest(), updated_at=self._clock.now(),
                )
            )  # fmt: skip
        log.info(
            "image uploaded (%d bytes)",
            size,
            extra={"image_id": image_id, "project": ctx.project_id},
        )

    def update(self, ctx: AuthContext, image_id: str, ops: Any) -> Any:
        """JSON-patch subset (add/replace/remove of name, tags, properties)."""
        row = self.get(ctx, image_id)
        if row["owner"] != ctx.project_id and not ctx.is_cloud_admin:
            raise Forbidden("You are not permitted to modify this image.")
        if not isinstance(ops, list):
            raise BadRequest("Request body must be a JSON array of patch operations")
        values: dict[str, Any] = {
            "properties": dict(row["properties"] or {}),
            "tags": list(row["tags"] or []),
        }
        for op in ops:
            if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove"):
                raise BadRequest("Each patch operation needs 'op' of add, replace or remove")
            path = str(op.get("path", "")).lstrip("/")
            if not path or path in READ_ONLY:
                raise Forbidden(f"Attribute '{path}' is read-only or invalid.")
            if path in (
                "name",
                "min_disk",
                "min_ram",
                "protected",
                "visibility",
                "disk_format",
                "container_format",
            ):
                values[path] = op.get("value")
            elif path == "tags":
                values["tags"] = op.get("value") or []
            elif op["op"] == "remove":
                values["properties"].pop(path, None)
            else:
                values["properties"][path] = op.get("value")
        values["updated_at"] = self._clock.now()
        with self._engine.begin() as conn:
            conn.execute(update(images).where(images.c.id == image_id).values(**values))
        return self.get(ctx, image_id)

    def delete(self, ctx: AuthContext, image_id: str) -> None:
        row = self.get(ctx, image_id)
        if row["owner"] != ctx.project_id and not ctx.is_cloud_admin:
            raise Forbidden("You are not permitted to delete this image.")
        if row["protected"]:
            raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
        with self._engine.begin() as conn:
            # Glance allows deleting an image in use: running instances keep their copy.
            conn.execute(delete(images).where(images.c.id == image_id))
        self.path(image_id).unlink(missing_ok=True)
