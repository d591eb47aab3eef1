"""Placement: filter hosts that can take an instance, then weigh them (spread or pack)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection, func, select

from rackpool.cloud.config import SchedulerConfig
from rackpool.cloud.db.schema import hosts, servers


@dataclass
class HostLoad:
    name: str
    availability_zone: str
    vcpus: float
    ram_mb: float
    disk_gb: float
    used_vcpus: int = 0
    used_ram: int = 0
    used_disk: int = 0
    instances: int = 0
    placed: list[str] = field(default_factory=list)

    def fits(self, vcpus: int, ram: int, disk: int) -> bool:
        return (
            self.used_vcpus + vcpus <= self.vcpus
            and self.used_ram + ram <= self.ram_mb
            and self.used_disk + disk <= self.disk_gb
        )

    def free_fraction(self) -> float:
        return min(
            1 - self.used_vcpus / self.vcpus if self.vcpus else 0,
            1 - self.used_ram / self.ram_mb if self.ram_mb else 0,
        )

    def take(self, vcpus: int, ram: int, disk: int) -> None:
        self.used_vcpus += vcpus
        self.used_ram += ram
        self.used_disk += disk
        self.instances += 1


class Scheduler:
    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config

    def candidates(
        self,
        conn: Connection,
        now: float,
        heartbeat_timeout: float,
        beats: Mapping[str, float] | None = None,
        forced_host: str | None = None,
    ) -> list[HostLoad]:
        """Enabled, alive hosts with their current usage (capacity times allocation ratios).

        Alive: a heartbeat within the timeout, in the database or in ``beats`` (the
        controller's heartbeats not written yet, cloud/heartbeats.py). With
        ``forced_host`` (an admin's ``ZONE:HOST``) only that host, enabled or not (as
        Nova, a forced host skips the filters; it must still be alive and have room)."""
        cfg = self.config
        beats = beats or {}
        cutoff = now - heartbeat_timeout
        if forced_host is not None:
            which = select(hosts).where(hosts.c.name == forced_host, hosts.c.state == "up")
        else:
            which = select(hosts).where(hosts.c.enabled.is_(True), hosts.c.state == "up")
        rows = [
            r
            for r in conn.execute(which).mappings()
            if max(r["last_heartbeat"], beats.get(r["name"], r["last_heartbeat"])) >= cutoff
        ]
        loads = {
            r["name"]: HostLoad(
                name=r["name"],
                availability_zone=r["availability_zone"],
                vcpus=r["vcpus"] * cfg.cpu_allocation_ratio,
                ram_mb=r["ram_mb"] * cfg.ram_allocation_ratio,
                disk_gb=r["disk_gb"] * cfg.disk_allocation_ratio,
            )
            for r in rows
        }
        if not loads:
            return []
        usage = conn.execute(
            select(
                servers.c.host,
                func.sum(servers.c.vcpus),
                func.sum(servers.c.ram),
                func.sum(servers.c.disk),
                func.count(),
            )
            .where(servers.c.host.in_(list(loads)))
            .group_by(servers.c.host)
        )
        for host, vcpus, ram, disk, count in usage:
            load = loads[host]
            load.used_vcpus, load.used_ram, load.used_disk = int(vcpus), int(ram), int(disk)
            load.instances = int(count)
        return list(loads.values())

    def pick(
        self, loads: list[HostLoad], vcpus: int, ram: int, disk: int, az: str | None
    ) -> HostLoad | None:
        fitting = [
            h
            for h in loads
            if (az is None or h.availability_zone == az) and h.fits(vcpus, ram, disk)
        ]
        if not fitting:
            return None
        if self.config.weigher == "spread":
            best = max(fitting, key=lambda h: (h.free_fraction(), -h.instances, h.name))
        else:
            best = min(fitting, key=lambda h: (h.free_fraction(), h.name))
        best.take(vcpus, ram, disk)
        return best
