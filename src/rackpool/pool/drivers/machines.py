"""Create/delete state machines shared by server-based drivers (openstack, fake).

A driver supplies blocking ``create``/``get``/``find``/``delete`` functions; the machines
run them in the provider's executor and advance without blocking. Their state is a
small dict, so a restarted launcher resumes them: a create interrupted after
submission finds its server by the node id in the metadata instead of making another.

Around the create call (in the executor) the machine asks the launch's fence
(:class:`~rackpool.pool.drivers.interface.Fence`): right before sending, whether the
node is still this launcher's (else nothing is sent), and when the answer arrives; a
server made after the node's lock was lost is deleted here at once unless the node's
new owner already took it over, and the machine raises LockLost instead of recording it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from rackpool.core.clock import Clock
from rackpool.pool.drivers.interface import Adapter, Call, Instance, LaunchSpec, StateMachine
from rackpool.pool.errors import LaunchError, LaunchTimeout, LockLost, QuotaError

log = logging.getLogger("rackpool.pool.launcher")


class ServerCreate(StateMachine):
    FINDING = "finding"
    BUILDING = "building"

    def __init__(
        self,
        adapter: Adapter,
        spec: LaunchSpec,
        saved: Mapping[str, Any] | None,
        create: Callable[[LaunchSpec], Instance],
        get: Callable[[str], Instance | None],
        find: Callable[[str], Instance | None],
        poll_interval: float,
        delete: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(saved)
        self.adapter = adapter
        self.clock: Clock = adapter.clock
        self.spec = spec
        self._create, self._get, self._find, self._delete = create, get, find, delete
        self.poll_interval = poll_interval
        self.started: float = (saved or {}).get("started", self.clock.now())
        self._call: Call | None = None
        self._next_poll = 0.0
        if self.state == self.SUBMITTING:  # resumed: the server may exist already
            self.state = self.BUILDING if self.external_id else self.FINDING
        elif self.state == self.BUILDING and not self.external_id:
            self.state = self.FINDING

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "started": self.started}

    def _done(self) -> tuple[bool, Any]:
        assert self._call is not None
        value = self._call.result(self.clock.monotonic())
        if not self._call.future.done():
            return False, None
        self._call = None
        return True, value

    def advance(self) -> None:
        if self.state == self.START:
            # boot-timeout counts from the create call, not from when the node was
            # planned: a launch waiting for its turn (provider rate) is not booting.
            self.started = self.clock.now()
            self._call = self.adapter.call(self._fenced_create, self.spec, what="create server")
            self.state = self.SUBMITTING
            return
        if self.clock.now() - self.started > self.adapter.provider.boot_timeout:
            raise LaunchTimeout(
                f"boot timeout: server for node {self.spec.node_id} not active after "
                f"{self.adapter.provider.boot_timeout:.0f}s (state {self.state})"
            )
        if self.state == self.FINDING:
            if self._call is None:
                self._call = self.adapter.call(self._find, self.spec.node_id, what="find server")
                return
            ok, found = self._done()
            if ok:
                if found is None:
                    self.state = self.START
                else:
                    self.external_id = found.external_id
                    self.state = self.BUILDING
        elif self.state == self.SUBMITTING:
            ok, inst = self._done()
            if ok:
                self.external_id = inst.external_id
                self._check(inst)
                self.state = self.COMPLETE if inst.status == "active" else self.BUILDING
        elif self.state == self.BUILDING:
            self._poll()

    def _fenced_create(self, spec: LaunchSpec) -> Instance:
        """The create, between the fence's two checks (runs in the executor)."""
        fence = spec.fence
        if fence is not None:
            fence.check()
        inst = self._create(spec)
        if fence is None:
            return inst
        verdict = fence.settle(inst.external_id)
        if verdict == "ours":
            return inst
        extra = {"node_id": spec.node_id, "instance_id": inst.external_id}
        if verdict == "adopted":
            log.warning(
                "server %s for node %s answered after this launcher lost the node; its new "
                "owner took the server over",
                inst.external_id,
                spec.node_id,
                extra={**extra, "event": "stale_create_adopted"},
            )
        else:
            log.warning(
                "server %s for node %s was made after this launcher lost the node: deleting it",
                inst.external_id,
                spec.node_id,
                extra={**extra, "event": "stale_create_deleted"},
            )
            if self._delete is not None:
                try:
                    self._delete(inst.external_id)
                except Exception:  # noqa: BLE001 - tagged: leak cleanup deletes it later
                    log.exception("deleting stale server %s failed", inst.external_id)
        raise LockLost(f"node {spec.node_id} is no longer this launcher's")

    def _poll(self) -> None:
        now = self.clock.monotonic()
        if self._call is None:
            if now < self._next_poll:
                return
            self._next_poll = now + self.poll_interval
            assert self.external_id is not None
            self._call = self.adapter.call(self._get, self.external_id, what="get server")
            return
        ok, inst = self._done()
        if not ok:
            return
        if inst is None:
            raise LaunchError(f"server {self.external_id} disappeared while building")
        self._check(inst)
        if inst.status == "active":
            self.state = self.COMPLETE

    def _check(self, inst: Instance) -> None:
        self.instance = inst
        if inst.status == "error":
            fault = inst.fault or "server went to ERROR"
            if "Quota exceeded" in fault:  # translated here, at the driver edge
                raise QuotaError(fault)
            raise LaunchError(f"server {inst.external_id} failed: {fault}")


class ServerDelete(StateMachine):
    DELETING = "deleting"

    def __init__(
        self,
        adapter: Adapter,
        external_id: str,
        saved: Mapping[str, Any] | None,
        delete: Callable[[str], None],
        get: Callable[[str], Instance | None],
        poll_interval: float,
    ) -> None:
        super().__init__(saved)
        self.adapter = adapter
        self.external_id = external_id
        self._delete, self._get = delete, get
        self.poll_interval = poll_interval
        self._call: Call | None = None
        self._next_poll = 0.0
        if self.state == self.DELETING:
            self.state = self.START  # deleting again is harmless

    def advance(self) -> None:
        now = self.adapter.clock.monotonic()
        if self._call is not None:
            self._call.result(now)
            if not self._call.future.done():
                return
            call, self._call = self._call, None
            if self.state == self.START:
                self.state = self.DELETING
                self._next_poll = now + self.poll_interval / 4
            elif call.future.result() is None:
                self.state = self.COMPLETE
            return
        if self.state == self.START:
            assert self.external_id is not None
            self._call = self.adapter.call(self._delete, self.external_id, what="delete server")
        elif self.state == self.DELETING and now >= self._next_poll:
            self._next_poll = now + self.poll_interval
            assert self.external_id is not None
            self._call = self.adapter.call(self._get, self.external_id, what="get server")
