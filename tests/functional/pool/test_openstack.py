"""The openstack provider, driven through the real openstacksdk against a rackpool region."""

from __future__ import annotations

from pathlib import Path

from tests.support.region import running_region

from rackpool.pool.launcher import Launcher
from rackpool.pool.store import SqliteStore

from .conftest import openstack_provider, pool_config


def test_min_ready_request_release_against_a_region(tmp_path: Path) -> None:
    with running_region(tmp_path, "r1") as region:
        cfg = pool_config([openstack_provider("r1", region.clouds_yaml, "r1")], min_ready=1)
        la = Launcher(cfg, SqliteStore(tmp_path / "pool.sqlite"))
        la.start()
        try:
            conn = region.connect()
            ready = la.run_until(
                lambda: [n for n in la.store.list_nodes() if n.state == "ready"], 30, "min-ready"
            )
            node = ready[0]
            assert node.interface_ip.startswith("198.1")
            server = conn.compute.get_server(node.external_id)
            assert server.metadata["rackpool_node_id"] == node.id
            assert server.metadata["rackpool_pool"] == "rackpool"
            req = la.submit(["default"], requestor="ci")
            done = la.run_until(
                lambda: (r := la.store.get_request(req.id)).done and r, 30, "fulfilled"
            )
            assert done.state == "fulfilled" and done.nodes == (node.id,)
            la.release(node.id)
            la.run_until(
                lambda: node.external_id not in {s.id for s in conn.compute.servers()},
                30,
                "server deleted",
            )
            la.run_until(
                lambda: [n for n in la.store.list_nodes() if n.state == "ready"], 30, "refilled"
            )
        finally:
            la.stop()
