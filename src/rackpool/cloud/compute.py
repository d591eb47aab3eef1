"""Servers, flavors, keypairs and quotas (the Nova part of a region)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from rackpool.cloud import keys, validation
from rackpool.cloud.config import RegionConfig
from rackpool.cloud.db.engine import retryable
from rackpool.cloud.db.schema import flavors, hosts, images, keypairs, projects, servers
from rackpool.cloud.hosts import HostService
from rackpool.cloud.identity import AuthContext
from rackpool.cloud.namefilter import compile_name_filter
from rackpool.cloud.network import AddressPool
from rackpool.cloud.scheduler import Scheduler
from rackpool.cloud.servers import repository
from rackpool.cloud.servers import request as serverrequest
from rackpool.cloud.servers.placement import Placed, Placement, PlacementRaced, Size
from rackpool.cloud.servers.repository import Server, insert_servers
from rackpool.core.clock import Clock
from rackpool.core.errors import BadRequest, Conflict, NotFound, QuotaExceeded

log = logging.getLogger("rackpool.cloud.compute")

CREATE_ATTEMPTS = 5  # placements raced by another controller before giving up


@dataclass(frozen=True)
class Resolved:
    """What a create request's references stand for."""

    flavor_id: str
    size: Size
    image_id: str
    public_key: str | None


def _draft(
    ctx: AuthContext, req: serverrequest.ServerRequest, what: Resolved, i: int, p: Placed,
    now: float, request_id: str | None, global_request_id: str | None,
) -> Server:  # fmt: skip
    """The ``i``-th server of a request as it will be stored: BUILD on its host, or
    ERROR with the reason it has none."""
    name = req.server_name(i)
    ok = p.host is not None
    return Server(
        id=p.server_id, seq=0, project_id=ctx.project_id, user_id=ctx.user_id, name=name,
        hostname=validation.hostname_from(name), status="BUILD" if ok else "ERROR",
        task_state="spawning" if ok else None, deleted=False, host=p.host,
        flavor_id=what.flavor_id, vcpus=what.size.vcpus, ram=what.size.ram, disk=what.size.disk,
        image_id=what.image_id, key_name=req.key_name, public_key=what.public_key,
        address=p.address, mac=p.mac,
        availability_zone=p.availability_zone if ok else (req.availability_zone or "nova"),
        metadata=req.metadata, user_data=req.user_data, config_drive=req.config_drive,
        security_groups=list(req.security_groups), fault_message=None if ok else p.fault,
        fault_code=None if ok else 500, fault_at=None if ok else now, host_keys=[],
        console_log="", created_at=now, updated_at=now, launched_at=None,
        request_id=request_id, global_request_id=global_request_id,
    )  # fmt: skip


