"""The ``fake`` provider: an in-memory cloud for the framework's tests and benchmarks.

:class:`FakeCloud` behaves like a small Nova (servers BUILD → ACTIVE, ERROR with a
fault, quota errors, an API that can go down or hang); tests hold it to break things.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from rackpool.core.clock import Clock, SystemClock
from rackpool.pool.drivers.fake.config import FakeProvider
from rackpool.pool.drivers.interface import Adapter, Instance, LabelInfo, LaunchSpec, StateMachine
from rackpool.pool.drivers.machines import ServerCreate, ServerDelete
from rackpool.pool.errors import ProviderUnavailable, QuotaError
from rackpool.pool.model import Resources


@dataclass
class _Server:
    id: str
    name: str
    metadata: dict[str, str]
    resources: Resources
    ip: str
    created: float
    error: str = ""


@dataclass
class FakeCloud:
    """State of one fake cloud. Thread-safe; every knob may be turned while running."""

    boot_delay: float = 0.0
    quota: Resources = field(default_factory=Resources.unlimited)
    clock: Clock = field(default_factory=SystemClock)
    down: bool = False
    fail_next: int = 0
    hang: threading.Event = field(default_factory=threading.Event)
    servers: dict[str, _Server] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    quota_errors: int = 0
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _enter(self, what: str) -> None:
        with self._lock:
            self.calls[what] = self.calls.get(what, 0) + 1
        if self.hang.is_set():
            # An API that accepted the connection and never answers (bounded).
            deadline = self.clock.monotonic() + 30
            while self.hang.is_set() and self.clock.monotonic() < deadline:
                threading.Event().wait(0.05)
        if self.down:
            raise ProviderUnavailable("fake cloud: connection refused")

    def used(self) -> Resources:
        total = Resources()
        for s in self.servers.values():
            total = total + s.resources
        return total

    def create(self, name: str, metadata: Mapping[str, str], need: Resources) -> _Server:
        self._enter("create")
        with self._lock:
            if not (self.quota - self.used()).fits(need):
                self.quota_errors += 1
                raise QuotaError("Quota exceeded for instances/cores/ram")
            n = next(self._ids)
            srv = _Server(
                id=f"fake-{n:06d}",
                name=name,
                metadata=dict(metadata),
                resources=need,
                ip=f"198.18.{(n >> 8) & 255}.{n & 255}",
                created=self.clock.monotonic(),
            )
            if self.fail_next > 0:
                self.fail_next -= 1
                srv.error = "fake cloud: injected boot failure"
            self.servers[srv.id] = srv
        return srv

    def add_foreign(
        self, metadata: Mapping[str, str], need: Resources = Resources(1, 1, 512)
    ) -> str:
        """A server made behind the pool's back (leaks, other users' usage)."""
        with self._lock:
            n = next(self._ids)
            sid = f"foreign-{n:06d}"
            self.servers[sid] = _Server(sid, sid, dict(metadata), need, "", self.clock.monotonic())
        return sid

    def status(self, srv: _Server) -> str:
        if srv.error:
            return "error"
        return "active" if self.clock.monotonic() - srv.created >= self.boot_delay else "building"

    def delete(self, sid: str) -> None:
        self._enter("delete")
        with self._lock:
            self.servers.pop(sid, None)

    def snapshot(self) -> list[_Server]:
        self._enter("list")
        with self._lock:
            return list(self.servers.values())


class FakeAdapter(Adapter):
    provider: FakeProvider

    def __init__(
        self,
        provider: FakeProvider,
        executor: Executor,
        clock: Clock,
        cloud: FakeCloud | None = None,
    ) -> None:
        super().__init__(provider, executor, clock)
        q = provider.quota
        self.cloud = cloud or FakeCloud(
            boot_delay=provider.boot_delay,
            quota=Resources(
                q.instances if q.instances >= 0 else float("inf"),
                q.cores if q.cores >= 0 else float("inf"),
                q.ram if q.ram >= 0 else float("inf"),
            ),
        )
        self._labels = {lab.name: lab for pool in provider.pools for lab in pool.labels}

    def _instance(self, srv: Any) -> Instance:
        return Instance(
            external_id=srv.id,
            name=srv.name,
            status=self.cloud.status(srv),
            metadata=dict(srv.metadata),
            interface_ip=srv.ip,
            public_ipv4=srv.ip,
            private_ipv4=srv.ip,
            az="nova",
            resources=srv.resources,
            fault=srv.error,
        )

    def _create(self, spec: LaunchSpec) -> Instance:
        need = self.label_resources(spec.label)
        return self._instance(self.cloud.create(spec.hostname, spec.metadata, need))

    def _get(self, sid: str) -> Instance | None:
        self.cloud._enter("get")
        srv = self.cloud.servers.get(sid)
        return None if srv is None else self._instance(srv)

    def _find(self, node_id: str) -> Instance | None:
        return next(
            (i for i in self.list_instances() if i.metadata.get("rackpool_node_id") == node_id),
            None,
        )

    def create_machine(self, spec: LaunchSpec, saved: Mapping[str, Any] | None) -> StateMachine:
        poll = min(0.05, max(self.provider.boot_delay / 4, 0.005))
        return ServerCreate(self, spec, saved, self._create, self._get, self._find, poll)

    def delete_machine(self, external_id: str, saved: Mapping[str, Any] | None) -> StateMachine:
        return ServerDelete(self, external_id, saved, self.cloud.delete, self._get, 0.02)

    def list_instances(self) -> list[Instance]:
        return [self._instance(s) for s in self.cloud.snapshot()]

    def quota_limits(self) -> Resources:
        self.cloud._enter("limits")
        return self.cloud.quota

    def label_resources(self, label: str) -> Resources:
        lab = self._labels[label]
        return Resources(1, lab.cores, lab.ram)

    def label_info(self, label: str) -> LabelInfo:
        return LabelInfo(username=self._labels[label].username)
