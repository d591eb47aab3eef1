"""Value objects of the pool: nodes and node requests, frozen and serialisable.

Both carry a ``version`` the store bumps on every write (compare-and-set), so a store
with several writers (ZooKeeper) can refuse a stale update.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from rackpool.core.states import NodeState, RequestState

# Metadata keys every instance we create carries (leak cleanup reads them back).
META_POOL = "rackpool_pool"
META_NODE = "rackpool_node_id"
META_PROVIDER = "rackpool_provider"
META_LABEL = "rackpool_label"


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    provider: str
    pool: str
    state: NodeState
    state_time: float
    created: float
    region: str = ""
    az: str = ""
    external_id: str | None = None
    hostname: str = ""
    interface_ip: str = ""
    public_ipv4: str = ""
    private_ipv4: str = ""
    public_ipv6: str = ""
    connection_port: int = 22
    username: str = ""
    host_keys: tuple[str, ...] = ()
    allocated_to: str | None = None
    launch_attempts: int = 0
    launch_state: Mapping[str, Any] | None = None
    delete_state: Mapping[str, Any] | None = None
    ready_time: float | None = None
    comment: str = ""
    hold_job: str = ""
    # the global request id sent with this node's creates (every attempt): the region's
    # and the host agent's lines about its server carry it (docs/ops.md "Request ids")
    global_request_id: str = ""
    # fencing token of the launcher working on the node: bumped by every launcher that
    # takes the node over, checked on every write a launcher makes for its launch or
    # delete, so a launcher that stalled past its session never overwrites the new one
    launch_epoch: int = 0
    version: int = 0

    def evolve(self, **changes: Any) -> Node:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        # field by field, not dataclasses.asdict (a deep copy: the launcher writes and
        # encodes records many times a second); nested states are copied one level
        d = {f: getattr(self, f) for f in _NODE_FIELDS}
        d["state"] = str(self.state)
        d["host_keys"] = list(self.host_keys)
        d["launch_state"] = dict(self.launch_state) if self.launch_state is not None else None
        d["delete_state"] = dict(self.delete_state) if self.delete_state is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        kw = {k: v for k, v in d.items() if k in _NODE_KNOWN}
        kw["state"] = NodeState(kw["state"])
        kw["host_keys"] = tuple(kw.get("host_keys") or ())
        return cls(**kw)

    def connection(self) -> dict[str, Any]:
        """What a CI job needs to use the node."""
        return {
            "id": self.id,
            "label": self.label,
            "interface_ip": self.interface_ip,
            "port": self.connection_port,
            "username": self.username,
            "host_keys": list(self.host_keys),
            "provider": self.provider,
            "region": self.region,
            "az": self.az,
            "state": str(self.state),
        }


@dataclass(frozen=True)
class NodeRequest:
    id: str
    labels: tuple[str, ...]
    state: RequestState
    state_time: float
    created: float
    priority: int = 100
    requestor: str = ""
    provider: str | None = None
    nodes: tuple[str, ...] = ()
    declined_by: tuple[str, ...] = ()
    min_ready: bool = False
    reason: str = ""
    version: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def evolve(self, **changes: Any) -> NodeRequest:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = {f: getattr(self, f) for f in _REQUEST_FIELDS}
        d["state"] = str(self.state)
        for k in ("labels", "nodes", "declined_by"):
            d[k] = list(d[k])
        d["extra"] = dict(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        kw = {k: v for k, v in d.items() if k in _REQUEST_KNOWN}
        kw["state"] = RequestState(kw["state"])
        for k in ("labels", "nodes", "declined_by"):
            kw[k] = tuple(kw.get(k) or ())
        return cls(**kw)

    @property
    def done(self) -> bool:
        return self.state in (RequestState.FULFILLED, RequestState.FAILED)


_NODE_FIELDS = tuple(f.name for f in dataclasses.fields(Node))
_REQUEST_FIELDS = tuple(f.name for f in dataclasses.fields(NodeRequest))
_NODE_KNOWN = frozenset(_NODE_FIELDS)
_REQUEST_KNOWN = frozenset(_REQUEST_FIELDS)


@dataclass(frozen=True)
class Resources:
    """Cloud resources: a quota limit, a usage or what one label needs."""

    instances: float = 0
    cores: float = 0
    ram: float = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.instances + other.instances, self.cores + other.cores, self.ram + other.ram
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.instances - other.instances, self.cores - other.cores, self.ram - other.ram
        )

    def fits(self, need: Resources) -> bool:
        return (
            need.instances <= self.instances and need.cores <= self.cores and need.ram <= self.ram
        )

    @staticmethod
    def unlimited() -> Resources:
        inf = float("inf")
        return Resources(inf, inf, inf)


UNLIMITED = -1  # a limit that is not one, as Nova writes it


def _count(value: float) -> int:
    """A resource count for JSON: infinity (no limit) as -1, like Nova's quota sets."""
    return UNLIMITED if value == float("inf") else int(round(value))


@dataclass(frozen=True)
class QuotaFigure:
    """One resource of a provider's quota as the pool counts it against the limit."""

    limit: int  # the provider's limit; -1: unlimited
    in_use: int  # pool + other: what the pool counts as taken
    pool: int  # this pool's nodes (every launcher's), by what their label needs
    other: int  # servers in the project without this pool's tag (as last listed)


@dataclass(frozen=True)
class ProviderQuota:
    """The provider's limits and usage as the pool last read them (this launcher's view).

    Published only once both were read (``quota_known``); RAM is in MiB."""

    instances: QuotaFigure
    cores: QuotaFigure
    ram: QuotaFigure
    limits_read_at: float  # wall clock: the limits' answer arrived (refreshed every quota-refresh)
    usage_read_at: float  # wall clock: the server list (other servers) arrived (cleanup-interval)
    hosts: int | None = None  # static providers: the hosts (one node each); else None

    @classmethod
    def of(
        cls,
        limits: Resources,
        pool: Resources,
        other: Resources,
        limits_read_at: float,
        usage_read_at: float,
        hosts: int | None = None,
    ) -> ProviderQuota:
        def figure(key: str) -> QuotaFigure:
            mine, theirs = _count(getattr(pool, key)), _count(getattr(other, key))
            return QuotaFigure(_count(getattr(limits, key)), mine + theirs, mine, theirs)

        return cls(
            figure("instances"), figure("cores"), figure("ram"),
            limits_read_at, usage_read_at, hosts,
        )  # fmt: skip


@dataclass(frozen=True)
class PoolCap:
    """A provider pool's own caps (``max-servers``/``max-cores``/``max-ram``, None when
    not set) and what this pool's nodes of its labels take of them."""

    pool: str
    max_servers: int | None
    max_cores: int | None
    max_ram: int | None  # MiB
    instances: int
    cores: int
    ram: int


@dataclass(frozen=True)
class ProviderStatus:
    """What ``rackpool provider list`` shows."""

    name: str
    driver: str
    region: str
    paused: bool
    in_service: bool
    reason: str
    consecutive_errors: int
    nodes: int
    priority: int
    quota_known: bool  # limits and usage read: the provider can launch (rackpool up waits)
    quota: ProviderQuota | None = None  # None until quota_known
    caps: tuple[PoolCap, ...] = ()  # its pools that set a max-*

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