class ComputeService:
    def __init__(
        self,
        engine: Engine,
        config: RegionConfig,
        clock: Clock,
        pool: AddressPool,
        hosts: HostService,
    ) -> None:
        self._engine = engine
        self._config = config
        self._clock = clock
        self._pool = pool
        self._hosts = hosts
        self._placement = Placement(Scheduler(config.scheduler), pool)

    # -- flavors -----------------------------------------------------------
    def list_flavors(self) -> list[Any]:
        with self._engine.connect() as conn:
            return list(
                conn.execute(select(flavors).order_by(flavors.c.ram, flavors.c.id)).mappings()
            )

    def get_flavor(self, ref: str) -> Any:
        with self._engine.connect() as conn:
            row = conn.execute(select(flavors).where(flavors.c.id == ref)).mappings().first()
        if row is None:
            raise NotFound(f"Flavor {ref} could not be found.")
        return row

    def create_flavor(self, body: Any) -> Any:
        f = validation.require_dict(body, "flavor")
        name = validation.name(f.get("name"), "name")
        vcpus = validation.positive_int(f.get("vcpus"), "vcpus")
        ram = validation.positive_int(f.get("ram"), "ram")
        disk = validation.positive_int(f.get("disk", 0), "disk", minimum=0)
        fid = f.get("id") or str(uuid.uuid4())
        if not isinstance(fid, str) or not validation.UUID_RE.match(
            fid.replace("_", "-").replace(".", "-")
        ):
            raise BadRequest(
                "Invalid input for field/attribute id: letters, digits, '-', '_', '.' only."
            )
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(flavors).values(
                        id=fid, name=name, vcpus=vcpus, ram=ram, disk=disk,
                        is_public=validation.boolean(f.get("os-flavor-access:is_public", True), "is_public"),
                    )
                )  # fmt: skip
        except IntegrityError:
            raise Conflict(f"Flavor with name {name} or id {fid} already exists.") from None
        return self.get_flavor(fid)

    def delete_flavor(self, ref: str) -> None:
        with self._engine.begin() as conn:
            if conn.execute(delete(flavors).where(flavors.c.id == ref)).rowcount == 0:
                raise NotFound(f"Flavor {ref} could not be found.")

    # -- keypairs ----------------------------------------------------------
    def list_keypairs(self, ctx: AuthContext) -> list[Any]:
        with self._engine.connect() as conn:
            return list(
                conn.execute(
                    select(keypairs)
                    .where(keypairs.c.user_id == ctx.user_id)
                    .order_by(keypairs.c.name)
                ).mappings()
            )

    def get_keypair(self, ctx: AuthContext, name: str) -> Any:
        with self._engine.connect() as conn:
            row = (
                conn.execute(
                    select(keypairs).where(
                        keypairs.c.user_id == ctx.user_id, keypairs.c.name == name
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"Keypair {name} not found for user {ctx.user_id}")
        return row

    def create_keypair(self, ctx: AuthContext, body: Any) -> tuple[Any, str | None]:
        k = validation.require_dict(body, "keypair")
        name = validation.name(k.get("name"), "name")
        if not all(c.isalnum() or c in "-_ ." for c in name):
            raise BadRequest(
                "Keypair data is invalid: Keypair name contains unsafe characters "
                "(use letters, digits, '-', '_', '.', space)"
            )
        private = None
        public = k.get("public_key")
        if public is None:
            public, private = keys.generate()
        elif not isinstance(public, str):
            raise BadRequest("Keypair data is invalid: public_key must be a string")
        fingerprint = keys.fingerprint(public)
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(keypairs).values(
                        project_id=ctx.project_id, user_id=ctx.user_id, name=name,
                        public_key=public.strip(), fingerprint=fingerprint, created_at=self._clock.now(),
                    )
                )  # fmt: skip
        except IntegrityError:
            raise Conflict(f"Key pair '{name}' already exists.") from None
        return self.get_keypair(ctx, name), private

    def delete_keypair(self, ctx: AuthContext, name: str) -> None:
        with self._engine.begin() as conn:
            res = conn.execute(
                delete(keypairs).where(keypairs.c.user_id == ctx.user_id, keypairs.c.name == name)
            )
        if res.rowcount == 0:
            raise NotFound(f"Keypair {name} not found for user {ctx.user_id}")

    # -- quotas ------------------------------------------------------------
    def quota(self, conn: Connection, project_id: str, lock: bool = False) -> dict[str, int]:
        """The project's quota: its own where an admin set one, else the region's default.

        ``lock``: hold the project's row until the transaction ends, so two controllers
        checking the same project's quota at once take turns (creates of one project are
        serialised; other projects are not held up)."""
        q = select(projects).where(projects.c.id == project_id)
        if lock:
            q = q.with_for_update()
        row = conn.execute(q).mappings().first()
        if row is None:
            raise NotFound(f"project {project_id} not found")
        default = self._config.default_quota
        own = {k: row[f"quota_{k}"] for k in ("cores", "ram", "instances")}
        return {k: getattr(default, k) if v is None else v for k, v in own.items()}

    def usage(self, conn: Connection, project_id: str) -> dict[str, int]:
        count, cores, ram = conn.execute(
            select(func.count(), func.sum(servers.c.vcpus), func.sum(servers.c.ram)).where(
                servers.c.project_id == project_id, servers.c.deleted.is_(False)
            )
        ).one()
        return {"instances": int(count), "cores": int(cores or 0), "ram": int(ram or 0)}

    def limits(self, project_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            q = self.quota(conn, project_id)
            u = self.usage(conn, project_id)
        return {
            "rate": [],
            "absolute": {
                "maxTotalCores": q["cores"],
                "maxTotalInstances": q["instances"],
                "maxTotalRAMSize": q["ram"],
                "totalCoresUsed": u["cores"],
                "totalInstancesUsed": u["instances"],
                "totalRAMUsed": u["ram"],
                "maxTotalKeypairs": 100,
                "maxServerMeta": 128,
                "maxImageMeta": 128,
                "maxPersonality": 5,
                "maxPersonalitySize": 10240,
                "maxSecurityGroups": -1,
                "maxSecurityGroupRules": -1,
                "maxTotalFloatingIps": -1,
                "totalFloatingIpsUsed": 0,
                "totalSecurityGroupsUsed": 0,
                "maxServerGroups": 10,
                "maxServerGroupMembers": 10,
                "totalServerGroupsUsed": 0,
            },
        }

    def set_quota(self, project_id: str, values: dict[str, Any]) -> dict[str, int]:
        cols = {"cores": "quota_cores", "ram": "quota_ram", "instances": "quota_instances"}
        upd = {}
        for key, value in values.items():
            if key not in cols:
                if key in ("force",):
                    continue
                raise BadRequest(
                    f"Invalid input for field/attribute quota_set: unknown quota {key!r}; "
                    f"use {', '.join(cols)}"
                )
            upd[cols[key]] = validation.positive_int(value, key, minimum=-1)
        with self._engine.begin() as conn:
            # an empty quota_set changes nothing and answers the current quota (as Nova);
            # an UPDATE with no column is not valid SQL on every engine
            where = projects.c.id == project_id
            if upd:
                found = conn.execute(update(projects).where(where).values(**upd)).rowcount > 0
            else:
                found = conn.execute(select(projects.c.id).where(where)).first() is not None
            if not found:
                raise NotFound(f"project {project_id} not found")
            return self.quota(conn, project_id)

    def _check_quota(self, conn: Connection, project_id: str, n: int, vcpus: int, ram: int) -> None:
        q = self.quota(conn, project_id, lock=True)
        u = self.usage(conn, project_id)
        want = {"instances": n, "cores": n * vcpus, "ram": n * ram}
        over = [k for k in ("instances", "cores", "ram") if q[k] >= 0 and u[k] + want[k] > q[k]]
        if over:
            detail = ", ".join(f"{k} (requested {want[k]}, used {u[k]} of {q[k]})" for k in over)
            raise QuotaExceeded(f"Quota exceeded for {', '.join(over)}: {detail}")

    # -- servers -----------------------------------------------------------
    def _visible(self, ctx: AuthContext, all_tenants: bool) -> Any:
        cond: Any = servers.c.deleted.is_(False)
        if not (all_tenants and ctx.is_cloud_admin):
            cond = cond & (servers.c.project_id == ctx.project_id)
        return cond

    def list_servers(
        self, ctx: AuthContext, params: Any, all_tenants: bool = False
    ) -> tuple[list[Server], str | None]:
        """A page of servers, newest first by their sequence number (from the database,
        so every controller pages alike); the next page's marker if there is one."""
        limit, marker = validation.limit_marker(params, self._config.page_limit)
        cond = self._visible(ctx, all_tenants)
        with self._engine.connect() as conn:
            if marker:
                mrow = conn.execute(
                    select(servers.c.seq).where(servers.c.id == marker, cond)
                ).first()
                if mrow is None:
                    raise BadRequest(f"marker [{marker}] not found")
                cond = cond & (servers.c.seq < mrow.seq)
            if params.get("status"):
                cond = cond & (servers.c.status == params["status"].upper())
            query = select(servers).where(cond).order_by(servers.c.seq.desc())
            name_filter = params.get("name")
            if not name_filter:
                query = query.limit(limit + 1)
            rows = [Server.from_row(r) for r in conn.execute(query).mappings()]
        if name_filter:
            rows = _filter_names(rows, name_filter)
        more = len(rows) > limit
        rows = rows[:limit]
        next_marker = rows[-1].id if more and rows else None
        return rows, next_marker

    def get_server(self, ctx: AuthContext, server_id: str) -> Server:
        with self._engine.connect() as conn:
            server = repository.get(conn, server_id, self._visible(ctx, True))
        if server is None or (server.project_id != ctx.project_id and not ctx.is_cloud_admin):
            raise NotFound(f"Instance {server_id} could not be found.")
        return server

    def create_servers(
        self,
        ctx: AuthContext,
        body: Any,
        request_id: str | None = None,
        global_request_id: str | None = None,
    ) -> list[str]:
        """Create the servers ``body`` asks for; each keeps the ids of this create call
        (``request_id``, the client's ``global_request_id``), which the host's agent
        gets with the instance and logs.

        Parse (no database), then one transaction: resolve flavor, image and key, check
        the quota under the project's row lock, place (hosts locked and re-checked,
        addresses) and insert. If another controller filled a picked host meanwhile, or
        PostgreSQL reports a deadlock, the transaction runs again with fresh data.
        """
        req = serverrequest.parse(body, may_force_host=ctx.is_cloud_admin)
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                with self._engine.begin() as conn:
                    last = attempt == CREATE_ATTEMPTS
                    created = self._create(conn, ctx, req, request_id, global_request_id, last)
                break
            except PlacementRaced:
                continue
            except DBAPIError as exc:
                if not retryable(exc) or attempt == CREATE_ATTEMPTS:
                    raise
        for server in created:
            self._hosts.notify(server.host, server.id)
        for server in created:
            if server.host is None:
                log.warning("server %s: %s", server.id, server.fault_message,
                            extra={"instance_id": server.id, "project": ctx.project_id})  # fmt: skip
            log.info(
                "server %s created on %s",
                server.id,
                server.host or "no host",
                extra={"instance_id": server.id, "host": server.host, "project": ctx.project_id},
            )
        return [server.id for server in created]

    def _create(
        self,
        conn: Connection,
        ctx: AuthContext,
        req: serverrequest.ServerRequest,
        request_id: str | None,
        global_request_id: str | None,
        last_attempt: bool,
    ) -> list[Server]:
        """One create transaction: resolve, check the quota, place, insert."""
        now = self._clock.now()
        what = self._resolve(conn, ctx, req)
        size = what.size
        self._check_quota(conn, ctx.project_id, req.max_count, size.vcpus, size.ram)
        ids = [str(uuid.uuid4()) for _ in range(req.max_count)]
        placed = self._placement.place(
            conn, ids, size, req.availability_zone, now, self._config.hosts.heartbeat_timeout,
            self._hosts.beats.snapshot(), last_attempt, req.forced_host,
        )  # fmt: skip
        drafts = [
            _draft(ctx, req, what, i, p, now, request_id, global_request_id)
            for i, p in enumerate(placed)
        ]
        return insert_servers(conn, drafts)

    def _resolve(
        self, conn: Connection, ctx: AuthContext, req: serverrequest.ServerRequest
    ) -> Resolved:
        """The flavor, image, key and zone a request names, as ``ctx`` may use them."""
        flv = conn.execute(select(flavors).where(flavors.c.id == req.flavor_ref)).mappings().first()
        if flv is None:
            raise BadRequest(f"Flavor {req.flavor_ref} could not be found (flavorRef).")
        img = conn.execute(
            select(images.c.id, images.c.status).where(
                images.c.id == req.image_ref,
                or_(images.c.visibility == "public", images.c.owner == ctx.project_id),
            )
        ).first()
        if img is None:
            raise BadRequest(f"Image {req.image_ref} could not be found (imageRef).")
        if img.status != "active":
            raise BadRequest(
                f"Image {req.image_ref} is not active (status {img.status}); upload its data first."
            )
        public_key = None
        if req.key_name is not None:
            kp = conn.execute(
                select(keypairs.c.public_key).where(
                    keypairs.c.user_id == ctx.user_id, keypairs.c.name == req.key_name
                )
            ).first()
            if kp is None:
                raise BadRequest(f"Invalid key_name provided: keypair {req.key_name!r} not found.")
            public_key = kp.public_key
        az = req.availability_zone
        if az is not None and az not in self._zones(conn):
            raise BadRequest(f"The requested availability zone is not available: {az!r}")
        size = Size(flv["vcpus"], flv["ram"], flv["disk"])
        return Resolved(flv["id"], size, img.id, public_key)

    def _zones(self, conn: Connection) -> set[str]:
        return {z for (z,) in conn.execute(select(hosts.c.availability_zone).distinct())} | {"nova"}

    def delete_server(self, ctx: AuthContext, server_id: str) -> None:
        row = self.get_server(ctx, server_id)
        now = self._clock.now()
        with self._engine.begin() as conn:
            if row.host is None:
                AddressPool.release(conn, server_id, now)
                conn.execute(delete(servers).where(servers.c.id == server_id))
                return
            conn.execute(
                update(servers)
                .where(servers.c.id == server_id)
                .values(deleted=True, task_state="deleting", updated_at=now)
            )
        log.info(
            "server delete requested",
            extra={"instance_id": server_id, "project": row.project_id},
        )
        self._hosts.notify(row.host, server_id)

    def console_output(self, ctx: AuthContext, server_id: str, body: dict[str, Any]) -> str:
        text = self.get_server(ctx, server_id).console_log or ""
        length = body.get("length")
        if length is not None:
            n = validation.positive_int(length, "length", minimum=-1)
            if n >= 0:
                text = "\n".join(text.splitlines()[-n:]) if n else ""
        return text


def _filter_names(rows: list[Server], pattern: str) -> list[Server]:
    """Nova's ?name= is a regular expression matched anywhere in the name (RE2: linear
    time, so no pattern can stall a worker)."""
    matches = compile_name_filter(pattern)
    return [r for r in rows if matches(r.name)]
