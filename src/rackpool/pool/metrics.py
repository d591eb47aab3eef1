"""Prometheus metrics of one launcher, in its own registry (no global state).

Names mirror nodepool's statsd keys: ``nodepool.launch.provider.<p>.<result>`` becomes
``rackpool_pool_launch_seconds{provider,result}``, ``nodepool.nodes.<state>`` becomes
``rackpool_pool_nodes{state,provider}``, and so on.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from rackpool.pool.model import Node, NodeRequest

_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class PoolMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.launch_seconds = Histogram(
            "rackpool_pool_launch_seconds",
            "Time from launch start to node ready (or failure)",
            ["provider", "label", "result"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.request_seconds = Histogram(
            "rackpool_pool_request_ready_seconds",
            "Time from request submitted to fulfilled (nodes in hand)",
            ["result"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "rackpool_pool_launch_errors",
            "Failed launch attempts by kind (quota, timeout, keyscan, unavailable, error)",
            ["provider", "kind"],
            registry=r,
        )
        self.leaked = Counter(
            "rackpool_pool_leaked_instances",
            "Tagged instances unknown to the pool that were deleted",
            ["provider"],
            registry=r,
        )
        self.nodes = Gauge(
            "rackpool_pool_nodes", "Nodes by state and provider", ["provider", "state"], registry=r
        )
        self.requests = Gauge(
            "rackpool_pool_requests", "Node requests by state", ["state"], registry=r
        )
        self.in_service = Gauge(
            "rackpool_pool_provider_in_service",
            "1 if the provider takes launches (healthy and not paused)",
            ["provider"],
            registry=r,
        )
        self.healthy = Gauge(
            "rackpool_pool_provider_healthy",
            "1 unless health checks took the provider out of service",
            ["provider"],
            registry=r,
        )
        self.out_of_service = Counter(
            "rackpool_pool_provider_outages",
            "Times a provider was taken out of service automatically",
            ["provider"],
            registry=r,
        )

    def snapshot(self, nodes: Iterable[Node], requests: Iterable[NodeRequest]) -> None:
        self.nodes.clear()
        for (prov, state), n in Tally((n.provider, str(n.state)) for n in nodes).items():
            self.nodes.labels(prov, state).set(n)
        self.requests.clear()
        for state, n in Tally(str(r.state) for r in requests).items():
            self.requests.labels(state).set(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)
