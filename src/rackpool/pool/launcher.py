"""The launcher: one control loop that keeps the pool's promises.

Each iteration (``tick``) reads the store, then: polls providers (health, listings,
quota), advances launches and deletes, assigns requests, tops up min-ready, expires
nodes and cleans leaks. Nothing in a tick blocks: backend calls run in each
provider's executor. The API writes requests to the store and calls :meth:`wake`.

Several launchers (``rackpool pool serve`` processes) may share one store (ZooKeeper):
each registers itself, works only on the requests and nodes whose locks it holds, and
takes over those of a launcher that died once its locks vanish. Nothing a tick decides
rests on this process's memory alone: counts come from the store, writes are
compare-and-set. Any launcher's API serves any request (all read the same store); a
change another launcher makes wakes this loop through the store's watch.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from rackpool.core.clock import Clock, SystemClock
from rackpool.core.states import NodeState, RequestState
from rackpool.pool.cleanup import LeakCleaner
from rackpool.pool.config import PoolConfig
from rackpool.pool.context import Ctx, ids
from rackpool.pool.errors import InvalidTransition, LaunchError, StaleWrite
from rackpool.pool.keyscan import Keyscanner, SshKeyscan
from rackpool.pool.metrics import PoolMetrics
from rackpool.pool.model import Node, NodeRequest, PoolCap, ProviderQuota, ProviderStatus
from rackpool.pool.nodework import NodeWork
from rackpool.pool.provider import HOLDING, AdapterFactory, ProviderRuntime, default_adapter
from rackpool.pool.scheduler import Scheduler
from rackpool.pool.store.base import Store

log = logging.getLogger("rackpool.pool.launcher")

BUSY_INTERVAL = 0.01  # loop period while launches or deletes are in flight


class Launcher:
    def __init__(
        self,
        config: PoolConfig,
        store: Store,
        *,
        clock: Clock | None = None,
        adapter_factory: AdapterFactory = default_adapter,
        keyscanner: Keyscanner | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock or SystemClock()
        host = socket.gethostname()
        self.id = f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.metrics = PoolMetrics()
        self._wake = threading.Event()
        # A finished backend call or a node created / changing state runs the loop at
        # once: a cold start or a release does not wait out idle ticks between steps.
        providers = {
            p.name: ProviderRuntime(p, adapter_factory, self.clock, config.pool_name, self.wake)
            for p in config.providers
        }
        self.ctx = Ctx(
            config,
            store,
            providers,
            self.clock,
            self.metrics,
            keyscanner or SshKeyscan(),
            wake=self.wake,
        )
        self.work = NodeWork(self.ctx, self._launch_failed)
        self.scheduler = Scheduler(self.ctx, self.work)
        self.cleaner = LeakCleaner(self.ctx)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one tick at a time
        self.ticks = 0
        self._session = store.session
        self._was_connected = True
        store.register_launcher(
            self.id, {"hostname": host, "pid": os.getpid(), "started": time.time(), **(info or {})}
        )
        store.watch(self.wake)
        self._recover()

    @property
    def providers(self) -> dict[str, ProviderRuntime]:
        return self.ctx.providers

    def _recover(self) -> None:
        nodes = self.store.list_nodes()
        self._sync_allocations(nodes, start=True)
        for prov in self.providers.values():
            prov.paused = prov.name in self.store.paused_providers()
        building = sum(1 for n in nodes if n.state == NodeState.BUILDING)
        if nodes:
            log.info(
                "launcher %s starting with %d nodes in the store (%d building)",
                self.id,
                len(nodes),
                building,
            )

    def _sync_allocations(self, nodes: list[Node], start: bool = False) -> None:
        """Tell drivers that hand out fixed resources which node holds which (store)."""
        for prov in self.providers.values():
            if not (start or prov.adapter.tracks_allocations):
                continue
            held: dict[str, str] = {}
            for n in nodes:
                if n.provider != prov.name or str(n.state) not in HOLDING:
                    continue
                machine = (n.launch_state or {}).get("machine") or {}
                ext = n.external_id or machine.get("external_id")
                if ext:
                    held[n.id] = str(ext)
            prov.adapter.recover(held)

    # -- the loop ----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pool-launcher", daemon=True)
        self._thread.start()

    def stop(self, drain: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._drain(drain)
        for prov in self.providers.values():
            prov.close()

    def _drain(self, timeout: float) -> None:
        """Before letting go of our locks (the store closes next): wait for creates already
        sent and record what they made, so the launcher taking the nodes over resumes
        them instead of creating a second server. No new launch starts meanwhile."""
        from rackpool.core.clock import iterate_timeout
        from rackpool.core.errors import TemporaryError
        from rackpool.pool.drivers.interface import StateMachine

        self.work.draining = True
        try:
            for _ in iterate_timeout(timeout, "sent creates to answer", interval=0.01):
                waiting = [
                    t for t in self.work.launches.values()
                    if t.machine.state == StateMachine.SUBMITTING
                ]  # fmt: skip
                if not waiting or not self.store.connected:
                    return
                with self._lock:
                    self.work.advance_launches()
        except TemporaryError:
            log.warning("stopping with creates unanswered after %.0fs", timeout)
        except Exception:  # noqa: BLE001 - stopping anyway
            log.exception("draining launches failed")

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the loop must survive anything
                log.exception("launcher tick failed")
            interval = BUSY_INTERVAL if self.work.busy else self.config.timing.tick_interval
            self._wake.wait(interval)
            self._wake.clear()

    def tick(self) -> None:
        with self._lock:
            if not self.store.connected:
                if self._was_connected:
                    log.warning("store unreachable: launcher %s waits", self.id)
                self._was_connected = False
                return
            if not self._was_connected:
                log.warning("store reachable again: launcher %s resumes", self.id)
                self._was_connected = True
            if self.store.session != self._session:
                # our locks vanished (session expired): others may have taken our work
                log.warning("launcher %s lost its locks: dropping the work it held", self.id)
                self._session = self.store.session
                self.work.forget()
            self.ticks += 1
            self.ctx.nodes = {n.id: n for n in self.store.list_nodes()}
            requests = self.store.list_requests()
            paused = self.store.paused_providers()
            for prov in self.providers.values():
                prov.paused = prov.name in paused
                self._poll(prov)
            self._sync_allocations(list(self.ctx.nodes.values()))
            self.work.advance_launches()
            self.work.advance_deletes()
            self.scheduler.handle(requests)
            requests = self.store.list_requests()
            self.scheduler.reclaim(requests)
            self.scheduler.min_ready(requests)
            self.scheduler.expire()
            self.metrics.snapshot(self.ctx.nodes.values(), requests)
            for prov in self.providers.values():
                self.metrics.in_service.labels(prov.name).set(1 if prov.available else 0)
                self.metrics.healthy.labels(prov.name).set(1 if prov.health.in_service else 0)

    def _poll(self, prov: ProviderRuntime) -> None:
        timing = self.config.timing
        was_in = prov.health.in_service
        for kind, value in prov.poll(timing.cleanup_interval, timing.quota_refresh):
            if kind == "error":
                assert isinstance(value, LaunchError)
                log.warning(
                    "provider %s: %s",
                    prov.name,
                    value.message,
                    extra={"provider": prov.name, "region": prov.region},
                )
                self.metrics.errors.labels(prov.name, f"api-{value.kind}").inc()
                if prov.health.error(value.kind, value.message):
                    self.metrics.out_of_service.labels(prov.name).inc()
            else:
                if prov.health.success():
                    log.warning(
                        "provider %s back in service",
                        prov.name,
                        extra={"provider": prov.name, "region": prov.region},
                    )
                if kind == "listed":
                    self.cleaner.listed(prov, value)
        if was_in and not prov.health.in_service:
            self._out_of_service(prov)

    def _launch_failed(self, node: Node, exc: LaunchError, gave_up: bool) -> None:
        prov = self.providers.get(node.provider)
        if prov is not None and not prov.health.in_service:
            self._out_of_service(prov)
        self.scheduler.on_launch_failure(node, exc, gave_up)

    def _out_of_service(self, prov: ProviderRuntime) -> None:
        """Re-route everything waiting on a sick provider now, not after retries x timeouts."""
        log.error(
            "provider %s taken out of service: %s",
            prov.name,
            prov.health.reason,
            extra={"provider": prov.name, "region": prov.region, "event": "provider_out"},
        )
        for node in list(self.ctx.nodes.values()):
            if node.provider == prov.name and node.state == NodeState.BUILDING:
                self.work.abandon(node)  # those this launcher launches
        for req in self.store.list_requests():
            if (
                req.state == RequestState.PENDING
                and req.provider == prov.name
                and self.store.held("request", req.id)
            ):
                self.scheduler.unassign(req, decline=False)
        prov.refresh_soon()

    # -- operations the API calls (any thread) -----------------------------------------
    def submit(self, labels: list[str], priority: int = 100, requestor: str = "") -> NodeRequest:
        num = self.store.next_id("request")
        now = self.clock.now()
        req = NodeRequest(
            id=f"{priority:03d}-{num:010d}",
            labels=tuple(labels),
            state=RequestState.REQUESTED,
            state_time=now,
            created=now,
            priority=priority,
            requestor=requestor,
        )
        req = self.store.create_request(req)
        log.info(
            "request %s for %s from %s",
            req.id,
            ",".join(labels),
            requestor or "-",
            extra=ids(request=req, event="request_submitted"),
        )
        self.wake()
        return req

    def release(self, node_id: str) -> Node:
        return self._transition(
            node_id, NodeState.USED, (NodeState.IN_USE, NodeState.HOLD, NodeState.READY)
        )

    def hold(self, node_id: str, comment: str = "") -> Node:
        return self._transition(
            node_id, NodeState.HOLD, (NodeState.IN_USE, NodeState.READY), comment=comment
        )

    def _transition(
        self, node_id: str, to: NodeState, allowed: tuple[NodeState, ...], **changes: str
    ) -> Node:
        for _ in range(20):
            node = self.store.get_node(node_id)
            if node.state == to:
                return node
            if node.state not in allowed:
                raise InvalidTransition(
                    f"node {node_id} is {node.state}; only {', '.join(allowed)} can become {to}"
                )
            try:
                new = self.store.update_node(
                    node.evolve(state=to, state_time=self.clock.now(), **changes)
                )
            except StaleWrite:
                continue
            log.info("node %s %s", node_id, to, extra=ids(new, event=f"node_{to}"))
            self.wake()
            return new
        raise StaleWrite(f"node {node_id} kept changing; try again")

    def set_paused(self, name: str, paused: bool) -> ProviderStatus:
        prov = self.providers.get(name)
        if prov is None:
            from rackpool.core.errors import NotFound

            raise NotFound(f"no provider named {name!r}")
        self.store.set_paused(name, paused)
        prov.paused = paused
        log.warning(
            "provider %s %s by operator",
            name,
            "paused" if paused else "resumed",
            extra={"provider": name},
        )
        self.wake()
        return self.provider_status()[name]

    def provider_status(self) -> dict[str, ProviderStatus]:
        nodes = self.store.list_nodes()
        paused = self.store.paused_providers()
        return {
            p.name: ProviderStatus(
                name=p.name,
                driver=p.driver,
                region=p.region,
                paused=p.name in paused,
                in_service=p.health.in_service,
                reason=p.health.reason,
                consecutive_errors=p.health.consecutive_errors,
                nodes=sum(1 for n in nodes if n.provider == p.name),
                priority=p.config.priority,
                quota_known=p.quota_known,
                quota=_quota(p, nodes),
                caps=_caps(p, nodes),
            )
            for p in self.providers.values()
        }

    def run_until(self, predicate: Callable[[], object], timeout: float, purpose: str) -> object:
        """Tick in this thread until ``predicate`` holds (tests without the thread)."""
        from rackpool.core.clock import iterate_timeout

        for _ in iterate_timeout(timeout, purpose, interval=0.005):
            self.tick()
            value = predicate()
            if value:
                return value
        raise AssertionError("unreachable")  # pragma: no cover


def _holding(prov: ProviderRuntime, nodes: list[Node]) -> list[Node]:
    """The provider's nodes that hold cloud resources: what its quota counts."""
    return [n for n in nodes if n.provider == prov.name and str(n.state) in HOLDING]


