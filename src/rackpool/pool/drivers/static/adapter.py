"""The ``static`` provider: fixed SSH hosts handed out one node (job) at a time.

A "machine" is an allocation of a host; creating and deleting are bookkeeping, so the
state machines complete on their first ``advance()``. The host of a node is chosen when
the node is created, under its provider's store-wide lock (:meth:`StaticAdapter.reserve`);
which node holds which host comes from the pool's records on every loop pass
(:meth:`StaticAdapter.recover`), so several launchers never hand out one host twice.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from concurrent.futures import Executor
from typing import Any

from rackpool.core.clock import Clock
from rackpool.pool.drivers.interface import Adapter, Instance, LabelInfo, LaunchSpec, StateMachine
from rackpool.pool.drivers.static.config import StaticHost, StaticProvider
from rackpool.pool.errors import LaunchError
from rackpool.pool.model import META_NODE, Resources


def host_id(host: StaticHost) -> str:
    return f"{host.name}:{host.connection_port}"


class _Allocate(StateMachine):
    def __init__(self, adapter: StaticAdapter, spec: LaunchSpec, saved: Mapping[str, Any] | None):
        super().__init__(saved)
        self.adapter, self.spec = adapter, spec

    def advance(self) -> None:
        if self.complete:
            return
        host = self.adapter.allocate(self.spec, self.external_id)
        self.external_id = host_id(host)
        self.instance = self.adapter.instance(host, self.spec.node_id)
        self.state = self.COMPLETE


class _Free(StateMachine):
    def __init__(self, adapter: StaticAdapter, external_id: str, saved: Mapping[str, Any] | None):
        super().__init__(saved)
        self.adapter, self.external_id = adapter, external_id

    def advance(self) -> None:
        assert self.external_id is not None
        self.adapter.free(self.external_id)
        self.state = self.COMPLETE


class StaticAdapter(Adapter):
    provider: StaticProvider
    tracks_allocations = True

    def __init__(self, provider: StaticProvider, executor: Executor, clock: Clock) -> None:
        super().__init__(provider, executor, clock)
        self.hosts = {host_id(h): h for pool in provider.pools for h in pool.nodes}
        self._owner: dict[str, str] = {}  # host id -> node id
        self._lock = threading.Lock()

    def reserve(self, label: str, taken: Collection[str]) -> str | None:
        return next(
            (hid for hid, h in self.hosts.items() if label in h.labels and hid not in taken), None
        )

    def allocate(self, spec: LaunchSpec, wanted: str | None) -> StaticHost:
        with self._lock:
            if wanted:  # reserved for this node when it was created
                if self._owner.get(wanted) in (None, spec.node_id) and wanted in self.hosts:
                    self._owner[wanted] = spec.node_id
                    return self.hosts[wanted]
                owner = self._owner.get(wanted, "none: not configured")
                raise LaunchError(f"static host {wanted} is not free (node {owner})")
            for hid, host in self.hosts.items():
                if spec.label in host.labels and hid not in self._owner:
                    self._owner[hid] = spec.node_id
                    return host
        raise LaunchError(f"no free static host for label {spec.label}")

    def free(self, hid: str) -> None:
        with self._lock:
            self._owner.pop(hid, None)

    def instance(self, host: StaticHost, node_id: str) -> Instance:
        return Instance(
            external_id=host_id(host),
            name=host.name,
            status="active",
            metadata={META_NODE: node_id},
            interface_ip=host.name,
            public_ipv4=host.name,
            resources=Resources(1, 0, 0),
            connection_port=host.connection_port,
        )

    def create_machine(self, spec: LaunchSpec, saved: Mapping[str, Any] | None) -> StateMachine:
        return _Allocate(self, spec, saved)

    def delete_machine(self, external_id: str, saved: Mapping[str, Any] | None) -> StateMachine:
        return _Free(self, external_id, saved)

    def list_instances(self) -> list[Instance]:
        # Allocations are ours by construction; nothing on a static host can leak.
        return []

    def quota_limits(self) -> Resources:
        return Resources.unlimited()

    def label_resources(self, label: str) -> Resources:
        return Resources(1, 0, 0)

    def label_info(self, label: str) -> LabelInfo:
        host = next(h for h in self.hosts.values() if label in h.labels)
        return LabelInfo(host.username, host.connection_port, host.host_key_checking)

    def label_capacity(self, label: str) -> int | None:
        with self._lock:
            return sum(
                1 for hid, h in self.hosts.items() if label in h.labels and hid not in self._owner
            )

    def recover(self, allocations: Mapping[str, str]) -> None:
        with self._lock:
            self._owner = {hid: nid for nid, hid in allocations.items() if hid in self.hosts}
