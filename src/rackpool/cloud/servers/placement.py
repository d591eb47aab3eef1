"""Where the servers of one create go: a host each (the scheduler) and an address each.

Two controllers may place at once. The scheduler reads every candidate host's usage
without locks, picks, and then this module locks the picked hosts' rows (``SELECT …
FOR UPDATE``, in name order so two placements never wait on each other in a cycle) and
reads their usage again: every server placed on a host is inserted by a transaction
that held that host's lock, so the second read sees every committed placement. If a
pick no longer fits, :class:`PlacementRaced` makes the caller run its whole
transaction again with fresh usage (SQLite: writers are serialised, nothing races).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from rackpool.cloud.db.schema import hosts, servers
from rackpool.cloud.network import AddressesExhausted, AddressPool, mac_for
from rackpool.cloud.scheduler import HostLoad, Scheduler
from rackpool.core.errors import BadRequest, TemporaryError

NO_VALID_HOST = "No valid host was found. There are not enough hosts available."


class PlacementRaced(TemporaryError):
    """Another controller filled a picked host meanwhile: place again."""


@dataclass(frozen=True)
class Size:
    vcpus: int
    ram: int
    disk: int


@dataclass(frozen=True)
class Placed:
    """A host and address for one server, or why there is none (``fault``)."""

    server_id: str
    host: str | None = None
    availability_zone: str | None = None
    address: str | None = None
    mac: str | None = None
    fault: str | None = None


class Placement:
    def __init__(self, scheduler: Scheduler, pool: AddressPool) -> None:
        self._scheduler = scheduler
        self._pool = pool

    def place(
        self,
        conn: Connection,
        server_ids: list[str],
        size: Size,
        az: str | None,
        now: float,
        heartbeat_timeout: float,
        beats: dict[str, float],
        last_attempt: bool = False,
        forced_host: str | None = None,
    ) -> list[Placed]:
        """A :class:`Placed` per id, hosts locked and re-checked, addresses allocated.

        Raises :class:`PlacementRaced` if a picked host filled up meanwhile; on the
        ``last_attempt`` the servers get "no valid host" instead (as Nova does once its
        scheduling retries are used up).

        ``forced_host`` (a cloud admin's ``ZONE:HOST``, checked by the caller): only that
        host, even if disabled; it must exist (else BadRequest, 400), be in ``az`` when
        one is given, be up and have room (else "no valid host", as for any server)."""
        why = ""
        if forced_host is not None:
            why = self._check_forced(conn, forced_host, az, now, heartbeat_timeout, beats)
            az = None  # the host decides the zone
        loads = self._scheduler.candidates(conn, now, heartbeat_timeout, beats, forced_host)
        picks = [
            self._scheduler.pick(loads, size.vcpus, size.ram, size.disk, az) for _ in server_ids
        ]
        if forced_host is not None and not why and any(p is None for p in picks):
            why = f" (host {forced_host} has not enough free vCPUs, RAM or disk)"
        try:
            self._confirm(conn, [p for p in picks if p is not None], size, forced_host)
        except PlacementRaced as exc:
            if not last_attempt:
                raise
            return [Placed(sid, fault=f"{NO_VALID_HOST} ({exc})") for sid in server_ids]
        out = []
        for sid, host in zip(server_ids, picks, strict=True):
            if host is None:
                out.append(Placed(sid, fault=NO_VALID_HOST + why))
                continue
            try:
                addr = self._pool.allocate(conn, sid, now)
            except AddressesExhausted as exc:
                out.append(Placed(sid, fault=f"{NO_VALID_HOST} {exc}"))
                continue
            out.append(Placed(sid, host.name, az or host.availability_zone, addr, mac_for(addr)))
        return out

    @staticmethod
    def _check_forced(
        conn: Connection,
        name: str,
        az: str | None,
        now: float,
        heartbeat_timeout: float,
        beats: dict[str, float],
    ) -> str:
        """BadRequest if the forced host is unknown or not in ``az``; else why it cannot
        take servers now ("" when it is up and alive)."""
        row = (
            conn.execute(
                select(hosts.c.availability_zone, hosts.c.state, hosts.c.last_heartbeat).where(
                    hosts.c.name == name
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise BadRequest(
                f"Compute host {name} could not be found. (availability_zone ZONE:HOST "
                "names a registered host: see GET /admin/v1/hosts)"
            )
        if az is not None and row["availability_zone"] != az:
            raise BadRequest(
                f"Compute host {name} is not in availability zone {az!r} (it is in "
                f"{row['availability_zone']!r}); use {row['availability_zone']}:{name} or :{name}"
            )
        beat = max(row["last_heartbeat"], beats.get(name, row["last_heartbeat"]))
        if row["state"] != "up" or beat < now - heartbeat_timeout:
            return f" (host {name} is down)"
        return ""

    def _confirm(
        self, conn: Connection, picks: list[HostLoad], size: Size, forced_host: str | None = None
    ) -> None:
        """Lock the picked hosts; raise PlacementRaced unless each still takes its share
        (a forced host may be disabled)."""
        if not picks:
            return
        wanted = Counter(h.name for h in picks)
        by_name = {h.name: h for h in picks}
        locked = {
            r.name: r
            for r in conn.execute(
                select(hosts.c.name, hosts.c.enabled, hosts.c.state)
                .where(hosts.c.name.in_(sorted(wanted)))
                .order_by(hosts.c.name)
                .with_for_update()
            )
        }
        usage = {
            h: (int(v or 0), int(r or 0), int(d or 0))
            for h, v, r, d in conn.execute(
                select(servers.c.host, func.sum(servers.c.vcpus), func.sum(servers.c.ram),
                       func.sum(servers.c.disk))
                .where(servers.c.host.in_(sorted(wanted)))
                .group_by(servers.c.host)
            )
        }  # fmt: skip
        for name, n in wanted.items():
            row = locked.get(name)
            if row is None or not (row.enabled or name == forced_host) or row.state != "up":
                raise PlacementRaced(f"host {name} went away while placing")
            load = by_name[name]
            vcpus, ram, disk = usage.get(name, (0, 0, 0))
            fresh = HostLoad(
                name, load.availability_zone, load.vcpus, load.ram_mb, load.disk_gb,
                used_vcpus=vcpus, used_ram=ram, used_disk=disk,
            )  # fmt: skip
            if not fresh.fits(n * size.vcpus, n * size.ram, n * size.disk):
                raise PlacementRaced(f"host {name} filled up while placing")
