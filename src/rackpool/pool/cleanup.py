"""Leak cleanup: delete tagged instances the pool does not know, once seen twice.

Every instance we create carries ``rackpool_pool``/``rackpool_node_id`` metadata
(nodepool's ``cleanupLeakedResources``). An instance tagged with our pool name whose
node record is gone (or which is not the instance its node record holds) is a leak
candidate; still one on the next listing pass, it is deleted through a ``deleting``
node record (retried like any delete) and counted.

Several launchers list the same clouds. Before deleting, a launcher checks again under
the provider's store-wide lock against a fresh read of every node: an instance that
another launcher is building (its node record exists, maybe without the instance's id
yet) or already deleting is not a leak, and one launcher's ``deleting`` record tells the
others it is handled.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from rackpool.core.states import NodeState
from rackpool.pool.context import ADMISSION_WAIT, Ctx
from rackpool.pool.drivers.interface import Instance
from rackpool.pool.model import META_LABEL, META_NODE, META_POOL, Node
from rackpool.pool.provider import ProviderRuntime

log = logging.getLogger("rackpool.pool.cleanup")


class LeakCleaner:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self._candidates: dict[str, set[str]] = {}

    def _leaked(self, inst: Instance, nodes: Mapping[str, Node]) -> bool:
        if inst.metadata.get(META_POOL) != self.ctx.config.pool_name:
            return False
        node = nodes.get(inst.metadata.get(META_NODE, ""))
        if node is not None and (
            node.external_id == inst.external_id or node.state == NodeState.BUILDING
        ):
            return False
        return not any(n.external_id == inst.external_id for n in nodes.values())

    def listed(self, prov: ProviderRuntime, instances: list[Instance]) -> None:
        """Called with each fresh listing of a provider's instances."""
        leaked = {i.external_id: i for i in instances if self._leaked(i, self.ctx.nodes)}
        seen_before = self._candidates.get(prov.name, set())
        self._candidates[prov.name] = set(leaked) - seen_before
        confirmed = set(leaked) & seen_before
        if not confirmed:
            return
        with self.ctx.store.exclusive(f"provider-{prov.name}", ADMISSION_WAIT) as got:
            if not got:
                self._candidates[prov.name] |= confirmed  # next pass
                return
            fresh = {n.id: n for n in self.ctx.fresh_nodes()}
            for ext in sorted(confirmed):
                if self._leaked(leaked[ext], fresh):
                    self._delete(prov, leaked[ext])

    def _delete(self, prov: ProviderRuntime, inst: Instance) -> None:
        ext = inst.external_id
        label = inst.metadata.get(META_LABEL, "")
        node = self.ctx.new_node(
            prov,
            label if label in prov.label_pool else next(iter(prov.label_pool), label),
            state=NodeState.DELETING,
            external_id=ext,
            comment=f"leaked instance {inst.name}",
        )
        self.ctx.metrics.leaked.labels(prov.name).inc()
        log.warning(
            "deleting leaked instance %s (%s) tagged for node %s",
            ext,
            inst.name,
            inst.metadata.get(META_NODE, "?"),
            extra={
                "provider": prov.name,
                "instance_id": ext,
                "node_id": node.id,
                "region": prov.region,
                "event": "leak_deleted",
            },
        )
