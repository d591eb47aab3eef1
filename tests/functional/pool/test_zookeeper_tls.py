"""The pool's ZooKeeper store over TLS, against a real ZooKeeper TLS listener
(secureClientPort, Netty, client certificates required), as Zuul deployments run it.

The test makes its own CA with openssl, the server's PKCS12 keystore and truststore
with openssl and keytool, and a client certificate for the pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.zookeeper import Tls, ZooKeeper, make_tls, start_server, unique_chroot

from rackpool.pool.config import PoolConfig
from rackpool.pool.store import open_store
from rackpool.pool.store.zookeeper import StoreUnavailable, ZooKeeperStore

from .daemon import PoolProcess


@pytest.fixture(scope="module")
def tls_zk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ZooKeeper, Tls]]:
    d = tmp_path_factory.mktemp("zktls")
    tls = make_tls(d / "tls")
    zk = start_server(d / "server", tls=tls)
    try:
        yield zk, tls
    finally:
        zk.stop()


def tls_store(zk: ZooKeeper, tls: Tls, **over: object) -> dict:
    conf = {
        "hosts": zk.secure_hosts,
        "chroot": unique_chroot(),
        "tls": {"ca": str(tls.ca), "cert": str(tls.client_cert), "key": str(tls.client_key)},
        "connect-timeout": 5,
    }
    conf.update(over)
    return {"zookeeper": conf}


def test_pool_serves_over_zookeeper_tls(tmp_path: Path, tls_zk: tuple[ZooKeeper, Tls]) -> None:
    zk, tls = tls_zk
    pool_cfg = {
        "state-dir": str(tmp_path / "state"),
        "store": tls_store(zk, tls),
        "api": {"port": 0, "token": "tls-test-token"},
        "timing": {"tick-interval": 0.05},
        "labels": [{"name": "small", "min-ready": 1}],
        "providers": [{"name": "f1", "driver": "fake", "pools": [{"labels": [{"name": "small"}]}]}],
    }
    pool = PoolProcess(tmp_path / "pool", pool_cfg).start()
    try:
        client = pool.client()
        done = client.wait(client.request(["small"], requestor="tls")["id"], 30)
        assert done["state"] == "fulfilled", done
        # the records are in ZooKeeper, read here over TLS with the same config
        store = open_store(PoolConfig.model_validate({**pool_cfg, "state-dir": None}))
        try:
            assert isinstance(store, ZooKeeperStore)
            node = store.get_node(done["nodes"][0]["id"])
            assert node.state == "in-use" and node.allocated_to == done["id"]
            assert len(store.launchers()) == 1
        finally:
            store.close()
    finally:
        pool.stop()


def test_zookeeper_tls_refuses_a_client_without_certificate(
    tls_zk: tuple[ZooKeeper, Tls],
) -> None:
    zk, tls = tls_zk
    with pytest.raises(StoreUnavailable, match=r"store.zookeeper.hosts.*\(TLS\)"):
        ZooKeeperStore(zk.secure_hosts, unique_chroot(), ca=str(tls.ca), connect_timeout=2)
    # and a plain (non-TLS) client gets nothing from the TLS port
    with pytest.raises(StoreUnavailable):
        ZooKeeperStore(zk.secure_hosts, unique_chroot(), connect_timeout=2)
