"""The host boundary: what agents (and in-process fake hosts) do with a controller.

register → heartbeat → pull desired instances → report facts. The controller owns
the instance state machine; hosts only report what they see.

A heartbeat never waits for the database's write lock in the common case: it reads
(the host, and with an ``instances`` list the host's servers), keeps its instant in
memory (cloud/heartbeats.py, written in batches) and writes only when an instance's
state really changes. Every read of the host boundary goes through ``reader``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from rackpool.cloud.config import RegionConfig
from rackpool.cloud.db.engine import is_postgresql, reader
from rackpool.cloud.db.schema import flavors, hosts, images, servers
from rackpool.cloud.heartbeats import HeartbeatBuffer, flush_interval
from rackpool.cloud.hostcreds import HostCredentials
from rackpool.cloud.network import AddressPool
from rackpool.cloud.validation import MAX_INT
from rackpool.cloud.workers import RegionWorkers
from rackpool.core.clock import Clock
from rackpool.core.errors import BadRequest, NotFound
from rackpool.core.text import untrusted_text

log = logging.getLogger("rackpool.cloud.hosts")

REPORT_STATUSES = ("ACTIVE", "ERROR", "DELETED")
# Faults set by ``check_down`` start with this; such an instance returns to ACTIVE when
# its host comes back and reports it running (the instance itself never stopped).
HOST_DOWN_FAULT = "Host {name} is down: "
MAX_CONSOLE = 256 * 1024
# Faults set from a heartbeat's ``instances`` list (docs/agent-api.md).
INSTANCE_STOPPED_FAULT = "Instance stopped on host {name}: {detail}"
INSTANCE_GONE_FAULT = "Instance is no longer on host {name}"
MAX_HEARTBEAT_INSTANCES = 100_000


class HostService:
    def __init__(
        self, engine: Engine, config: RegionConfig, clock: Clock, pool: AddressPool
    ) -> None:
        self._engine = engine
        self._read = reader(engine)
        self._config = config
        self._clock = clock
        self._pool = pool
        self._listeners: dict[str, Callable[[str], None]] = {}
        self.credentials = HostCredentials(engine, clock, config.agent_token)
        self.beats = HeartbeatBuffer(engine)

    # -- notifications to in-process hosts ---------------------------------
    @property
    def shared_database(self) -> bool:
        """Whether other controllers may share this database (PostgreSQL): then work
        for an in-process host can be created where no notification reaches it."""
        return is_postgresql(self._engine)

    def pending(self, name: str) -> list[str]:
        """Ids of ``name``'s instances waiting for the host: building, or deleted."""
        with self._read.connect() as conn:
            return list(
                conn.execute(
                    select(servers.c.id).where(
                        servers.c.host == name,
                        (servers.c.status == "BUILD") | servers.c.deleted.is_(True),
                    )
                ).scalars()
            )

    def listen(self, host: str, callback: Callable[[str], None]) -> None:
        self._listeners[host] = callback

    def notify(self, host: str | None, server_id: str) -> None:
        if host and host in self._listeners:
            self._listeners[host](server_id)

    # -- agent operations --------------------------------------------------
    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        name = _req_str(body, "name")
        values = {
            "availability_zone": _opt_str(body, "availability_zone", 255) or "nova",
            "driver": _opt_str(body, "driver", 32) or "unknown",
            "vcpus": _req_int(body, "vcpus"),
            "ram_mb": _req_int(body, "ram_mb"),
            "disk_gb": _req_int(body, "disk_gb"),
            "version": _opt_str(body, "version", 64),
            "state": "up",
            "last_heartbeat": self._clock.now(),
        }
        try:
            self._upsert_host(name, values)
        except IntegrityError:  # registered through another controller meanwhile
            self._upsert_host(name, values)
        return {
            "host": self.host_view(name),
            "heartbeat_interval": self._config.hosts.heartbeat_interval,
            "network": {
                "cidr": str(self._pool.network),
                "gateway": self._pool.gateway,
                "prefix": self._pool.prefix,
            },
        }

    def _upsert_host(self, name: str, values: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            row = conn.execute(
                select(hosts.c.id, hosts.c.state).where(hosts.c.name == name)
            ).first()
            if row is None:
                conn.execute(
                    insert(hosts).values(
                        id=uuid.uuid4().hex,
                        name=name,
                        enabled=True,
                        registered_at=self._clock.now(),
                        **values,
                    )
                )
                log.info("host %s registered", name, extra={"host": name})
            else:
                conn.execute(update(hosts).where(hosts.c.name == name).values(**values))
                log.info("host %s re-registered (was %s)", name, row.state, extra={"host": name})

    def heartbeat(self, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record that ``name`` is alive and check what it says runs there.

        With an ``instances`` list (what the host's driver sees), an instance this
        controller has ACTIVE on the host but the host lists as not running, or not at
        all, goes ERROR; ids the host lists that are not this host's instances come
        back as ``unknown`` (the agent removes them). Without the key nothing is checked.
        """
        seen = _heartbeat_instances(body)
        now = self._clock.now()
        rows: list[Any] = []
        with self._read.connect() as conn:
            row = conn.execute(
                select(hosts.c.state, hosts.c.enabled).where(hosts.c.name == name)
            ).first()
            if row is None:
                raise NotFound(f"host {name} is not registered")
            if row.state == "down":
                # A host that was declared down must register again and reconcile.
                raise NotFound(f"host {name} was marked down; register again")
            if seen is not None:
                rows = list(
                    conn.execute(
                        select(servers.c.id, servers.c.status, servers.c.deleted,
                               servers.c.fault_message, servers.c.request_id,
                               servers.c.global_request_id).where(servers.c.host == name)
                    )
                )  # fmt: skip
        self.beats.record(name, now)
        out: dict[str, Any] = {"enabled": bool(row.enabled), "state": row.state}
        if seen is not None:
            out["unknown"] = self._check_instances(rows, name, seen, now)
        return out

    def _check_instances(
        self, rows: list[Any], name: str, seen: dict[str, tuple[bool, str]], now: float
    ) -> list[str]:
        """Fault ACTIVE instances the host no longer runs; return ids it should not have.

        ``rows`` were read without the write lock; each fault is written only if the
        instance is still as it was read (a concurrent delete or report wins)."""
        host_down = HOST_DOWN_FAULT.format(name=name)
        faults: list[tuple[str, str, str | None, str, dict[str, str]]] = []
        for iid, status, deleted, old_fault, request_id, global_id in rows:
            # BUILD: still spawning; deleted: on its way out; ERROR: already faulted, except
            # "host down", which would turn ACTIVE again on a report and so gets the real cause
            if deleted or not (
                status == "ACTIVE"
                or (status == "ERROR" and (old_fault or "").startswith(host_down))
            ):
                continue
            if iid not in seen:
                fault = INSTANCE_GONE_FAULT.format(name=name)
            elif not seen[iid][0]:
                fault = INSTANCE_STOPPED_FAULT.format(
                    name=name, detail=untrusted_text(seen[iid][1] or "not running", 1024)
                )
            else:
                continue
            faults.append((iid, status, old_fault, fault, _ids(request_id, global_id)))
        if faults:
            with self._engine.begin() as conn:
                for iid, status, old_fault, fault, ids in faults:
                    same_fault = (
                        servers.c.fault_message.is_(None)
                        if old_fault is None
                        else servers.c.fault_message == old_fault
                    )
                    res = conn.execute(
                        update(servers)
                        .where(servers.c.id == iid, servers.c.host == name,
                               servers.c.status == status, servers.c.deleted.is_(False),
                               same_fault)
                        .values(status="ERROR", task_state=None, fault_message=fault,
                                fault_code=500, fault_at=now, updated_at=now)
                    )  # fmt: skip
                    if res.rowcount:
                        log.warning("%s", fault, extra={"host": name, "instance_id": iid, **ids})
        mine = {r[0] for r in rows}
        return sorted(i for i in seen if i not in mine)

    def pull(self, name: str) -> list[dict[str, Any]]:
        with self._read.connect() as conn:
            if conn.execute(select(hosts.c.id).where(hosts.c.name == name)).first() is None:
                raise NotFound(f"host {name} is not registered")
            rows = (
                conn.execute(select(servers).where(servers.c.host == name).order_by(servers.c.seq))
                .mappings()
                .all()
            )
            return self._specs(conn, rows)

    def uses_image(self, name: str, image_id: str) -> bool:
        """Whether an instance placed on host ``name`` needs image ``image_id``."""
        with self._read.connect() as conn:
            row = conn.execute(
                select(servers.c.id)
                .where(servers.c.host == name, servers.c.image_id == image_id)
                .limit(1)
            ).first()
        return row is not None

    def spec(self, server_id: str) -> dict[str, Any] | None:
        with self._read.connect() as conn:
            rows = conn.execute(select(servers).where(servers.c.id == server_id)).mappings().all()
            specs = self._specs(conn, rows)
        return specs[0] if specs else None

    def _specs(self, conn: Any, rows: Any) -> list[dict[str, Any]]:
        if not rows:
            return []
        image_ids = {r["image_id"] for r in rows}
        flavor_ids = {r["flavor_id"] for r in rows}
        imgs = {
            i["id"]: i
            for i in conn.execute(select(images).where(images.c.id.in_(image_ids))).mappings()
        }
        flvs = {
            f["id"]: f
            for f in conn.execute(select(flavors).where(flavors.c.id.in_(flavor_ids))).mappings()
        }
        return [self._spec(r, imgs.get(r["image_id"]), flvs.get(r["flavor_id"])) for r in rows]

    def _spec(self, r: Any, img: Any, flv: Any) -> dict[str, Any]:
        return {
            "id": r["id"],
            "name": r["name"],
            "hostname": r["hostname"],
            "project_id": r["project_id"],
            "status": r["status"],
            "desired": "deleted" if r["deleted"] else "running",
            "image": {
                "id": r["image_id"],
                "name": img["name"] if img else None,
                "builtin": img["builtin"] if img else None,
                "checksum": img["checksum"] if img else None,
                "os_hash_algo": img["os_hash_algo"] if img else None,
                "os_hash_value": img["os_hash_value"] if img else None,
                "size": img["size"] if img else None,
                "disk_format": img["disk_format"] if img else None,
                "container_format": img["container_format"] if img else None,
                "file_url": f"/agent/v1/images/{r['image_id']}/file",
            },
            "flavor": {
                "id": r["flavor_id"],
                "name": flv["name"] if flv else None,
                "vcpus": r["vcpus"],
                "ram": r["ram"],
                "disk": r["disk"],
            },
            "network": {
                "address": r["address"],
                "prefix": self._pool.prefix,
                "gateway": self._pool.gateway,
                "mac": r["mac"],
                "network_name": "public",
            },
            "keys": [r["public_key"]] if r["public_key"] else [],
            "user_data": r["user_data"],
            "config_drive": bool(r["config_drive"]),
            "metadata": dict(r["metadata"] or {}),
            "availability_zone": r["availability_zone"],
            "request_id": r["request_id"],
            "global_request_id": r["global_request_id"],
        }

    def report(self, server_id: str, body: dict[str, Any]) -> None:
        host = _req_str(body, "host")
        status = body.get("status")
        if status not in REPORT_STATUSES:
            raise BadRequest(f"status must be one of {', '.join(REPORT_STATUSES)}, not {status!r}")
        now = self._clock.now()
        with self._engine.begin() as conn:
            row = conn.execute(
                select(
                    servers.c.status, servers.c.deleted, servers.c.fault_message,
                    servers.c.request_id, servers.c.global_request_id,
                ).where(servers.c.id == server_id, servers.c.host == host)
            ).first()  # fmt: skip
            if row is None:
                raise NotFound(f"instance {server_id} is not assigned to host {host}")
            # the lines about the instance carry its create's ids, not the report call's
            extra = {"host": host, "instance_id": server_id,
                     **_ids(row.request_id, row.global_request_id)}  # fmt: skip
            values: dict[str, Any] = {"updated_at": now}
            if "console_log" in body and isinstance(body["console_log"], str):
                values["console_log"] = body["console_log"][-MAX_CONSOLE:]
            if isinstance(body.get("host_keys"), list):
                values["host_keys"] = [str(k) for k in body["host_keys"]][:16]
            if status == "DELETED":
                AddressPool.release(conn, server_id, now)
                conn.execute(delete(servers).where(servers.c.id == server_id))
                log.info("instance deleted on %s", host, extra=extra)
                return
            if row.deleted:
                conn.execute(update(servers).where(servers.c.id == server_id).values(**values))
                return
            if status == "ACTIVE" and row.status == "BUILD":
                values.update(status="ACTIVE", task_state=None, launched_at=now)
                log.info("instance active on %s", host, extra=extra)
            elif (
                status == "ACTIVE"
                and row.status == "ERROR"
                and (row.fault_message or "").startswith(HOST_DOWN_FAULT.format(name=host))
            ):
                values.update(status="ACTIVE", fault_message=None, fault_code=None, fault_at=None)
                log.info(
                    "instance active again on %s after the host returned",
                    host,
                    extra=extra,
                )
            elif status == "ERROR" and row.status != "ERROR":
                fault = untrusted_text(body.get("fault") or "instance failed on host")
                values.update(
                    status="ERROR",
                    task_state=None,
                    fault_message=fault,
                    fault_code=500,
                    fault_at=now,
                )
                log.warning(
                    "instance failed on %s: %s",
                    host,
                    fault,
                    extra=extra,
                )
            conn.execute(update(servers).where(servers.c.id == server_id).values(**values))

    # -- health ------------------------------------------------------------
    def check_down(self) -> list[str]:
        """Mark silent hosts down and fault their instances; return the names.

        A host is silent when neither the database nor this controller's unflushed
        heartbeats (``beats``) saw it within the timeout; looking takes no write lock.
        """
        now = self._clock.now()
        cutoff = now - self._config.hosts.heartbeat_timeout
        with self._read.connect() as conn:
            stale = conn.execute(
                select(hosts.c.name, hosts.c.last_heartbeat).where(
                    hosts.c.state == "up", hosts.c.last_heartbeat < cutoff
                )
            ).all()
        if not any(self.beats.freshest(n, last) < cutoff for n, last in stale):
            return []
        downed: list[str] = []
        with self._engine.begin() as conn:
            for name, _ in sorted(stale):  # name order, as placement locks hosts
                # judged again under the write lock: a heartbeat may have come meanwhile
                last = self.beats.freshest(name, float("-inf"))
                if last >= cutoff:
                    continue
                res = conn.execute(
                    update(hosts)
                    .where(hosts.c.name == name, hosts.c.state == "up",
                           hosts.c.last_heartbeat < cutoff)
                    .values(state="down")
                )  # fmt: skip
                if not res.rowcount:
                    continue
                stored = conn.execute(
                    select(hosts.c.last_heartbeat).where(hosts.c.name == name)
                ).scalar_one()
                silent = now - max(last, stored)
                msg = HOST_DOWN_FAULT.format(name=name) + f"no heartbeat for {silent:.0f}s"
                conn.execute(
                    update(servers)
                    .where(
                        servers.c.host == name,
                        servers.c.deleted.is_(False),
                        servers.c.status.in_(("BUILD", "ACTIVE")),
                    )
                    .values(
                        status="ERROR",
                        task_state=None,
                        fault_message=msg,
                        fault_code=500,
                        fault_at=now,
                        updated_at=now,
                    )
                )
                log.error(msg, extra={"host": name})
                downed.append(name)
        return downed

    async def run_health_checks(self, stop: asyncio.Event, workers: RegionWorkers) -> None:
        """Run ``check_down`` every check interval, in the agent pool (off the loop)."""
        while not stop.is_set():
            try:
                await workers.run("agent", self.check_down)
            except Exception:  # keep checking; the next pass may succeed
                log.exception("host health check failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._config.hosts.check_interval)

    async def run_heartbeat_flush(self, stop: asyncio.Event, workers: RegionWorkers) -> None:
        """Write recorded heartbeats to the database every flush interval
        (cloud/heartbeats.py), in the agent pool; ``Region.close`` writes the rest."""
        period = flush_interval(self._config.hosts.heartbeat_interval)
        while not stop.is_set():
            try:
                await workers.run("agent", self.beats.flush)
            except Exception:  # kept for the next flush
                log.exception("writing heartbeats failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)

    # -- admin -------------------------------------------------------------
    def set_enabled(self, name: str, enabled: bool, reason: str | None = None) -> dict[str, Any]:
        with self._engine.begin() as conn:
            res = conn.execute(
                update(hosts)
                .where(hosts.c.name == name)
                .values(enabled=enabled, disabled_reason=None if enabled else reason)
            )
        if res.rowcount == 0:
            raise NotFound(f"host {name} not found")
        return self.host_view(name)

    def host_view(self, name: str) -> dict[str, Any]:
        views = self.list_hosts(name)
        if not views:
            raise NotFound(f"host {name} not found")
        return views[0]

    def list_hosts(self, name: str | None = None) -> list[dict[str, Any]]:
        with self._read.connect() as conn:
            q = select(hosts).order_by(hosts.c.name)
            if name is not None:
                q = q.where(hosts.c.name == name)
            rows = conn.execute(q).mappings().all()
            usage = {
                h: (int(c), int(v or 0), int(m or 0), int(d or 0))
                for h, c, v, m, d in conn.execute(
                    select(
                        servers.c.host,
                        func.count(),
                        func.sum(servers.c.vcpus),
                        func.sum(servers.c.ram),
                        func.sum(servers.c.disk),
                    ).group_by(servers.c.host)
                )
            }
        out = []
        for r in rows:
            count, vcpus, ram, disk = usage.get(r["name"], (0, 0, 0, 0))
            out.append(
                {
                    "id": r["id"],
                    "name": r["name"],
                    "availability_zone": r["availability_zone"],
                    "driver": r["driver"],
                    "state": r["state"],
                    "enabled": bool(r["enabled"]),
                    "disabled_reason": r["disabled_reason"],
                    "version": r["version"],
                    "vcpus": r["vcpus"],
                    "ram_mb": r["ram_mb"],
                    "disk_gb": r["disk_gb"],
                    "vcpus_used": vcpus,
                    "ram_mb_used": ram,
                    "disk_gb_used": disk,
                    "instances": count,
                    "last_heartbeat": self.beats.freshest(r["name"], r["last_heartbeat"]),
                }
            )
        return out


def _heartbeat_instances(body: Any) -> dict[str, tuple[bool, str]] | None:
    """The heartbeat's ``instances`` as {id: (running, detail)}; None when not sent."""
    if body is None:
        return None
    if not isinstance(body, dict):
        raise BadRequest("the heartbeat body must be a JSON object")
    if "instances" not in body:
        return None
    items = body["instances"]
    if not isinstance(items, list) or len(items) > MAX_HEARTBEAT_INSTANCES:
        raise BadRequest(f"'instances' must be a list of at most {MAX_HEARTBEAT_INSTANCES} objects")
    seen: dict[str, tuple[bool, str]] = {}
    for n, item in enumerate(items):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("id"), str)
            or not isinstance(item.get("running"), bool)
        ):
            raise BadRequest(
                f"'instances[{n}]' must be an object with 'id' (string) and 'running' (boolean)"
            )
        detail = item.get("detail")
        seen[item["id"]] = (item["running"], str(detail)[:500] if detail else "")
    return seen


def _field(body: Any, key: str) -> Any:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body.get(key)


def _ids(request_id: str | None, global_request_id: str | None) -> dict[str, str]:
    """The create call's ids of an instance, for ``extra=`` (absent ones left out)."""
    ids = {"request_id": request_id, "global_request_id": global_request_id}
    return {k: v for k, v in ids.items() if v}


def _req_str(body: dict[str, Any], key: str) -> str:
    value = _field(body, key)
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise BadRequest(f"'{key}' is required and must be a non-empty string (at most 255)")
    return value


def _opt_str(body: dict[str, Any], key: str, max_len: int) -> str:
    """An optional text field ('' when absent), at most ``max_len`` characters (what the
    column holds on every backend)."""
    value = _field(body, key)
    text = "" if value is None else str(value)
    if len(text) > max_len or "\x00" in text:
        raise BadRequest(f"'{key}' must be a string of at most {max_len} characters")
    return text


def _req_int(body: dict[str, Any], key: str) -> int:
    value = _field(body, key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_INT:
        raise BadRequest(f"'{key}' is required and must be an integer from 1 to {MAX_INT}")
    return value
