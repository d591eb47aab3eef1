"""One region controller: database, services, fake hosts and background checks."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import OperationalError

from rackpool.cloud.compute import ComputeService
from rackpool.cloud.config import DEFAULT_FLAVORS, RegionConfig
from rackpool.cloud.db import url as db_url
from rackpool.cloud.db.engine import make_engine, startup_lock, upgrade
from rackpool.cloud.db.schema import flavors
from rackpool.cloud.fakehost import FakeHostRunner
from rackpool.cloud.hosts import HostService
from rackpool.cloud.identity import IdentityService
from rackpool.cloud.images import ImageService
from rackpool.cloud.network import AddressPool
from rackpool.cloud.workers import RegionWorkers
from rackpool.core.clock import Clock, SystemClock
from rackpool.core.errors import TemporaryError

log = logging.getLogger("rackpool.cloud.region")


@dataclass
class Region:
    config: RegionConfig
    engine: Engine
    identity: IdentityService
    compute: ComputeService
    images: ImageService
    hosts: HostService
    clock: Clock
    workers: RegionWorkers
    fake_hosts: list[FakeHostRunner] = field(default_factory=list)

    @classmethod
    def open(cls, config: RegionConfig, clock: Clock | None = None) -> Region:
        """Open (and migrate) the region's database and build its services."""
        clock = clock or SystemClock()
        state = Path(config.state_dir)
        state.mkdir(parents=True, exist_ok=True)
        engine = make_engine(
            config.database_url(),
            pool_size=config.workers.api + config.workers.agent + config.workers.heartbeat,
        )
        pool = AddressPool(config.network.cidr, str(config.network.gateway))
        try:
            with startup_lock(engine):  # a second controller starting now waits, finds it done
                upgrade(engine)
                pool.ensure(engine)
        except OperationalError as exc:
            engine.dispose()
            reason = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
            raise TemporaryError(
                f"database {db_url.redact(config.database_url())}: cannot use it: {reason} "
                "(check database: in region.yaml and that the server runs)"
            ) from None
        hosts = HostService(engine, config, clock, pool)
        region = cls(
            config=config,
            engine=engine,
            identity=IdentityService(engine, clock, config.token_ttl, config.admin_project),
            compute=ComputeService(engine, config, clock, pool, hosts),
            images=ImageService(engine, clock, state / "images", config.images),
            hosts=hosts,
            clock=clock,
            workers=RegionWorkers(
                config.workers.api, config.workers.agent, config.region, config.workers.heartbeat
            ),
        )
        with startup_lock(engine):
            region._seed()
        region.fake_hosts = [
            FakeHostRunner(h, hosts, config.hosts.heartbeat_interval, region.workers)
            for h in config.fake_hosts
        ]
        return region

    def _seed(self) -> None:
        if self.config.host_image:
            self.images.ensure_host_image()
        if self.config.default_flavors:
            with self.engine.begin() as conn:
                have = {r.name for r in conn.execute(select(flavors.c.name))}
                for f in DEFAULT_FLAVORS:
                    if f.name not in have:
                        conn.execute(
                            insert(flavors).values(
                                id=f.id,
                                name=f.name,
                                vcpus=f.vcpus,
                                ram=f.ram,
                                disk=f.disk,
                                is_public=True,
                            )
                        )

    def ensure_project(self, project: str, user: str, password: str, role: str) -> str:
        """Idempotently create a project with one user holding ``role`` (bootstrap)."""
        from rackpool.core.errors import NotFound

        try:
            pid = self.identity.project_id(project)
        except NotFound:
            pid = self.identity.create_project(project)  # quota: the region's default_quota
        try:
            uid = self.identity.user_id(user)
            self.identity.set_password(user, password)
        except NotFound:
            uid = self.identity.create_user(user, password)
        self.identity.assign_role(uid, pid, role)
        if role == "admin":
            self.identity.assign_role(uid, pid, "member")
        return pid

    async def run_background(self, stop: asyncio.Event) -> None:
        tasks = [
            asyncio.create_task(self.hosts.run_health_checks(stop, self.workers)),
            asyncio.create_task(self.hosts.run_heartbeat_flush(stop, self.workers)),
        ]
        tasks += [asyncio.create_task(h.run(stop)) for h in self.fake_hosts]
        try:
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        self.workers.close()
        try:
            self.hosts.beats.flush()  # the heartbeats recorded since the last flush
        except Exception:
            log.exception("writing the last heartbeats failed")
        self.engine.dispose()