def _quota(prov: ProviderRuntime, nodes: list[Node]) -> ProviderQuota | None:
    """The provider's limits and usage as the pool counts them (``headroom_ok``): its
    nodes in the store by what their labels need, plus the servers without our tag."""
    limits, limits_at, listed_at = prov.limits, prov.limits_read_at, prov.listing_read_at
    if not prov.quota_known or limits is None or limits_at is None or listed_at is None:
        return None
    hosts = None
    if prov.driver == "static":
        pools = getattr(prov.config, "pools", [])
        hosts = len({h.name for pool in pools for h in getattr(pool, "nodes", [])})
    ours = prov.nodes_use(_holding(prov, nodes))
    return ProviderQuota.of(limits, ours, prov.unmanaged, limits_at, listed_at, hosts)


def _caps(prov: ProviderRuntime, nodes: list[Node]) -> tuple[PoolCap, ...]:
    """The provider's pools that set max-servers/max-cores/max-ram, each with what this
    pool's nodes of its labels take (a label counts in the first pool offering it)."""
    holding = _holding(prov, nodes)
    caps = []
    for pool in getattr(prov.config, "pools", []):
        if pool.max_servers is None and pool.max_cores is None and pool.max_ram is None:
            continue
        used = prov.nodes_use(n for n in holding if prov.label_pool.get(n.label) is pool)
        caps.append(
            PoolCap(
                pool.name,
                pool.max_servers,
                pool.max_cores,
                pool.max_ram,
                int(used.instances),
                int(used.cores),
                int(used.ram),
            )  # fmt: skip
        )
    return tuple(caps)
