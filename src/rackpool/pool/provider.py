"""The framework side of one provider: its adapter, executor, health and quota cache.

The executor is owned here, sized by ``max-concurrency``: every blocking backend call
of this provider runs in it, so a hung cloud cannot starve the others. A finished call
wakes the launcher loop, which takes its result at once rather than on its next tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from rackpool.core.clock import Clock
from rackpool.pool.drivers.common_config import PoolBase, ProviderBase
from rackpool.pool.drivers.interface import Adapter, Call, Instance, LabelInfo
from rackpool.pool.errors import LaunchError
from rackpool.pool.health import Health
from rackpool.pool.model import META_POOL, Node, Resources

log = logging.getLogger("rackpool.pool.provider")

P = ParamSpec("P")
T = TypeVar("T")

AdapterFactory = Callable[[ProviderBase, Executor, Clock], Adapter]

# Nodes that hold cloud resources (everything not yet gone).
HOLDING = ("building", "ready", "in-use", "used", "hold", "deleting", "failed")


def default_adapter(provider: ProviderBase, executor: Executor, clock: Clock) -> Adapter:
    driver = getattr(provider, "driver", "")
    if driver == "fake":
        from rackpool.pool.drivers.fake import FakeAdapter, FakeProvider

        assert isinstance(provider, FakeProvider)
        return FakeAdapter(provider, executor, clock)
    if driver == "static":
        from rackpool.pool.drivers.static import StaticAdapter, StaticProvider

        assert isinstance(provider, StaticProvider)
        return StaticAdapter(provider, executor, clock)
    if driver == "openstack":
        from rackpool.pool.drivers.openstack import OpenStackProvider
        from rackpool.pool.drivers.openstack.adapter import OpenStackAdapter

        assert isinstance(provider, OpenStackProvider)
        return OpenStackAdapter(provider, executor, clock)
    raise ValueError(f"unknown driver {driver!r}")


class NotifyingExecutor(ThreadPoolExecutor):
    """A thread pool that calls ``on_done()`` (from the worker) after each call finishes."""

    def __init__(self, max_workers: int, name: str, on_done: Callable[[], None]) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=name)
        self._on_done = on_done

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        fut = super().submit(fn, *args, **kwargs)
        fut.add_done_callback(lambda _f: self._on_done())
        return fut


class ProviderRuntime:
    def __init__(
        self,
        config: ProviderBase,
        factory: AdapterFactory,
        clock: Clock,
        pool_name: str,
        on_done: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = config.name
        self.config = config
        self.clock = clock
        self.pool_name = pool_name
        self.executor = NotifyingExecutor(
            config.max_concurrency + 2, f"pool-{config.name}", on_done
        )
        self.adapter = factory(config, self.executor, clock)
        self.health = Health(config.health, clock)
        self.paused = False
        self.limits: Resources | None = None
        self.label_res: dict[str, Resources] = {}
        self.unmanaged = Resources()
        self.listing: list[Instance] | None = None
        self.listing_seq = 0
        # wall-clock times the last limits and server list arrived (provider status)
        self.limits_read_at: float | None = None
        self.listing_read_at: float | None = None
        self._limits_at = -1e18
        self._list_at = -1e18
        self._limits_call: Call | None = None
        self._list_call: Call | None = None
        # a rate-paced provider's next admission (wall clock), as last read from the
        # store: launchers share one pace (NodeWork._admit); this only avoids asking early
        self.paced_until = 0.0
        self.quota_backoff_until = 0.0
        pools: list[PoolBase] = list(getattr(config, "pools", []))
        self.label_pool: dict[str, PoolBase] = {}
        for p in pools:
            for name in _pool_labels(p):
                self.label_pool.setdefault(name, p)

    # -- facts -----------------------------------------------------------------------
    @property
    def driver(self) -> str:
        return str(getattr(self.config, "driver", ""))

    @property
    def region(self) -> str:
        return self.config.region

    @property
    def available(self) -> bool:
        return self.health.in_service and not self.paused

    @property
    def quota_known(self) -> bool:
        """Limits and usage were read at least once (no launches on guesses before)."""
        return self.limits is not None and self.listing is not None

    def labels(self) -> set[str]:
        return set(self.label_pool)

    def label_info(self, label: str) -> LabelInfo:
        return self.adapter.label_info(label)

    def host_key_checking(self, label: str) -> bool:
        per_label = self.label_info(label).host_key_checking
        return self.config.host_key_checking if per_label is None else per_label

    # -- quota -----------------------------------------------------------------------
    def need(self, label: str) -> Resources:
        return self.label_res.get(label, Resources(1, 0, 0))

    def headroom_ok(self, label: str, ours: Iterable[Node], extra: Iterable[str] = ()) -> bool:
        """Could one more ``label`` node start now, with ``extra`` labels also planned?"""
        if self.clock.monotonic() < self.quota_backoff_until:
            return False
        ours = [n for n in ours if n.provider == self.name and str(n.state) in HOLDING]
        planned = [*extra, label]
        cap = self.adapter.label_capacity(label)
        if cap is not None:
            # nodes that will take a slot the driver does not count yet (none reserved)
            unallocated = sum(
                1
                for n in ours
                if n.state == "building"
                and not n.external_id
                and not ((n.launch_state or {}).get("machine") or {}).get("external_id")
            )
            return cap - unallocated - planned.count(label) >= 0
        pool = self.label_pool[label]
        in_pool = [n for n in ours if self.label_pool.get(n.label) is pool]
        used = Resources()
        for n in in_pool:
            used = used + self.need(n.label)
        for lab in planned:
            used = used + self.need(lab)
        if pool.max_servers is not None and used.instances > pool.max_servers:
            return False
        if pool.max_cores is not None and used.cores > pool.max_cores:
            return False
        if pool.max_ram is not None and used.ram > pool.max_ram:
            return False
        if not self.quota_known or self.limits is None:
            return False  # no launches on guesses: first learn limits and usage
        total = self.unmanaged + self.nodes_use(ours)
        for lab in planned:
            total = total + self.need(lab)
        return total_fits(self.limits, total)

    def nodes_use(self, nodes: Iterable[Node]) -> Resources:
        """What ``nodes`` take of the provider's quota, as the pool counts it: each by
        what its label needs (a flavor's vCPUs and RAM; 1 instance until known)."""
        total = Resources()
        for n in nodes:
            total = total + self.need(n.label)
        return total

    def quota_error(self) -> None:
        """The cloud said no: trust our numbers less, refresh them, back off briefly."""
        self._limits_at = -1e18
        self._list_at = -1e18
        self.quota_backoff_until = self.clock.monotonic() + 2.0

    # -- periodic calls --------------------------------------------------------------
    def poll(self, list_every: float, limits_every: float) -> list[tuple[str, Any]]:
        """Start due background calls and collect finished ones. Never blocks.

        Returns events: ("listed", instances), ("error", LaunchError), ("ok", None).
        """
        events: list[tuple[str, Any]] = []
        now = self.clock.monotonic()
        if not self.health.in_service:
            list_every = self.config.health.probe_interval
        if self._list_call is None and now - self._list_at >= list_every:
            self._list_at = now
            self._list_call = self.adapter.call(self.adapter.list_instances, what="list servers")
        if (
            self._limits_call is None
            and self.health.in_service
            and now - self._limits_at >= limits_every
        ):
            self._limits_at = now
            self._limits_call = self.adapter.call(self._fetch_limits, what="get limits")
        for attr in ("_list_call", "_limits_call"):
            call = getattr(self, attr)
            if call is None:
                continue
            try:
                value = call.result(now)
            except LaunchError as exc:
                setattr(self, attr, None)
                events.append(("error", exc))
                continue
            except Exception as exc:  # noqa: BLE001 - a driver bug must not stop the loop
                setattr(self, attr, None)
                events.append(("error", LaunchError(f"{call.what}: {exc!r}")))
                continue
            if not call.future.done():
                continue
            setattr(self, attr, None)
            if attr == "_list_call":
                self._take_listing(value)
                self.listing_read_at = self.clock.now()
                events.append(("listed", value))
            else:
                self.limits, self.label_res = value
                self.limits_read_at = self.clock.now()
                events.append(("ok", None))
        return events

    def _fetch_limits(self) -> tuple[Resources, dict[str, Resources]]:
        limits = self.adapter.quota_limits()
        return limits, {lab: self.adapter.label_resources(lab) for lab in self.label_pool}

    def _take_listing(self, instances: list[Instance]) -> None:
        self.listing = instances
        self.listing_seq += 1
        unmanaged = Resources()
        for inst in instances:
            if inst.metadata.get(META_POOL) != self.pool_name:
                unmanaged = unmanaged + inst.resources
        self.unmanaged = unmanaged

    def refresh_soon(self) -> None:
        self._list_at = -1e18

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.adapter.close()


def total_fits(limits: Resources, total: Resources) -> bool:
    return (
        total.instances <= limits.instances
        and total.cores <= limits.cores
        and total.ram <= limits.ram
    )


def _pool_labels(pool: PoolBase) -> list[str]:
    labels = [lab.name for lab in getattr(pool, "labels", [])]
    for host in getattr(pool, "nodes", []):
        labels.extend(host.labels)
    return labels
