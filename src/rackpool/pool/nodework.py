"""Driving node launches and deletions: the framework side of the state machines.

A launch is: the driver's create machine, then (if host-key-checking) scanning the
node's SSH host keys, then ready. Progress is written to the node record
(``launch_state``) so a restarted launcher resumes instead of starting over.

Several launchers may share the store: a launcher works only on nodes whose lock it
holds (it takes the lock when it creates a node; a node whose launcher died is unlocked
once that launcher's session ends, and the next launcher to see it takes it over and
resumes from ``launch_state``). A launch starts only once admitted under its provider's
store-wide lock, against a fresh count of launches in flight (``max-concurrency``) and
the provider's pacing (``rate``), both shared by every launcher; the admission is
written to the node before the create goes out, so a launcher taking over a launch
whose create may have been sent looks for the server before making another.

A launcher that stalls (SIGSTOP, a long pause, a partition from ZooKeeper) past its
session timeout loses its locks while it still believes it holds them, and another
launcher takes its nodes over. It is fenced three ways, so it never adds a second
server to a node or overwrites the new owner's record:

- right before a create is sent and again when its answer arrives, the launch's
  :class:`NodeFence` asks the store whether the node's lock is still ours
  (:meth:`Store.owns`): a lost lock sends nothing, and a server that was made after the
  lock was lost is deleted by the stale launcher at once, unless the new owner already
  took that server over (found it by its node id);
- every write for a launch or delete is fenced (:meth:`Ctx.patch_node` with ``epoch``):
  the store applies it only while the lock is held, over a record whose ``launch_epoch``
  is still the one this launcher took the node with. Taking a node over bumps the epoch
  before anything else is done for it, so a stale launcher's writes raise LockLost;
- when the store reports the connection down (ZooKeeper SUSPENDED) no create is sent
  (the fence cannot verify the lock) and the loop waits; when the session is lost all
  work in hand is forgotten (:meth:`NodeWork.forget`) and resumed only through the
  locks that a new session takes.

A launch whose lock was lost is dropped here, never failed: its new owner resumes it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from rackpool.core.states import NodeState
from rackpool.pool.context import ADMISSION_WAIT, Ctx, ids
from rackpool.pool.drivers.interface import Call, Instance, LaunchSpec, StateMachine
from rackpool.pool.errors import (
    KeyscanError,
    LaunchError,
    LaunchTimeout,
    LockLost,
    QuotaError,
    UnknownNode,
)
from rackpool.pool.model import META_LABEL, META_NODE, META_POOL, META_PROVIDER, Node
from rackpool.pool.provider import ProviderRuntime

log = logging.getLogger("rackpool.pool.launcher")

# How long a stale launcher whose create answered waits for the node's new owner to find
# that server (the owner's record says it is still looking) before deleting it.
ADOPTION_WAIT = 10.0


class NodeFence:
    """:class:`~rackpool.pool.drivers.interface.Fence` of one launch: the node's lock,
    verified with the store from the provider's executor around the create call."""

    def __init__(self, ctx: Ctx, node_id: str) -> None:
        self.ctx = ctx
        self.node_id = node_id

    def _verdict_wait(self) -> float:
        """How long to wait for a connection before deciding a lock is lost: past the
        session timeout the server has expired a session it did not hear from."""
        zk = self.ctx.config.zookeeper
        return 1.5 * zk.session_timeout if zk is not None else 0.0

    def check(self) -> None:
        if not self.ctx.store.owns("node", self.node_id):
            log.warning(
                "create for node %s not sent: its lock is not verified (store unreachable "
                "or the lock lost)",
                self.node_id,
                extra={"node_id": self.node_id, "event": "create_fenced"},
            )
            raise LockLost(f"node {self.node_id}: lock not verified, create not sent")

    def settle(self, external_id: str) -> Literal["ours", "adopted", "orphan"]:
        store = self.ctx.store
        if store.owns("node", self.node_id, wait=self._verdict_wait()):
            return "ours"
        deadline = time.monotonic() + ADOPTION_WAIT
        while True:
            try:
                node = store.get_node(self.node_id)
            except UnknownNode:
                return "orphan"
            except Exception:  # noqa: BLE001 - store unreachable: cannot be adopted now
                log.warning("node %s: store unreachable deciding a stale create", self.node_id)
                return "orphan"
            machine = (node.launch_state or {}).get("machine") or {}
            if external_id in (node.external_id, machine.get("external_id")):
                return "adopted"
            if node.state != NodeState.BUILDING or time.monotonic() > deadline:
                return "orphan"
            if machine.get("state") not in (StateMachine.SUBMITTING, "finding"):
                return "orphan"  # the new owner looked and made or makes its own
            time.sleep(0.05)  # the new owner is looking for it by node id


