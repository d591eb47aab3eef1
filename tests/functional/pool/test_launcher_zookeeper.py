"""The launcher's own test suite (tests/unit/pool) again, on a real ZooKeeper store.

The same tests, imported, with ``make_launcher`` building each launcher on a
``ZooKeeperStore`` in a chroot of its own. A test that makes a second launcher on the
same store means "the first was killed": its session is closed, as ZooKeeper would
expire a dead launcher's, so its locks vanish and the second takes its work over.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.support.zookeeper import ZooKeeper, unique_chroot
from tests.unit.pool.conftest import FakeWorld, fake_provider, pool_config
from tests.unit.pool.test_api import *  # noqa: F403
from tests.unit.pool.test_launcher import *  # noqa: F403
from tests.unit.pool.test_rate_and_age import *  # noqa: F403

from rackpool.core.clock import wait_for
from rackpool.pool.config import PoolConfig
from rackpool.pool.drivers.fake import FakeCloud
from rackpool.pool.launcher import Launcher
from rackpool.pool.store.zookeeper import ZooKeeperStore


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
def make_launcher(
    zookeeper_server: ZooKeeper, world: FakeWorld
) -> Iterator[Callable[..., Launcher]]:
    chroot = unique_chroot()
    made: list[Launcher] = []

    def make(config: PoolConfig, **kw: Any) -> Launcher:
        for old in made:  # "killed": its session ends, its locks vanish
            old.store.close()
        store = ZooKeeperStore(zookeeper_server.hosts, chroot, session_timeout=4)
        kw.setdefault("adapter_factory", world.factory)
        launcher = Launcher(config, store, **kw)
        made.append(launcher)
        return launcher

    yield make
    for launcher in made:
        launcher.stop()
        launcher.store.close()


class SlowCreates(FakeCloud):
    """Creates take 0.6 s (a cloud's API call in flight when its launcher stops)."""

    def create(self, name: str, metadata: Any, need: Any) -> Any:
        self.calls["sent"] = self.calls.get("sent", 0) + 1
        time.sleep(0.6)
        return super().create(name, metadata, need)


def test_stopping_launcher_hands_over_a_sent_create_without_a_second_one(
    zookeeper_server: ZooKeeper, world: FakeWorld
) -> None:
    """A launcher stopping (SIGTERM, rolling upgrade) waits for the creates it sent and
    records their servers before its locks go: the next launcher adopts them."""
    chroot = unique_chroot()
    cloud = world.clouds["f1"] = SlowCreates()
    cfg = pool_config([fake_provider("f1")], [{"name": "small"}])
    first = Launcher(
        cfg, ZooKeeperStore(zookeeper_server.hosts, chroot), adapter_factory=world.factory
    )
    first.start()
    second = None
    try:
        req = first.submit(["small"])
        wait_for(lambda: cloud.calls.get("sent", 0) == 1, 10, "the create sent")
        assert not cloud.servers  # still in flight
        first.stop()
        first.store.close()  # its locks go now
        second = Launcher(
            cfg, ZooKeeperStore(zookeeper_server.hosts, chroot), adapter_factory=world.factory
        )
        done = second.run_until(
            lambda: (r := second.store.get_request(req.id)).done and r, 10, "fulfilled"
        )
        assert done.state == "fulfilled"
        assert cloud.calls["sent"] == 1 and len(cloud.servers) == 1
        assert second.store.get_node(done.nodes[0]).external_id in cloud.servers
    finally:
        first.stop()
        first.store.close()
        if second is not None:
            second.stop()
            second.store.close()
