"""What the launcher's components share during one loop iteration.

Several launchers may share the store. Every write here is compare-and-set; node
creation that must respect a provider's limits happens in :meth:`Ctx.launch_nodes`,
under the provider's store-wide lock and against a fresh count of its nodes, so two
launchers together never go over max-servers or quota.

Writes the launcher makes for a node it launches or deletes are fenced
(``patch_node(..., epoch=E)``): applied only while this launcher holds the node's lock
(the store refuses them otherwise) and while the record's ``launch_epoch`` is still the
one this launcher took the node with (another launcher taking a node over bumps it), so
a launcher that stalled and lost the node raises LockLost instead of overwriting the
new owner's work.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from rackpool.core.clock import Clock
from rackpool.core.states import NodeState
from rackpool.pool.config import PoolConfig
from rackpool.pool.errors import LockLost, StaleWrite, UnknownNode
from rackpool.pool.keyscan import Keyscanner
from rackpool.pool.metrics import PoolMetrics
from rackpool.pool.model import Node, NodeRequest
from rackpool.pool.provider import HOLDING, ProviderRuntime
from rackpool.pool.store.base import Store

log = logging.getLogger("rackpool.pool.launcher")

# seconds to wait for a store-wide lock (held for milliseconds) before trying next pass
ADMISSION_WAIT = 1.0


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
    # node id -> the launch_epoch this launcher holds the node's lock with (the nodes it
    # created, or took over and bumped); cleared when its locks are lost
    epochs: dict[str, int] = field(default_factory=dict)

    def save_node(self, node: Node, locked: bool = False) -> Node | None:
        """Write a node (compare-and-set); None if someone else changed it first.
        ``locked``: only while this launcher holds the node's lock (else LockLost)."""
        old = self.nodes.get(node.id)
        try:
            new = self.store.update_node(node, locked=locked)
        except StaleWrite:
            self.refresh_node(node.id)
            return None
        self.nodes[new.id] = new
        if old is None or old.state != new.state:
            self.wake()
        return new

    def refresh_node(self, node_id: str) -> Node | None:
        try:
            fresh = self.nodes[node_id] = self.store.get_node(node_id)
        except UnknownNode:
            self.nodes.pop(node_id, None)
            return None
        return fresh

    def patch_node(
        self,
        node: Node,
        expect: Collection[NodeState] = (),
        epoch: int | None = None,
        **changes: Any,
    ) -> Node | None:
        """Apply ``changes`` to the node as stored now, retrying a lost compare-and-set
        while the stored node is still in one of ``expect`` states (default: the state
        ``node`` has). For the launcher doing a node's work: another launcher may have
        changed the record meanwhile (e.g. allocated a building node to a request).
        ``epoch``: fenced, only over a record still at that ``launch_epoch`` and while
        the node's lock is held here (else LockLost)."""
        states = tuple(expect) or (node.state,)
        for _ in range(5):
            if epoch is not None and node.launch_epoch != epoch:
                raise LockLost(
                    f"node {node.id} was taken over (launch epoch {node.launch_epoch}, "
                    f"this launcher's {epoch})"
                )
            saved = self.save_node(node.evolve(**changes), locked=epoch is not None)
            if saved is not None:
                return saved
            fresh = self.nodes.get(node.id)
            if fresh is None or fresh.state not in states:
                return None
            node = fresh
        return None

    def set_state(self, node: Node, state: NodeState, **changes: Any) -> Node | None:
        return self.save_node(node.evolve(state=state, state_time=self.clock.now(), **changes))

    def move(
        self, node: Node, state: NodeState, epoch: int | None = None, **changes: Any
    ) -> Node | None:
        """:meth:`set_state` through :meth:`patch_node` (the launcher owning the node)."""
        return self.patch_node(
            node, (node.state,), epoch, state=state, state_time=self.clock.now(), **changes
        )

    def drop_node(self, node_id: str, epoch: int | None = None) -> None:
        """Delete a node record; ``epoch``: fenced as :meth:`patch_node` (else LockLost)."""
        if epoch is not None:
            current = self.nodes.get(node_id)
            if current is not None and current.launch_epoch != epoch:
                raise LockLost(f"node {node_id} was taken over by another launcher")
        self.store.delete_node(node_id, locked=epoch is not None)
        self.nodes.pop(node_id, None)
        self.epochs.pop(node_id, None)

    def new_node(self, provider: ProviderRuntime, label: str, **fields: Any) -> Node:
        """A node record; locked for this launcher (it launches or deletes it)."""
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
        node = self.store.create_node(node, lock=True)
        self.nodes[node.id] = node
        self.epochs[node.id] = node.launch_epoch
        self.wake()
        return node

    def fresh_nodes(self) -> list[Node]:
        """Every node as the store has it now (also refreshes this pass's view)."""
        fresh = self.store.list_nodes(fresh=True)
        self.nodes = {n.id: n for n in fresh}
        return fresh

    def launch_nodes(
        self,
        prov: ProviderRuntime,
        labels: Sequence[str],
        allocated_to: str | None = None,
        still_wanted: Callable[[list[Node]], bool] | None = None,
    ) -> list[Node] | None:
        """Create building nodes for ``labels`` on ``prov`` if its limits allow them all,
        counted from a fresh read under the provider's store-wide lock; None if not (no
        headroom, ``still_wanted(fresh nodes)`` said no, or the lock was busy)."""
        with self.store.exclusive(f"provider-{prov.name}", ADMISSION_WAIT) as got:
            if not got:
                return None
            fresh = self.fresh_nodes()
            if still_wanted is not None and not still_wanted(fresh):
                return None
            if not all(prov.headroom_ok(lab, fresh, labels[:i]) for i, lab in enumerate(labels)):
                return None
            reserved: list[str | None] = []
            taken = taken_resources(prov.name, fresh)
            for lab in labels:
                res = prov.adapter.reserve(lab, taken)
                if prov.adapter.tracks_allocations and res is None:
                    return None
                if res is not None:
                    taken.add(res)
                reserved.append(res)
            made = []
            for lab, res in zip(labels, reserved, strict=True):
                extra: dict[str, Any] = {}
                if res is not None:  # e.g. a static host: chosen now, under the lock
                    extra["launch_state"] = {"machine": {"state": "start", "external_id": res}}
                made.append(self.new_node(prov, lab, allocated_to=allocated_to, **extra))
            return made

    def save_request(self, request: NodeRequest) -> NodeRequest | None:
        """Write a request (compare-and-set); None if someone else changed it first or,
        for a request this launcher handles, its lock is no longer held (a stall past the
        session: the launcher that took the request over writes it now)."""
        locked = self.store.held("request", request.id)
        try:
            return self.store.update_request(request, locked=locked)
        except StaleWrite:
            return None
        except LockLost:
            log.warning(
                "request %s: not written, its lock is no longer this launcher's",
                request.id,
                extra={"request_id": request.id, "event": "request_lost"},
            )
            return None


def taken_resources(provider: str, nodes: Collection[Node]) -> set[str]:
    """External ids the provider's nodes hold or have reserved (static hosts)."""
    taken: set[str] = set()
    for n in nodes:
        if n.provider != provider or str(n.state) not in HOLDING:
            continue
        if n.external_id:
            taken.add(n.external_id)
        machine = (n.launch_state or {}).get("machine") or {}
        if machine.get("external_id"):
            taken.add(str(machine["external_id"]))
    return taken
