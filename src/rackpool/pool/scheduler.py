"""Which provider serves which request, and keeping min-ready nodes.

nodepool's rules, with its users' complaints fixed:
- a request's nodes all come from one provider; ready nodes are handed out first;
- providers are tried by priority; one that cannot serve a request declines it and
  the request moves on; it fails only when every provider that has the labels declined;
- a quota error or an outage moves the request at once without a decline;
- min-ready launches only into real headroom and never while requests wait, so a
  pool at capacity does not churn.

Several launchers may share the store: a launcher handles a request only while it holds
the request's lock (from first sight until fulfilled or failed); a pending request whose
launcher died is taken over once that launcher's locks vanish. Nodes are allocated to a
request by compare-and-set, so one node never goes to two requests, and new nodes are
created under their provider's lock against a fresh count (``Ctx.launch_nodes``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from rackpool.core.states import NodeState, RequestState
from rackpool.pool.context import ADMISSION_WAIT, Ctx, ids
from rackpool.pool.errors import StaleWrite, UnknownRequest
from rackpool.pool.model import Node, NodeRequest
from rackpool.pool.nodework import NodeWork
from rackpool.pool.provider import ProviderRuntime

log = logging.getLogger("rackpool.pool.scheduler")

REQUEST_RETENTION = 3600.0  # seconds a finished request stays readable
ORPHAN_AFTER = 2.0  # seconds a node stays allocated to a request not listing it before freed


class Scheduler:
    def __init__(self, ctx: Ctx, work: NodeWork) -> None:
        self.ctx = ctx
        self.work = work
        self._orphans: dict[str, tuple[int, float]] = {}  # node id -> (version, first seen)

    # -- requests --------------------------------------------------------------------
    def handle(self, requests: Iterable[NodeRequest]) -> None:
        requests = list(requests)
        now = self.ctx.clock.now()
        store = self.ctx.store
        live = sorted(
            (r for r in requests if not r.done), key=lambda r: (r.priority, r.created, r.id)
        )
        for req in live:
            claimed = self._claim(req)
            if claimed is None:
                continue
            if claimed.state == RequestState.PENDING:
                self._check_pending(claimed)
            else:
                self._assign(claimed)
        for req in requests:
            if not req.done:
                continue
            store.unlock("request", req.id)  # no-op unless this launcher held it
            if now - req.state_time > REQUEST_RETENTION:
                with contextlib.suppress(StaleWrite, UnknownRequest):
                    store.delete_request(req.id, req.version)

    def _claim(self, req: NodeRequest) -> NodeRequest | None:
        """The request, locked for this launcher, as stored now; None if another handles it."""
        store = self.ctx.store
        if store.held("request", req.id):
            return req
        if store.locked_elsewhere("request", req.id) or not store.lock("request", req.id):
            return None
        try:
            fresh = store.get_request(req.id)
        except UnknownRequest:
            store.unlock("request", req.id)
            return None
        if fresh.done:
            store.unlock("request", req.id)
            return None
        if fresh.state == RequestState.PENDING:
            log.info(
                "taking over pending request %s (its launcher is gone)",
                fresh.id,
                extra=ids(request=fresh, provider=fresh.provider, event="request_taken_over"),
            )
        return fresh

    def _supporting(self, req: NodeRequest) -> list[ProviderRuntime]:
        want = set(req.labels)
        provs = [p for p in self.ctx.providers.values() if want <= p.labels()]
        return [p for p in provs if p.name not in req.declined_by]

    def _free(
        self, prov: ProviderRuntime, label: str, taken: set[str], req: NodeRequest
    ) -> Node | None:
        """An unallocated node of ``label`` on ``prov``: one an interrupted pass already
        allocated to ``req`` first, then ready, then building."""
        best: Node | None = None
        rank = 3
        for n in self.ctx.nodes.values():
            if (
                n.provider != prov.name
                or n.label != label
                or n.allocated_to not in (None, req.id)
                or n.id in taken
                or n.state not in (NodeState.READY, NodeState.BUILDING)
            ):
                continue
            r = 0 if n.allocated_to == req.id else (1 if n.state == NodeState.READY else 2)
            if r < rank:
                best, rank = n, r
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
                n = self._free(prov, label, taken, req)
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
            if not all(prov.headroom_ok(lab, ours, missing[:i]) for i, lab in enumerate(missing)):
                continue  # as far as this pass's view says; _give counts afresh
            if self._give(req, prov, have):
                return
        timeout = self.ctx.config.timing.request_timeout
        if timeout and self.ctx.clock.now() - req.created > timeout:
            self._fail(req, f"not fulfilled within {timeout:.0f}s")

    def _give(self, req: NodeRequest, prov: ProviderRuntime, have: list[Node | None]) -> bool:
        """Allocate ``have`` and launch the rest on ``prov``. False if ``prov`` has no
        headroom after all (try the next); True when done or raced (next pass)."""
        grabbed: list[str] = []
        node_ids: list[str | None] = []
        for n in have:
            if n is None:
                node_ids.append(None)
                continue
            if n.allocated_to != req.id:
                saved = self.ctx.save_node(n.evolve(allocated_to=req.id))
                if saved is None:  # raced (another request, another launcher): next pass
                    self._release_nodes(req, grabbed)
                    return True
                n = saved
            grabbed.append(n.id)
            node_ids.append(n.id)
        missing = [lab for lab, nid in zip(req.labels, node_ids, strict=True) if nid is None]
        if missing:
            made = self.ctx.launch_nodes(prov, missing, allocated_to=req.id)
            if made is None:
                self._release_nodes(req, grabbed)
                return False
            fresh = iter(made)
            node_ids = [nid if nid is not None else next(fresh).id for nid in node_ids]
        ids_ = [nid for nid in node_ids if nid is not None]
        pending = req.evolve(
            state=RequestState.PENDING,
            state_time=self.ctx.clock.now(),
            provider=prov.name,
            nodes=tuple(ids_),
        )
        saved_req = self.ctx.save_request(pending)
        if saved_req is None:
            self._release_nodes(req, ids_)
            return True
        log.info(
            "request %s assigned to provider %s",
            req.id,
            prov.name,
            extra=ids(request=req, provider=prov.name, region=prov.region),
        )
        self._check_pending(saved_req)
        return True

    def _check_pending(self, req: NodeRequest) -> None:
        prov = self.ctx.providers.get(req.provider or "")
        nodes = [self.ctx.nodes.get(nid) or self.ctx.refresh_node(nid) for nid in req.nodes]
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
        self.ctx.store.unlock("request", req.id)
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
            self.ctx.store.unlock("request", req.id)
            self.ctx.metrics.request_seconds.labels("failed").observe(max(0.0, now - req.created))
            log.error("request %s failed: %s", req.id, why, extra=ids(request=req))

    def _release_nodes(self, req: NodeRequest, node_ids: list[str]) -> None:
        for nid in node_ids:
            n = self.ctx.nodes.get(nid)
            if (
                n is not None
                and n.allocated_to == req.id
                and n.state in (NodeState.READY, NodeState.BUILDING)
            ):
                self.ctx.save_node(n.evolve(allocated_to=None))

    def unassign(self, req: NodeRequest, decline: bool) -> None:
        """Send a pending request back to be assigned again (elsewhere if need be)."""
        try:
            req = self.ctx.store.get_request(req.id)
        except UnknownRequest:
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
        except UnknownRequest:
            return
        self.unassign(req, decline=gave_up)

    def reclaim(self, requests: Iterable[NodeRequest]) -> None:
        """Free nodes left allocated to a request that does not list them: a pass that
        stopped between allocating nodes and saving the request (an error, a launcher
        killed), or a request gone or finished. Never a node its request may still take:
        an unfinished request's own, or a requested one's while a launcher handles it; and
        only once the same record stayed so for ORPHAN_AFTER (a give in progress on another
        launcher is not seen half-done)."""
        by_id = {r.id: r for r in requests}
        store = self.ctx.store
        now = self.ctx.clock.monotonic()
        seen: dict[str, tuple[int, float]] = {}
        for n in list(self.ctx.nodes.values()):
            if not n.allocated_to or n.state not in (NodeState.READY, NodeState.BUILDING):
                continue
            req = by_id.get(n.allocated_to)
            if req is None:
                try:
                    req = store.get_request(n.allocated_to)  # newer than this pass's view?
                except UnknownRequest:
                    req = None
            if req is not None and n.id in req.nodes and req.state != RequestState.FAILED:
                continue  # its own (fulfilled: this view of the node lags; it is in use)
            if (
                req is not None
                and req.state == RequestState.REQUESTED
                and (store.held("request", req.id) or store.locked_elsewhere("request", req.id))
            ):
                continue  # its launcher may be giving it this node right now
            first = self._orphans.get(n.id)
            since = first[1] if first is not None and first[0] == n.version else now
            seen[n.id] = (n.version, since)
            if now - since < ORPHAN_AFTER:
                continue
            if self.ctx.save_node(n.evolve(allocated_to=None)) is not None:
                log.info(
                    "node %s was left allocated to request %s: freed",
                    n.id,
                    n.allocated_to,
                    extra=ids(n),
                )
        self._orphans = seen

    # -- min-ready and expiry ----------------------------------------------------------
    def _spare(self, label: str, nodes: Iterable[Node]) -> int:
        return sum(
            1
            for n in nodes
            if n.label == label
            and not n.allocated_to
            and n.state in (NodeState.READY, NodeState.BUILDING)
        )

    def min_ready(self, requests: Iterable[NodeRequest]) -> None:
        if any(r.state == RequestState.REQUESTED for r in requests):
            return  # real requests first; at capacity min-ready must not compete
        wanted = [lab for lab in self.ctx.config.labels if lab.min_ready > 0]
        if all(self._spare(lab.name, self.ctx.nodes.values()) >= lab.min_ready for lab in wanted):
            return
        # Launchers top up one at a time, each counting afresh: not one node per launcher.
        with self.ctx.store.exclusive("min-ready", ADMISSION_WAIT) as got:
            if not got:
                return
            self.ctx.fresh_nodes()
            for label in wanted:
                need = label.min_ready - self._spare(label.name, self.ctx.nodes.values())
                name, target = label.name, label.min_ready

                def short(fresh: list[Node], name: str = name, target: int = target) -> bool:
                    return self._spare(name, fresh) < target

                for _ in range(need):
                    prov = self._min_ready_provider(name)
                    if prov is None:
                        break
                    made = self.ctx.launch_nodes(prov, [name], still_wanted=short)
                    if not made:
                        break
                    log.info("launching min-ready node %s", made[0].id, extra=ids(made[0]))

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
