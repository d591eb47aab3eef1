"""Images (the Glance part of a region): metadata in the database, bytes on disk.

Who sees what (and so what a name resolves to): a project lists the public images and its
own. Community images are listed only when asked for (``?visibility=community``), and
other projects' private images only to a cloud admin asking for them
(``?visibility=all``, ``?visibility=private`` or ``?owner=``), so a name lookup such as
openstacksdk's ``find_image(name)`` sees public images and the caller's own, for the
admin too. Only a cloud admin makes an image public, community or shared, so no project
can add a name to another project's lookups. Any image the caller may see can be read
by its id. Every create and PATCH is validated against the image schema (imageschema.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from rackpool.cloud import imageschema, validation
from rackpool.cloud.config import ImageLimits
from rackpool.cloud.db.schema import images, projects
from rackpool.cloud.identity import AuthContext
from rackpool.core.clock import Clock
from rackpool.core.errors import BadRequest, Conflict, Forbidden, NotFound, OverLimit

log = logging.getLogger("rackpool.cloud.images")

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
        """Every image ``ctx`` may read by id."""
        if ctx.is_cloud_admin:
            return images.c.id.is_not(None)
        return or_(
            images.c.visibility.in_(("public", "community")), images.c.owner == ctx.project_id
        )

    def _listed(self, ctx: AuthContext, params: Any) -> Any:
        """What a listing shows: public and own by default (see the module docstring)."""
        vis = params.get("visibility")
        if vis is not None and vis not in (*imageschema.VISIBILITIES, "all"):
            raise BadRequest(
                f"visibility must be one of {', '.join(imageschema.VISIBILITIES)} or all"
            )
        if vis == "all" or (ctx.is_cloud_admin and (vis or params.get("owner"))):
            cond = self._visible(ctx)
        elif vis == "community":
            cond = images.c.visibility == "community"
        else:
            cond = or_(images.c.visibility == "public", images.c.owner == ctx.project_id)
        if vis not in (None, "all"):
            cond = cond & (images.c.visibility == vis)
        return cond

    def list(self, ctx: AuthContext, params: Any, max_limit: int) -> tuple[list[Any], str | None]:
        limit, marker = validation.limit_marker(params, max_limit)
        cond = self._listed(ctx, params)
        for key in ("name", "status", "disk_format", "container_format", "owner"):
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
        rec = imageschema.from_body(body)
        self._check_visibility(ctx, rec["visibility"], "private")
        iid = body.get("id") or str(uuid.uuid4())
        if not isinstance(iid, str) or not validation.UUID_RE.match(iid):
            raise BadRequest("id must be a UUID")
        now = self._clock.now()
        exists = Conflict(f"Image with identifier {iid} already exists!")
        try:
            with self._engine.begin() as conn:
                if conn.execute(select(images.c.id).where(images.c.id == iid)).first():
                    raise exists
                self._check_count(conn, ctx.project_id)
                conn.execute(
                    insert(images).values(
                        id=iid, owner=ctx.project_id, status="queued", size=None, checksum=None,
                        created_at=now, updated_at=now, **rec,
                    )
                )  # fmt: skip
        except IntegrityError:  # created by another controller since the check
            raise exists from None
        return self.get(ctx, iid)

    def _check_count(self, conn: Any, project_id: str) -> None:
        limit = self._limits.project_count
        if limit < 0:
            return
        # the project's row held until commit: two controllers counting at once take turns
        conn.execute(select(projects.c.id).where(projects.c.id == project_id).with_for_update())
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

    @staticmethod
    def _check_visibility(ctx: AuthContext, visibility: str, old: str) -> None:
        """Only a cloud admin makes an image visible beyond its project (Glance's
        publicize_image and communitize_image, and shared here as there are no members)."""
        if visibility != old and visibility != "private" and not ctx.is_cloud_admin:
            raise Forbidden(
                f"You are not authorized to set visibility to {visibility} (cloud admin only)."
            )

    def update(self, ctx: AuthContext, image_id: str, ops: Any) -> Any:
        """A JSON-patch, applied to a copy and validated whole, then written at once."""
        row = self.get(ctx, image_id)
        if row["owner"] != ctx.project_id and not ctx.is_cloud_admin:
            raise Forbidden("You are not permitted to modify this image.")
        old = imageschema.record(row)
        new = imageschema.apply_patch(old, ops)
        self._check_visibility(ctx, new["visibility"], old["visibility"])
        changed = {k: v for k, v in new.items() if v != old[k]}
        if changed:
            with self._engine.begin() as conn:
                res = conn.execute(
                    update(images)
                    .where(images.c.id == image_id, images.c.updated_at == row["updated_at"])
                    .values(**changed, updated_at=self._clock.now())
                )
            if res.rowcount == 0:
                raise Conflict(f"Image {image_id} changed meanwhile; read it and try again.")
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
