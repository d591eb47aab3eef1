"""Servers, flavors, keypairs and quotas (the Nova part of a region)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from rackpool.cloud import keys, validation
from rackpool.cloud.config import RegionConfig
from rackpool.cloud.db.engine import next_server_seqs
from rackpool.cloud.db.schema import flavors, hosts, images, keypairs, projects, servers
from rackpool.cloud.hosts import HostService
from rackpool.cloud.identity import AuthContext
from rackpool.cloud.namefilter import compile_name_filter
from rackpool.cloud.network import AddressesExhausted, AddressPool, mac_for
from rackpool.cloud.scheduler import Scheduler
from rackpool.core.clock import Clock
from rackpool.core.errors import BadRequest, Conflict, NotFound, QuotaExceeded

log = logging.getLogger("rackpool.cloud.compute")

SERVER_KEYS = {
    "name", "imageRef", "flavorRef", "networks", "key_name", "metadata", "user_data",
    "config_drive", "availability_zone", "min_count", "max_count", "security_groups",
    "adminPass", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig", "personality",
    "block_device_mapping_v2", "return_reservation_id",
}  # fmt: skip
NO_VALID_HOST = "No valid host was found. There are not enough hosts available."


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
        self._scheduler = Scheduler(config.scheduler)

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
    def quota(self, conn: Connection, project_id: str) -> dict[str, int]:
        """The project's quota: its own where an admin set one, else the region's default."""
        row = conn.execute(select(projects).where(projects.c.id == project_id)).mappings().first()
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
            if (
                conn.execute(
                    update(projects).where(projects.c.id == project_id).values(**upd)
                ).rowcount
                == 0
            ):
                raise NotFound(f"project {project_id} not found")
            return self.quota(conn, project_id)

    def _check_quota(self, conn: Connection, project_id: str, n: int, vcpus: int, ram: int) -> None:
        q = self.quota(conn, project_id)
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
    ) -> tuple[list[Any], str | None]:
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
            rows = list(conn.execute(query).mappings())
        if name_filter:
            rows = _filter_names(rows, name_filter)
        more = len(rows) > limit
        rows = rows[:limit]
        next_marker = rows[-1]["id"] if more and rows else None
        return rows, next_marker

    def get_server(self, ctx: AuthContext, server_id: str) -> Any:
        with self._engine.connect() as conn:
            cond = servers.c.id == server_id
            row = (
                conn.execute(select(servers).where(cond, self._visible(ctx, True)))
                .mappings()
                .first()
            )
        if row is None or (row["project_id"] != ctx.project_id and not ctx.is_cloud_admin):
            raise NotFound(f"Instance {server_id} could not be found.")
        return row

    def create_servers(
        self,
        ctx: AuthContext,
        body: Any,
        request_id: str | None = None,
        global_request_id: str | None = None,
    ) -> list[str]:
        """Create the servers ``body`` asks for; each keeps the ids of this create call
        (``request_id``, the client's ``global_request_id``), which the host's agent
        gets with the instance and logs."""
        s = validation.require_dict(body, "server")
        unknown = sorted(set(s) - SERVER_KEYS)
        if unknown:
            raise BadRequest(
                "Invalid input for field/attribute server. Additional properties are not allowed "
                f"({', '.join(repr(k) for k in unknown)} were unexpected)"
            )
        name = validation.name(s.get("name"), "name")
        if "flavorRef" not in s:
            raise BadRequest(
                "Invalid input for field/attribute server. 'flavorRef' is a required property"
            )
        if "imageRef" not in s:
            raise BadRequest(
                "Invalid input for field/attribute server. 'imageRef' is a required property"
            )
        flavor_ref = validation.ref(s["flavorRef"], "flavorRef")
        image_ref = validation.ref(s["imageRef"], "imageRef")
        _check_networks(s.get("networks"))
        meta = validation.metadata(s.get("metadata"))
        user_data = validation.user_data(s.get("user_data"))
        config_drive = validation.boolean(s.get("config_drive"), "config_drive")
        az = s.get("availability_zone")
        if az is not None and (not isinstance(az, str) or not az):
            raise BadRequest(
                "Invalid input for field/attribute availability_zone. Must be a non-empty string."
            )
        min_count = validation.count(s.get("min_count"), "min_count")
        max_count = validation.count(s.get("max_count", min_count), "max_count")
        if max_count < min_count:
            raise BadRequest("min_count must be <= max_count")
        groups = _security_groups(s.get("security_groups"))
        key_name = s.get("key_name")
        now = self._clock.now()
        created: list[tuple[str, str | None]] = []
        with self._engine.begin() as conn:
            flv = conn.execute(select(flavors).where(flavors.c.id == flavor_ref)).mappings().first()
            if flv is None:
                raise BadRequest(f"Flavor {flavor_ref} could not be found (flavorRef).")
            img = (
                conn.execute(
                    select(images).where(
                        images.c.id == image_ref,
                        or_(images.c.visibility == "public", images.c.owner == ctx.project_id),
                    )
                )
                .mappings()
                .first()
            )
            if img is None:
                raise BadRequest(f"Image {image_ref} could not be found (imageRef).")
            if img["status"] != "active":
                raise BadRequest(
                    f"Image {image_ref} is not active (status {img['status']}); upload its data first."
                )
            public_key = None
            if key_name is not None:
                if not isinstance(key_name, str):
                    raise BadRequest(
                        "Invalid input for field/attribute key_name. Must be a string."
                    )
                kp = conn.execute(
                    select(keypairs.c.public_key).where(
                        keypairs.c.user_id == ctx.user_id, keypairs.c.name == key_name
                    )
                ).first()
                if kp is None:
                    raise BadRequest(f"Invalid key_name provided: keypair {key_name!r} not found.")
                public_key = kp.public_key
            if az is not None and az not in self._zones(conn):
                raise BadRequest(f"The requested availability zone is not available: {az!r}")
            self._check_quota(conn, ctx.project_id, max_count, flv["vcpus"], flv["ram"])
            loads = self._scheduler.candidates(
                conn, now, self._config.hosts.heartbeat_timeout, self._hosts.beats.snapshot()
            )
            seqs = next_server_seqs(conn, max_count)
            for i in range(max_count):
                sid = str(uuid.uuid4())
                sname = f"{name}-{i + 1}" if max_count > 1 else name
                host = self._scheduler.pick(loads, flv["vcpus"], flv["ram"], flv["disk"], az)
                fault = NO_VALID_HOST
                values: dict[str, Any] = {
                    "id": sid, "seq": seqs[i], "project_id": ctx.project_id, "user_id": ctx.user_id,
                    "name": sname, "hostname": validation.hostname_from(sname), "status": "BUILD",
                    "task_state": "spawning", "deleted": False, "flavor_id": flv["id"],
                    "vcpus": flv["vcpus"], "ram": flv["ram"], "disk": flv["disk"], "image_id": img["id"],
                    "key_name": key_name, "public_key": public_key, "metadata": meta,
                    "user_data": user_data, "config_drive": config_drive, "security_groups": groups,
                    "availability_zone": az, "created_at": now, "updated_at": now, "host_keys": [],
                    "console_log": "", "request_id": request_id,
                    "global_request_id": global_request_id,
                }  # fmt: skip
                if host is not None:
                    try:
                        addr = self._pool.allocate(conn, sid, now)
                    except AddressesExhausted as exc:
                        host = None
                        fault = f"{NO_VALID_HOST} {exc}"
                    else:
                        values.update(host=host.name, address=addr, mac=mac_for(addr))
                        values["availability_zone"] = az or host.availability_zone
                if host is None:
                    values.update(
                        status="ERROR", task_state=None, fault_message=fault, fault_code=500, fault_at=now,
                        availability_zone=az or "nova",
                    )  # fmt: skip
                    log.warning(
                        "server %s: %s",
                        sid,
                        fault,
                        extra={"instance_id": sid, "project": ctx.project_id},
                    )
                conn.execute(insert(servers).values(**values))
                created.append((sid, values.get("host")))
        for sid, host_name in created:
            self._hosts.notify(host_name, sid)
        for sid, host_name in created:
            log.info(
                "server %s created on %s",
                sid,
                host_name or "no host",
                extra={"instance_id": sid, "host": host_name, "project": ctx.project_id},
            )
        return [sid for sid, _ in created]

    def _zones(self, conn: Connection) -> set[str]:
        return {z for (z,) in conn.execute(select(hosts.c.availability_zone).distinct())} | {"nova"}

    def delete_server(self, ctx: AuthContext, server_id: str) -> None:
        row = self.get_server(ctx, server_id)
        now = self._clock.now()
        with self._engine.begin() as conn:
            if row["host"] is None:
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
            extra={"instance_id": server_id, "project": row["project_id"]},
        )
        self._hosts.notify(row["host"], server_id)

    def console_output(self, ctx: AuthContext, server_id: str, body: dict[str, Any]) -> str:
        row = self.get_server(ctx, server_id)
        text: str = row["console_log"] or ""
        length = body.get("length")
        if length is not None:
            n = validation.positive_int(length, "length", minimum=-1)
            if n >= 0:
                text = "\n".join(text.splitlines()[-n:]) if n else ""
        return text


def _check_networks(value: Any) -> None:
    if value is None or value in ("auto", "none"):
        return
    if not isinstance(value, list):
        raise BadRequest(
            "Invalid input for field/attribute networks. Must be 'auto', 'none' or a list."
        )
    for i, net in enumerate(value):
        if not isinstance(net, dict):
            raise BadRequest(f"Invalid input for field/attribute networks[{i}]. Must be an object.")
        uuid_ = net.get("uuid")
        if uuid_ is not None and uuid_ not in ("public",) and not isinstance(uuid_, str):
            raise BadRequest(
                f"Invalid input for field/attribute networks[{i}].uuid. Must be a string."
            )


def _security_groups(value: Any) -> list[str]:
    if value is None:
        return ["default"]
    if not isinstance(value, list):
        raise BadRequest("Invalid input for field/attribute security_groups. Must be a list.")
    out = []
    for i, g in enumerate(value):
        if not isinstance(g, dict) or not isinstance(g.get("name"), str):
            raise BadRequest(
                f"Invalid input for field/attribute security_groups[{i}]. Needs a 'name'."
            )
        out.append(g["name"])
    return out


def _filter_names(rows: list[Any], pattern: str) -> list[Any]:
    """Nova's ?name= is a regular expression matched anywhere in the name (RE2: linear
    time, so no pattern can stall a worker)."""
    matches = compile_name_filter(pattern)
    return [r for r in rows if matches(r["name"])]