@dataclass
class LaunchTask:
    machine: StateMachine
    started: float  # wall clock, survives restarts via the node record
    # When the create was submitted (wall clock); None while waiting for the provider's
    # rate slot. boot-timeout and launch-timeout count from here, not from ``started``.
    submitted: float | None = None
    phase: str = "machine"  # "machine" | "keyscan"
    keyscan: Call | None = None
    next_scan: float = 0.0
    saved: dict[str, Any] | None = None
    request_id: str = ""  # the global request id sent with the create

    def state(self) -> dict[str, Any]:
        """What the node record keeps so a restarted launcher resumes this launch."""
        return {
            "phase": self.phase,
            "started": self.started,
            "submitted": self.submitted,
            "machine": self.machine.to_dict(),
        }


@dataclass
class DeleteTask:
    machine: StateMachine
    retry_at: float = 0.0


# Called when a launch fails: (node, error, gave_up). The scheduler reroutes requests.
FailureHook = Callable[[Node, LaunchError, bool], None]


class NodeWork:
    def __init__(self, ctx: Ctx, on_failure: FailureHook) -> None:
        self.ctx = ctx
        self.on_failure = on_failure
        self.launches: dict[str, LaunchTask] = {}
        self.deletes: dict[str, DeleteTask] = {}
        self.draining = False  # stopping: finish what was sent, start nothing new

    @property
    def busy(self) -> bool:
        return bool(self.launches or self.deletes)

    def forget(self) -> None:
        """Drop all work in hand (this launcher's locks were lost)."""
        self.launches.clear()
        self.deletes.clear()
        self.ctx.epochs.clear()

    def lost(self, node_id: str, why: LockLost) -> None:
        """Another launcher owns the node now (our lock went with a stall): drop its work
        without a write; the new owner resumes it from the record."""
        self.launches.pop(node_id, None)
        self.deletes.pop(node_id, None)
        self.ctx.epochs.pop(node_id, None)
        node = self.ctx.nodes.get(node_id)
        log.warning(
            "node %s: dropping the work in hand, its lock is not this launcher's (%s); "
            "whoever holds the lock resumes it from the record",
            node_id,
            why,
            extra=ids(node, event="node_lost") if node else {"node_id": node_id},
        )

    def epoch(self, node_id: str) -> int:
        """The launch epoch this launcher holds the node with (LockLost if none)."""
        epoch = self.ctx.epochs.get(node_id)
        if epoch is None or not self.ctx.store.held("node", node_id):
            raise LockLost(f"node {node_id}: this launcher does not hold it")
        return epoch

    def _patch(self, node: Node, expect: Iterable[NodeState] = (), **changes: Any) -> Node | None:
        """A fenced :meth:`Ctx.patch_node` for the node this launcher works on."""
        return self.ctx.patch_node(node, tuple(expect), self.epoch(node.id), **changes)

    def _move(self, node: Node, state: NodeState, **changes: Any) -> Node | None:
        return self.ctx.move(node, state, self.epoch(node.id), **changes)

    def _drop(self, node: Node) -> None:
        self.ctx.drop_node(node.id, self.epoch(node.id))
        self.release(node.id)

    def claim(self, node: Node) -> Node | None:
        """The node, locked for this launcher, as stored now; None if another launcher
        works on it. A node nobody holds (its launcher died, stalled or stopped) is taken
        over: its ``launch_epoch`` is bumped first, which fences the previous holder."""
        store = self.ctx.store
        if store.held("node", node.id) and node.id in self.ctx.epochs:
            return node
        if store.locked_elsewhere("node", node.id) or not store.lock("node", node.id):
            return None
        fresh = self.ctx.refresh_node(node.id)
        for _ in range(5):
            if fresh is None or fresh.state != node.state:
                store.unlock("node", node.id)
                return None
            try:
                bumped = self.ctx.save_node(
                    fresh.evolve(launch_epoch=fresh.launch_epoch + 1), locked=True
                )
            except LockLost:
                return None
            if bumped is not None:
                break
            fresh = self.ctx.nodes.get(node.id)  # raced (an allocation): read again
        else:
            store.unlock("node", node.id)
            return None
        self.ctx.epochs[node.id] = bumped.launch_epoch
        if bumped.state == NodeState.BUILDING:  # a building node is unlocked only then
            log.info(
                "taking over building node %s (its launcher is gone)",
                bumped.id,
                extra=ids(bumped, event="node_taken_over", launch_epoch=bumped.launch_epoch),
            )
        return bumped

    def release(self, node_id: str) -> None:
        self.launches.pop(node_id, None)
        self.deletes.pop(node_id, None)
        self.ctx.epochs.pop(node_id, None)
        self.ctx.store.unlock("node", node_id)

    def _prune(self, tasks: dict[str, Any], state: NodeState) -> None:
        for nid in list(tasks):
            n = self.ctx.nodes.get(nid)
            if n is None or n.state != state or not self.ctx.store.held("node", nid):
                tasks.pop(nid, None)

    # -- launches --------------------------------------------------------------------
    def spec(self, node: Node, prov: ProviderRuntime, request_id: str | None = None) -> LaunchSpec:
        meta = {
            META_POOL: self.ctx.config.pool_name,
            META_NODE: node.id,
            META_PROVIDER: prov.name,
            META_LABEL: node.label,
        }
        fence = NodeFence(self.ctx, node.id)
        return LaunchSpec(node.id, node.label, node.hostname, meta, request_id, fence)

    def _task(self, node: Node, prov: ProviderRuntime) -> LaunchTask:
        task = self.launches.get(node.id)
        if task is None:
            saved = dict(node.launch_state or {})
            # one global request id per node, kept across attempts and restarts, so the
            # cloud's, the host's and our lines about the node are found by one search
            request_id = node.global_request_id or f"req-{uuid.uuid4()}"
            spec = self.spec(node, prov, request_id)
            machine = prov.adapter.create_machine(spec, saved.get("machine"))
            started = float(saved.get("started", self.ctx.clock.now()))
            task = LaunchTask(machine, started, request_id=request_id)
            task.phase = saved.get("phase", "machine")
            if saved.get("submitted") is not None:
                task.submitted = float(saved["submitted"])
            elif machine.state != machine.START:  # a record from before "submitted"
                task.submitted = started
            task.saved = saved or None
            self.launches[node.id] = task
        return task

    def advance_launches(self) -> None:
        self._prune(self.launches, NodeState.BUILDING)
        mine: list[tuple[Node, ProviderRuntime, LaunchTask]] = []
        for node in [n for n in self.ctx.nodes.values() if n.state == NodeState.BUILDING]:
            runtime = self.ctx.providers.get(node.provider)
            if runtime is None or not runtime.health.in_service:
                continue
            claimed = self.claim(node)
            if claimed is None:
                continue
            try:
                task = self._task(claimed, runtime)
            except Exception as exc:  # noqa: BLE001 - a driver bug fails the launch, not us
                log.exception("launch setup crashed", extra=ids(claimed))
                self._fail_safely(claimed, runtime, None, LaunchError(f"internal error: {exc!r}"))
                continue
            mine.append((claimed, runtime, task))
        self._admit(mine)
        for node, prov, task in mine:
            node = self.ctx.nodes.get(node.id, node)
            if node.state != NodeState.BUILDING or node.id not in self.launches:
                continue
            try:
                self._step(node, prov, task)
            except LockLost as exc:
                self.lost(node.id, exc)
            except LaunchError as exc:
                self._fail_safely(node, prov, task, exc)
            except Exception as exc:  # noqa: BLE001 - a driver bug fails the launch, not us
                log.exception("launch step crashed", extra=ids(node))
                self._fail_safely(node, prov, task, LaunchError(f"internal error: {exc!r}"))

    def _fail_safely(
        self, node: Node, prov: ProviderRuntime, task: LaunchTask | None, exc: LaunchError
    ) -> None:
        try:
            self._failed(node, prov, task, exc)
        except LockLost as lost:
            self.lost(node.id, lost)

    @staticmethod
    def in_flight(provider: str, nodes: Iterable[Node]) -> int:
        """Launches of ``provider`` admitted and not yet ready, by every launcher."""
        return sum(
            1
            for n in nodes
            if n.provider == provider
            and n.state == NodeState.BUILDING
            and (n.launch_state or {}).get("submitted") is not None
        )

    def _admit(self, mine: list[tuple[Node, ProviderRuntime, LaunchTask]]) -> None:
        """Let waiting launches start within max-concurrency and rate, counted across
        every launcher under the provider's lock; the admission is saved first."""
        if self.draining:
            return
        waiting: dict[str, list[tuple[Node, ProviderRuntime, LaunchTask]]] = defaultdict(list)
        for item in mine:
            task = item[2]
            if task.submitted is None and task.machine.state == task.machine.START:
                waiting[item[1].name].append(item)
        store, clock = self.ctx.store, self.ctx.clock
        for name, items in waiting.items():
            prov = items[0][1]
            cfg = prov.config
            now = clock.now()
            if now < prov.paced_until:
                continue  # the provider's rate: not this launch's turn yet (as last read)
            if self.in_flight(name, self.ctx.nodes.values()) >= cfg.max_concurrency:
                continue  # max-concurrency launches in flight: wait for one to finish
            with store.exclusive(f"provider-{name}", ADMISSION_WAIT) as got:
                if not got:
                    continue
                free = cfg.max_concurrency - self.in_flight(name, self.ctx.fresh_nodes())
                next_at = 0.0
                if cfg.rate > 0:
                    next_at = float(store.get_meta(f"provider-{name}").get("next-submit", 0.0))
                paced = False
                for node, _, task in items:
                    if free <= 0 or (cfg.rate > 0 and now < next_at):
                        break
                    task.submitted = now
                    intent = task.state()
                    if task.machine.state == task.machine.START:
                        intent["machine"] = {**intent["machine"], "state": StateMachine.SUBMITTING}
                    current = self.ctx.nodes.get(node.id)
                    if current is None or current.state != NodeState.BUILDING:
                        task.submitted = None
                        continue
                    try:
                        admitted = self._patch(current, (NodeState.BUILDING,), launch_state=intent)
                    except LockLost as exc:
                        task.submitted = None
                        self.lost(node.id, exc)
                        continue
                    if admitted:
                        task.saved = intent
                        free -= 1
                        if cfg.rate > 0:
                            next_at, paced = now + cfg.rate, True
                    else:
                        task.submitted = None
                if paced:
                    store.put_meta(f"provider-{name}", {"next-submit": next_at})
                prov.paced_until = next_at if cfg.rate > 0 else 0.0

    def _step(self, node: Node, prov: ProviderRuntime, task: LaunchTask) -> None:
        now = self.ctx.clock.now()
        if task.submitted is not None and now - task.submitted > prov.config.launch_timeout:
            raise LaunchTimeout(f"launch timeout after {prov.config.launch_timeout:.0f}s")
        if task.phase == "keyscan":
            self._poll_keyscan(node, prov, task)
            return
        machine = task.machine
        if machine.state == machine.START and task.submitted is None:
            return  # not admitted yet (max-concurrency, rate)
        machine.advance()
        if machine.complete:
            assert machine.instance is not None
            self._instance_up(node, prov, task, machine.instance)
            return
        state = task.state()
        if state != task.saved:
            saved = self._patch(
                node,
                (NodeState.BUILDING,),
                launch_state=state,
                external_id=machine.external_id,
                global_request_id=task.request_id,
            )
            if saved is not None:
                task.saved = state

    def _instance_up(
        self, node: Node, prov: ProviderRuntime, task: LaunchTask, inst: Instance
    ) -> None:
        info = prov.label_info(node.label)
        facts: dict[str, Any] = {
            "external_id": inst.external_id,
            "interface_ip": inst.interface_ip,
            "public_ipv4": inst.public_ipv4,
            "private_ipv4": inst.private_ipv4,
            "public_ipv6": inst.public_ipv6,
            "az": inst.az,
            "username": info.username,
            "connection_port": inst.connection_port or info.connection_port,
            "global_request_id": task.request_id,
        }
        if not prov.host_key_checking(node.label):
            self._ready(node, prov, task, (), facts)
            return
        task.phase = "keyscan"
        task.saved = task.state()
        saved = self._patch(node, (NodeState.BUILDING,), launch_state=task.saved, **facts)
        if saved is not None:
            self._poll_keyscan(saved, prov, task)

    def _poll_keyscan(self, node: Node, prov: ProviderRuntime, task: LaunchTask) -> None:
        now = self.ctx.clock.now()
        if task.keyscan is None:
            if self.ctx.clock.monotonic() < task.next_scan:
                return
            since = task.started if task.submitted is None else task.submitted
            if now - since > prov.config.boot_timeout:
                raise KeyscanError(
                    f"ssh-keyscan failed: no SSH host keys from {node.interface_ip}:"
                    f"{node.connection_port} within {prov.config.boot_timeout:.0f}s of boot"
                )
            timeout = prov.config.keyscan_timeout
            fut = prov.executor.submit(
                self.ctx.keyscanner.scan, node.interface_ip, node.connection_port, timeout
            )
            task.keyscan = Call(fut, self.ctx.clock.monotonic() + timeout + 10, "ssh-keyscan")
            return
        if not task.keyscan.future.done():
            return
        fut, task.keyscan = task.keyscan.future, None
        try:
            keys = fut.result()
        except KeyscanError:
            task.next_scan = self.ctx.clock.monotonic() + 0.5
            return
        self._ready(node, prov, task, tuple(keys), {})

    def _ready(
        self,
        node: Node,
        prov: ProviderRuntime,
        task: LaunchTask,
        keys: tuple[str, ...],
        facts: dict[str, Any],
    ) -> None:
        now = self.ctx.clock.now()
        saved = self._patch(
            node,
            (NodeState.BUILDING,),
            state=NodeState.READY,
            state_time=now,
            host_keys=keys,
            launch_state=None,
            ready_time=now,
            **facts,
        )
        if saved is None:
            self.launches.pop(node.id, None)  # resumed from its record on the next pass
            current = self.ctx.nodes.get(node.id)
            if current is None or current.state != NodeState.BUILDING:
                self.release(node.id)
            return
        self.release(node.id)  # a ready node is nobody's work
        if prov.health.success():
            log.warning("provider %s back in service", prov.name, extra={"provider": prov.name})
        self.ctx.metrics.launch_seconds.labels(prov.name, node.label, "ready").observe(
            max(0.0, now - task.started)
        )
        log.info(
            "node %s ready at %s:%s",
            node.id,
            saved.interface_ip,
            saved.connection_port,
            extra=ids(saved, event="node_ready"),
        )

    def _failed(
        self, node: Node, prov: ProviderRuntime, task: LaunchTask | None, exc: LaunchError
    ) -> None:
        self.launches.pop(node.id, None)
        machine = task.machine if task is not None else None
        ext = (machine.external_id if machine else None) or node.external_id
        started = task.started if task is not None else node.state_time
        kind = exc.kind
        self.ctx.metrics.errors.labels(prov.name, kind).inc()
        self.ctx.metrics.launch_seconds.labels(prov.name, node.label, kind).observe(
            max(0.0, self.ctx.clock.now() - started)
        )
        level = logging.WARNING if isinstance(exc, QuotaError) else logging.ERROR
        log.log(
            level,
            "launch of node %s failed (attempt %d of %d): %s",
            node.id,
            node.launch_attempts + 1,
            prov.config.launch_retries,
            exc.message,
            extra=ids(node, event="launch_failed", error_kind=kind),
        )
        if isinstance(exc, QuotaError):
            prov.quota_error()
            self._discard(node, ext, NodeState.ABORTED)
            self.on_failure(node, exc, False)
            return
        went_out = prov.health.error(kind, exc.message)
        if went_out:
            self.ctx.metrics.out_of_service.labels(prov.name).inc()
        attempts = node.launch_attempts + 1
        if prov.health.in_service and attempts < prov.config.launch_retries:
            if ext:  # the failed server goes away under its own record
                self.ctx.new_node(
                    prov,
                    node.label,
                    state=NodeState.DELETING,
                    external_id=ext,
                    comment=f"failed launch attempt of node {node.id}",
                )
            self._patch(
                node,
                (NodeState.BUILDING,),
                launch_attempts=attempts,
                launch_state=None,
                external_id=None,
            )
            return
        self._discard(node, ext, NodeState.FAILED)
        self.on_failure(node, exc, True)

    def _discard(self, node: Node, ext: str | None, state: NodeState) -> None:
        """A node that will not become ready: record why, then delete what exists."""
        saved = self._move(node, state, external_id=ext, allocated_to=None, launch_state=None)
        if saved is None:
            return
        if ext:
            self._move(saved, NodeState.DELETING)  # still ours: we delete it
        else:
            self._drop(saved)

    def abandon(self, node: Node) -> None:
        """Stop launching ``node`` (its provider went out of service); delete it later."""
        if not self.ctx.store.held("node", node.id):
            return  # another launcher's launch: its own view of the provider decides
        self.launches.pop(node.id, None)
        ext = node.external_id or (node.launch_state or {}).get("machine", {}).get("external_id")
        try:
            self._move(
                node, NodeState.DELETING, external_id=ext, allocated_to=None, launch_state=None
            )
        except LockLost as exc:
            self.lost(node.id, exc)

    # -- deletes ---------------------------------------------------------------------
    def advance_deletes(self) -> None:
        self._prune(self.deletes, NodeState.DELETING)
        for node in [n for n in self.ctx.nodes.values() if n.state == NodeState.DELETING]:
            prov = self.ctx.providers.get(node.provider)
            if prov is None:
                continue
            claimed = self.claim(node)
            if claimed is None:
                continue
            node = claimed
            if not node.external_id:
                # Never got an id: leak cleanup finds anything a late create made.
                try:
                    self._drop(node)
                except LockLost as exc:
                    self.lost(node.id, exc)
                continue
            if not prov.health.in_service:
                continue
            task = self.deletes.get(node.id)
            if task is None:
                task = DeleteTask(prov.adapter.delete_machine(node.external_id, node.delete_state))
                self.deletes[node.id] = task
            if self.ctx.clock.monotonic() < task.retry_at:
                continue
            try:
                task.machine.advance()
            except LaunchError as exc:
                self._delete_failed(node, prov, task, exc)
                continue
            except Exception as exc:  # noqa: BLE001
                log.exception("delete step crashed", extra=ids(node))
                self._delete_failed(node, prov, task, LaunchError(repr(exc)))
                continue
            if task.machine.complete:
                try:
                    self._drop(node)
                except LockLost as exc:
                    self.lost(node.id, exc)
                    continue
                log.info("node %s deleted", node.id, extra=ids(node, event="node_deleted"))

    def _delete_failed(
        self, node: Node, prov: ProviderRuntime, task: DeleteTask, exc: LaunchError
    ) -> None:
        log.warning("delete of node %s failed: %s", node.id, exc.message, extra=ids(node))
        self.ctx.metrics.errors.labels(prov.name, f"delete-{exc.kind}").inc()
        if prov.health.error(exc.kind, exc.message):
            self.ctx.metrics.out_of_service.labels(prov.name).inc()
        self.deletes[node.id] = DeleteTask(
            prov.adapter.delete_machine(node.external_id or "", None),
            retry_at=self.ctx.clock.monotonic() + 2.0,
        )
