"""What the launcher's components share during one loop iteration."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rackpool.core.clock import Clock
from rackpool.core.states import NodeState
from rackpool.pool.config import PoolConfig
from rackpool.pool.errors import StaleWrite, UnknownNode
from rackpool.pool.keyscan import Keyscanner
from rackpool.pool.metrics import PoolMetrics
from rackpool.pool.model import Node, NodeRequest
from rackpool.pool.provider import ProviderRuntime
from rackpool.pool.store.base import Store

log = logging.getLogger("rackpool.pool.launcher")


def ids(
    node: Node | None = None, request: NodeRequest | None = None, **more: Any
) -> dict[str, Any]:
    """Correlation ids for ``extra=`` of a log call."""
    out: dict[str, Any] = {}
    if node is not None:
        out.update(node_id=node.id, provider=node.provider, label=node.label)
        if node.region:
            out["region"] = node.region
        if node.external_id:
            out["instance_id"] = node.external_id
        if node.allocated_to:
            out["request_id"] = node.allocated_to
        if node.global_request_id:
            out["global_request_id"] = node.global_request_id
    if request is not None:
        out["request_id"] = request.id
    out.update(more)
    return out


@dataclass
class Ctx:
    config: PoolConfig
    store: Store
    providers: dict[str, ProviderRuntime]
    clock: Clock
    metrics: PoolMetrics
    keyscanner: Keyscanner
    nodes: dict[str, Node] = field(default_factory=dict)
    # Called when a node is created or changes state: the launcher loop runs again at
    # once instead of after its idle tick (a new launch or delete starts now).
    wake: Callable[[], None] = lambda: None

    def save_node(self, node: Node) -> Node | None:
        """Write a node (compare-and-set); None if someone else changed it first."""
        old = self.nodes.get(node.id)
        try:
            new = self.store.update_node(node)
        except StaleWrite:
            try:
                self.nodes[node.id] = self.store.get_node(node.id)
            except UnknownNode:
                self.nodes.pop(node.id, None)
            return None
        self.nodes[new.id] = new
        if old is None or old.state != new.state:
            self.wake()
        return new

    def set_state(self, node: Node, state: NodeState, **changes: Any) -> Node | None:
        return self.save_node(node.evolve(state=state, state_time=self.clock.now(), **changes))

    def drop_node(self, node_id: str) -> None:
        self.store.delete_node(node_id)
        self.nodes.pop(node_id, None)

    def new_node(self, provider: ProviderRuntime, label: str, **fields: Any) -> Node:
        num = self.store.next_id("node")
        node_id = f"{num:010d}"
        now = self.clock.now()
        host = re.sub(r"[^a-z0-9-]", "-", f"{label}-{provider.name}-{node_id}".lower())
        node = Node(
            id=node_id,
            label=label,
            provider=provider.name,
            pool=provider.label_pool[label].name if label in provider.label_pool else "",
            region=provider.region,
            state=fields.pop("state", NodeState.BUILDING),
            state_time=now,
            created=now,
            hostname=host,
            **fields,
        )
        node = self.store.create_node(node)
        self.nodes[node.id] = node
        self.wake()
        return node

    def save_request(self, request: NodeRequest) -> NodeRequest | None:
        try:
            return self.store.update_request(request)
        except StaleWrite:
            return None
