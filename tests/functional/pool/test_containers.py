"""The pool over a rackpool region whose hosts run the real ``container`` driver (root).

Nodes are only handed out once their SSH host keys were scanned; a CI job trusts
exactly those keys (StrictHostKeyChecking=yes, a known_hosts file written from the
node record) and logs in with the region's keypair.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.container_region import (
    KEY_NAME,
    ContainerRack,
    container_region,
    container_unavailable,
)

from rackpool.core.clock import wait_for
from rackpool.pool.launcher import Launcher
from rackpool.pool.model import Node
from rackpool.pool.store import SqliteStore

from .conftest import openstack_provider, pool_config

pytestmark = pytest.mark.root

CIDR = "198.19.224.0/24"  # instance addresses of this module's region (198.18.0.0/15)
NETWORK = ipaddress.ip_network(CIDR)


@pytest.fixture(scope="module")
def rack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerRack]:
    why = container_unavailable()
    if why is not None:
        pytest.skip(why)
    with container_region(tmp_path_factory.mktemp("rack"), CIDR, hosts=1) as rack:
        yield rack


def container_provider(rack: ContainerRack, **kw: Any) -> dict[str, Any]:
    label = {
        "name": "default", "cloud-image": "host", "flavor-name": "m1.tiny",
        "key-name": KEY_NAME, "username": "root",
    }  # fmt: skip
    return openstack_provider(
        rack.name, rack.clouds_yaml, rack.name,
        **{"host-key-checking": True, "boot-timeout": 60, "pools": [{"labels": [label]}], **kw},
    )  # fmt: skip


def ready(la: Launcher) -> list[Node]:
    return [n for n in la.store.list_nodes() if n.state == "ready"]


def hostname(rack: ContainerRack, node: Node, tmp: Path) -> str:
    """Log in as a CI job would: trusting exactly the host keys in the node record."""
    assert node.host_keys, f"node {node.id} handed out without host keys"
    out = rack.login(node.interface_ip, node.host_keys, "hostname", tmp)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_ready_nodes_reachable_with_recorded_host_keys_then_released_and_refilled(
    rack: ContainerRack, tmp_path: Path
) -> None:
    la = Launcher(pool_config([container_provider(rack)], min_ready=2), SqliteStore(tmp_path / "p"))
    la.start()
    try:
        first = wait_for(lambda: len(r := ready(la)) == 2 and r, 60, "two min-ready nodes")
        assert isinstance(first, list)
        for node in first:
            assert ipaddress.ip_address(node.interface_ip) in NETWORK and node.username == "root"
            assert hostname(rack, node, tmp_path) == node.hostname
        # The recorded keys are what is checked: another node's keys are refused.
        a, b = first
        wrong = rack.login(a.interface_ip, b.host_keys, "hostname", tmp_path)
        assert wrong.returncode != 0 and "verification failed" in wrong.stderr

        req = la.submit(["default"], requestor="ci")
        done = wait_for(lambda: (r := la.store.get_request(req.id)).done and r, 30, "fulfilled")
        assert done.state == "fulfilled"
        used = la.store.get_node(done.nodes[0])
        assert used.id in {n.id for n in first} and used.state == "in-use"  # the warm path
        assert hostname(rack, used, tmp_path) == used.hostname

        la.release(used.id)
        wait_for(
            lambda: used.external_id not in {s.id for s in rack.servers()}, 60, "server deleted"
        )
        wait_for(lambda: used.id not in {n.id for n in la.store.list_nodes()}, 30, "node gone")
        refilled = wait_for(lambda: len(r := ready(la)) == 2 and r, 60, "min-ready refilled")
        assert isinstance(refilled, list)
        fresh = next(n for n in refilled if n.id not in {x.id for x in first})
        assert hostname(rack, fresh, tmp_path) == fresh.hostname
        assert not set(fresh.host_keys) & set(used.host_keys)  # a new machine, new keys
        assert {s.id for s in rack.servers()} == {n.external_id for n in refilled}
    finally:
        la.stop()
        for s in rack.servers():  # leave the module's region empty for the next test
            rack.admin.compute.delete_server(s)
        wait_for(lambda: not rack.servers(), 60, "servers deleted")
