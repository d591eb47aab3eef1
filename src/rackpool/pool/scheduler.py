"""Which provider serves which request, and keeping min-ready nodes.

nodepool's rules, with its users' complaints fixed:
- a request's nodes all come from one provider; ready nodes are handed out first;
- providers are tried by priority; one that cannot serve a request declines it and
  the request moves on; it fails only when every provider that has the labels declined;
- a quota error or an outage moves the request at once without a decline;
- min-ready launches only into real headroom and never while requests wait, so a
  pool at capacity does not churn.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from rackpool.core.states import NodeState, RequestState
from rackpool.pool.context import Ctx, ids
from rackpool.pool.model import Node, NodeRequest
from rackpool.pool.nodework import NodeWork
from rackpool.pool.provider import ProviderRuntime

log = logging.getLogger("rackpool.pool.scheduler")

REQUEST_RETENTION = 3600.0  # seconds a finished request stays readable


class Scheduler:
    def __init__(self, ctx: Ctx, work: NodeWork) -> None:
        self.ctx = ctx
        self.work = work
        self.waiting = False  # a real request waits for capacity

    # -- requests --------------------------------------------------------------------
    def handle(self, requests: Iterable[NodeRequest]) -> None:
        self.waiting = False
        now = self.ctx.clock.now()
        live = sorted(
            (r for r in requests if not r.done), key=lambda r: (r.priority, r.created, r.id)
        )
        for req in live:
            if req.state == RequestState.PENDING:
                self._check_pending(req)
            else:
                self._assign(req)
        for req in requests:
            if req.done and now - req.state_time > REQUEST_RETENTION:
                self.ctx.store.delete_request(req.id)

    def _supporting(self, req: NodeRequest) -> list[ProviderRuntime]:
        want = set(req.labels)
        provs = [p for p in self.ctx.providers.values() if want <= p.labels()]
        return [p for p in provs if p.name not in req.declined_by]

    def _free(self, prov: ProviderRuntime, label: str, taken: set[str]) -> Node | None:
        """An unallocated node of ``label`` on ``prov``: ready first, else building."""
        best: Node | None = None
        for n in self.ctx.nodes.values():
            if (
                n.provider != prov.name
                or n.label != label
                or n.allocated_to
                or n.id in taken
                or n.state not in (NodeState.READY, NodeState.BUILDING)
            ):
                continue
            if n.state == NodeState.READY:
                return n
            best = best or n
        return best

    def _assign(self, req: NodeRequest) -> None:
        supporting = self._supporting(req)
        if not supporting:
            why = (
                f"declined by every provider ({', '.join(req.declined_by)})"
                if req.declined_by
                else f"no provider offers {', '.join(sorted(set(req.labels)))}"
            )
            self._fail(req, why)
            return
        candidates = sorted(
            (p for p in supporting if p.available), key=lambda p: (p.config.priority, p.name)
        )
        plans = []
        for prov in candidates:
            taken: set[str] = set()
            have: list[Node | None] = []
            for label in req.labels:
                n = self._free(prov, label, taken)
                if n is not None:
                    taken.add(n.id)
                have.append(n)
            ready = sum(1 for n in have if n is not None and n.state == NodeState.READY)
            plans.append((prov, have, ready))
        # Everything ready in one provider beats priority: nodes in hand now.
        plans.sort(key=lambda t: (t[2] < len(req.labels), t[0].config.priority))
        for prov, have, _ in plans:
            missing = [lab for lab, n in zip(req.labels, have, strict=True) if n is None]
            ours = list(self.ctx.nodes.values())
            if all(prov.headroom_ok(lab, ours, missing[:i]) for i, lab in enumerate(missing)):
                self._give(req, prov, have)
                return
        self.waiting = True
        timeout = self.ctx.config.timing.request_timeout
        if timeout and self.ctx.clock.now() - req.created > timeout:
            self._fail(req, f"not fulfilled within {timeout:.0f}s")

    def _give(self, req: NodeRequest, prov: ProviderRuntime, have: list[Node | None]) -> None:
        node_ids: list[str] = []
        for label, n in zip(req.labels, have, strict=True):
            if n is None:
                n = self.ctx.new_node(prov, label, allocated_to=req.id)
            else:
                saved = self.ctx.save_node(n.evolve(allocated_to=req.id))
                if saved is None:  # raced; try again next pass
                    self._release_nodes(req, node_ids)
                    return
                n = saved
            node_ids.append(n.id)
        pending = req.evolve(
            state=RequestState.PENDING,
            state_time=self.ctx.clock.now(),
            provider=prov.name,
            nodes=tuple(node_ids),
        )
        saved_req = self.ctx.save_request(pending)
        if saved_req is None:
            self._release_nodes(req, node_ids)
            return
        log.info(
            "request %s assigned to provider %s",
            req.id,
            prov.name,
            extra=ids(request=req, provider=prov.name, region=prov.region),
        )
        self._check_pending(saved_req)

    def _check_pending(self, req: NodeRequest) -> None:
        prov = self.ctx.providers.get(req.provider or "")
        nodes = [self.ctx.nodes.get(nid) for nid in req.nodes]
        if (
            prov is None
            or not prov.health.in_service
            or any(n is None or n.allocated_to != req.id for n in nodes)
        ):
            self.unassign(req, decline=False)
            return
        if all(n is not None and n.state in (NodeState.READY, NodeState.IN_USE) for n in nodes):
            self._fulfil(req, [n for n in nodes if n is not None])

    def _fulfil(self, req: NodeRequest, nodes: list[Node]) -> None:
        for n in nodes:
            if n.state == NodeState.READY and self.ctx.set_state(n, NodeState.IN_USE) is None:
                return
        now = self.ctx.clock.now()
        if self.ctx.save_request(req.evolve(state=RequestState.FULFILLED, state_time=now)) is None:
            return
        self.ctx.metrics.request_seconds.labels("fulfilled").observe(max(0.0, now - req.created))
        log.info(
            "request %s fulfilled by %s: nodes %s",
            req.id,
            req.provider,
            ",".join(req.nodes),
            extra=ids(request=req, provider=req.provider, event="request_fulfilled"),
        )

    def _fail(self, req: NodeRequest, why: str) -> None:
        now = self.ctx.clock.now()
        self._release_nodes(req, list(req.nodes))
        failed = req.evolve(state=RequestState.FAILED, state_time=now, reason=why, nodes=())
        if self.ctx.save_request(failed) is not None:
            self.ctx.metrics.request_seconds.labels("failed").observe(max(0.0, now - req.created))
            log.error("request %s failed: %s", req.id, why, extra=ids(request=req))

    def _release_nodes(self, req: NodeRequest, node_ids: list[str]) -> None:
        for nid in node_ids:
            n = self.ctx.nodes.get(nid)
            if (
                n is not None
                and n.allocated_to == req.id
                and n.state
                in (
                    NodeState.READY,
                    NodeState.BUILDING,
                )
            ):
                self.ctx.save_node(n.evolve(allocated_to=None))

    def unassign(self, req: NodeRequest, decline: bool) -> None:
        """Send a pending request back to be assigned again (elsewhere if need be)."""
        try:
            req = self.ctx.store.get_request(req.id)
        except Exception:  # noqa: BLE001 - deleted meanwhile
            return
        if req.done or req.provider is None:
            return
        self._release_nodes(req, list(req.nodes))
        declined = req.declined_by + ((req.provider,) if decline else ())
        back = req.evolve(
            state=RequestState.REQUESTED,
            state_time=self.ctx.clock.now(),
            provider=None,
            nodes=(),
            declined_by=declined,
        )
        if self.ctx.save_request(back) is not None:
            log.warning(
                "request %s %s provider %s",
                req.id,
                "declined by" if decline else "moved away from",
                req.provider,
                extra=ids(request=req, provider=req.provider),
            )

    def on_launch_failure(self, node: Node, exc: Exception, gave_up: bool) -> None:
        if not node.allocated_to:
            return
        try:
            req = self.ctx.store.get_request(node.allocated_to)
        except Exception:  # noqa: BLE001
            return
        self.unassign(req, decline=gave_up)

    # -- min-ready and expiry ----------------------------------------------------------
    def min_ready(self) -> None:
        if self.waiting:
            return  # real requests first; at capacity min-ready must not compete
        for label in self.ctx.config.labels:
            if label.min_ready <= 0:
                continue
            have = sum(
                1
                for n in self.ctx.nodes.values()
                if n.label == label.name
                and not n.allocated_to
                and n.state in (NodeState.READY, NodeState.BUILDING)
            )
            for _ in range(label.min_ready - have):
                prov = self._min_ready_provider(label.name)
                if prov is None:
                    break
                node = self.ctx.new_node(prov, label.name)
                log.info("launching min-ready node %s", node.id, extra=ids(node))

    def _min_ready_provider(self, label: str) -> ProviderRuntime | None:
        ours = list(self.ctx.nodes.values())

        def spread(p: ProviderRuntime) -> tuple[int, int]:
            count = sum(1 for n in ours if n.provider == p.name and n.label == label)
            return (p.config.priority, count)

        for prov in sorted(
            (p for p in self.ctx.providers.values() if p.available and label in p.labels()),
            key=spread,
        ):
            if prov.headroom_ok(label, ours):
                return prov
        return None

    def expire(self) -> None:
        now = self.ctx.clock.now()
        ages = {lab.name: lab.max_ready_age for lab in self.ctx.config.labels}
        for n in list(self.ctx.nodes.values()):
            if n.state == NodeState.USED or n.state == NodeState.FAILED and n.external_id:
                self.ctx.set_state(n, NodeState.DELETING)
            elif (
                n.state == NodeState.READY
                and not n.allocated_to
                and ages.get(n.label, 0) > 0
                and now - n.state_time > ages[n.label]
            ):
                log.info("node %s exceeded max-ready-age", n.id, extra=ids(n))
                self.ctx.set_state(n, NodeState.DELETING)
