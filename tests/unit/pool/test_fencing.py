"""Fencing a launcher that lost a node's lock (a stall past its session): the create
machine around its create call, and the launch epoch on node writes. The multi-process
proof with a real ZooKeeper and SIGSTOP is tests/functional/pool/test_launcher_stall.py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait
from typing import Literal

import pytest

from rackpool.core.clock import SystemClock
from rackpool.core.states import NodeState
from rackpool.pool.drivers.fake import FakeAdapter, FakeCloud, FakeProvider
from rackpool.pool.drivers.interface import LaunchSpec, StateMachine
from rackpool.pool.errors import LockLost
from rackpool.pool.model import META_NODE

from .conftest import fake_provider, pool_config


class Verdicts:
    """A fence that answers as told (the framework's side, not a patched internal)."""

    def __init__(self, owned: bool, settle: Literal["ours", "adopted", "orphan"]) -> None:
        self.owned = owned
        self.verdict = settle
        self.checks = 0

    def check(self) -> None:
        self.checks += 1
        if not self.owned:
            raise LockLost("not ours")

    def settle(self, external_id: str) -> Literal["ours", "adopted", "orphan"]:
        return self.verdict


def run_create(fence: Verdicts) -> tuple[FakeCloud, StateMachine, BaseException | None]:
    provider = FakeProvider.model_validate(fake_provider("f", **{"boot-delay": 0}))
    cloud = FakeCloud()
    with ThreadPoolExecutor(2) as pool:
        adapter = FakeAdapter(provider, pool, SystemClock(), cloud)
        spec = LaunchSpec(
            "0000000007", "small", "small-f-7", {META_NODE: "0000000007"}, None, fence
        )
        machine = adapter.create_machine(spec, None)
        error: BaseException | None = None
        for _ in range(500):
            try:
                machine.advance()
            except LockLost as exc:
                error = exc
                break
            if machine.complete:
                break
            call = getattr(machine, "_call", None)
            if call is not None:
                wait([call.future], 5)
    return cloud, machine, error


def test_a_create_is_not_sent_without_the_lock() -> None:
    fence = Verdicts(owned=False, settle="ours")
    cloud, machine, error = run_create(fence)
    assert isinstance(error, LockLost)
    assert cloud.servers == {}
    assert cloud.calls.get("create", 0) == 0
    assert machine.external_id is None


def test_a_create_answering_after_the_lock_was_lost_is_deleted_at_once() -> None:
    cloud, machine, error = run_create(Verdicts(owned=True, settle="orphan"))
    assert isinstance(error, LockLost)
    assert cloud.calls["create"] == 1 and cloud.calls["delete"] == 1
    assert cloud.servers == {}
    assert machine.external_id is None  # never recorded


def test_a_stale_create_the_new_owner_adopted_is_left_to_it() -> None:
    cloud, machine, error = run_create(Verdicts(owned=True, settle="adopted"))
    assert isinstance(error, LockLost)
    assert len(cloud.servers) == 1 and "delete" not in cloud.calls
    assert machine.external_id is None


def test_an_owned_create_completes() -> None:
    fence = Verdicts(owned=True, settle="ours")
    cloud, machine, error = run_create(fence)
    assert error is None and machine.complete and fence.checks == 1
    assert machine.external_id in cloud.servers


def test_takeover_bumps_the_epoch_and_the_stale_owner_cannot_write(make_launcher) -> None:
    cfg = pool_config([fake_provider("a", **{"boot-delay": 5})], [{"name": "small"}])
    la = make_launcher(cfg)
    prov = la.providers["a"]
    node = la.ctx.new_node(prov, "small")
    assert la.ctx.epochs[node.id] == 0 and node.launch_epoch == 0
    # another launcher takes the node over: its epoch moves on, it records its server
    taken = la.store.update_node(node.evolve(launch_epoch=1, external_id="new-owner-server"))
    la.ctx.nodes[node.id] = taken
    with pytest.raises(LockLost):
        la.work._patch(taken, (NodeState.BUILDING,), external_id="stale-server")
    stored = la.store.get_node(node.id)
    assert stored.external_id == "new-owner-server" and stored.launch_epoch == 1
    with pytest.raises(LockLost):
        la.ctx.drop_node(node.id, epoch=0)
    assert la.store.get_node(node.id).id == node.id  # not deleted


def test_claiming_an_unlocked_node_bumps_its_epoch(make_launcher) -> None:
    cfg = pool_config([fake_provider("a", **{"boot-delay": 5})], [{"name": "small"}])
    la = make_launcher(cfg)
    node = la.ctx.new_node(la.providers["a"], "small")
    la.work.release(node.id)  # as if its launcher had gone: unlocked
    assert not la.store.held("node", node.id)
    claimed = la.work.claim(la.store.get_node(node.id))
    assert claimed is not None and claimed.launch_epoch == 1
    assert la.store.get_node(node.id).launch_epoch == 1 and la.ctx.epochs[node.id] == 1
    assert la.store.owns("node", node.id)
    saved = la.work._patch(claimed, (NodeState.BUILDING,), comment="mine")
    assert saved is not None and saved.comment == "mine"
