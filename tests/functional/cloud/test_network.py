"""The Network v2.0 endpoint through the real openstacksdk: the region's ``public``
network and subnet, one port per server, no floating IPs, project-scoped ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack.exceptions as os_exc
import pytest
from tests.functional.cloud.conftest import Raw
from tests.support.region import RegionHandle, connect, write_clouds_yaml

OTHER_PASSWORD = "other-net-password"


@pytest.fixture(scope="module")
def other(region: RegionHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An openstacksdk Connection as a member of a second project."""
    region.region.ensure_project("netother", "netother", OTHER_PASSWORD, "member")
    entry = {
        "auth": {
            "auth_url": f"{region.url}/identity", "username": "netother",
            "password": OTHER_PASSWORD, "project_name": "netother",
            "user_domain_name": "Default", "project_domain_name": "Default",
        },
        "region_name": region.name, "identity_api_version": 3,
    }  # fmt: skip
    path = write_clouds_yaml(Path(tmp_path_factory.mktemp("other")) / "clouds.yaml", {"o": entry})
    conn = connect(path, "o")
    yield conn
    conn.close()


@pytest.fixture
def server(conn: Any) -> Iterator[Any]:
    srv = conn.compute.create_server(name="net-node", image_id="host", flavor_id="1")
    srv = conn.compute.wait_for_server(srv, wait=30)
    yield srv
    conn.compute.delete_server(srv.id, ignore_missing=True)
    conn.compute.wait_for_delete(srv, wait=30)


def test_public_network_and_subnet_are_the_region_range(conn: Any, region: RegionHandle) -> None:
    (net,) = list(conn.network.networks())
    assert net.name == "public" and net.is_shared and net.status == "ACTIVE"
    assert conn.network.find_network("public").id == net.id
    (subnet,) = list(conn.network.subnets(network_id=net.id))
    assert subnet.id in net.subnet_ids
    assert subnet.cidr == region.config.network.cidr
    assert subnet.gateway_ip == region.config.network.gateway
    assert subnet.ip_version == 4


def test_a_server_has_one_port_with_its_address(conn: Any, server: Any) -> None:
    (port,) = list(conn.network.ports(device_id=server.id))
    (addr,) = server.addresses["public"]
    assert port.fixed_ips[0]["ip_address"] == addr["addr"] == server.access_ipv4
    assert port.mac_address == addr["OS-EXT-IPS-MAC:mac_addr"]
    assert port.device_owner == f"compute:{server.availability_zone}"
    assert port.status == "ACTIVE"
    assert port.network_id == conn.network.find_network("public").id
    assert conn.network.get_port(port.id).device_id == server.id
    by_net = {p.id for p in conn.network.ports(network_id=port.network_id)}
    assert port.id in by_net
    with pytest.raises(os_exc.ConflictException, match="delete the server"):
        conn.network.delete_port(port.id)
    assert conn.network.get_port(port.id).status == "ACTIVE"


def test_the_port_goes_with_its_server(conn: Any) -> None:
    srv = conn.compute.create_server(name="short-lived", image_id="host", flavor_id="1")
    srv = conn.compute.wait_for_server(srv, wait=30)
    (port,) = list(conn.network.ports(device_id=srv.id))
    conn.compute.delete_server(srv.id)
    conn.compute.wait_for_delete(srv, wait=30)
    assert list(conn.network.ports(device_id=srv.id)) == []
    with pytest.raises(os_exc.NotFoundException):
        conn.network.get_port(port.id)
    with pytest.raises(os_exc.NotFoundException):
        conn.network.delete_port(port.id, ignore_missing=False)


def test_ports_page_with_limit_and_marker(conn: Any, raw: Raw) -> None:
    srv = conn.compute.create_server(
        name="paged", image_id="host", flavor_id="1", min_count=3, max_count=3
    )
    mine = [s for s in conn.compute.servers() if s.name.startswith("paged")]
    try:
        assert len(mine) == 3
        net = conn.network.find_network("public")
        # openstacksdk follows ports_links page by page; the filter stays on every page
        paged = list(conn.network.ports(limit=1, network_id=net.id))
        ids = {s.id for s in mine}
        assert {p.device_id for p in paged} >= ids and len(paged) == len({p.id for p in paged})
        first = raw.get("/network/v2.0/ports", params={"limit": 1, "network_id": net.id}).json()
        assert len(first["ports"]) == 1
        assert f"network_id={net.id}" in first["ports_links"][0]["href"]
    finally:
        for s in mine:
            conn.compute.delete_server(s.id)
        for s in mine:
            conn.compute.wait_for_delete(s, wait=30)
    assert srv.id in ids


def test_ports_are_project_scoped(conn: Any, admin: Any, other: Any, server: Any) -> None:
    (port,) = list(conn.network.ports(device_id=server.id))
    assert list(other.network.ports()) == []
    assert list(other.network.ports(device_id=server.id)) == []
    with pytest.raises(os_exc.NotFoundException):
        other.network.get_port(port.id)
    with pytest.raises(os_exc.NotFoundException):
        other.network.delete_port(port.id, ignore_missing=False)
    # the shared network is everyone's
    assert [n.name for n in other.network.networks()] == ["public"]
    # admin sees every project's ports, with the host they are bound to
    seen = admin.network.get_port(port.id)
    assert seen.project_id == server.project_id and seen.binding_host_id
    assert port.id in {p.id for p in admin.network.ports()}


def test_no_floating_ips_and_cloud_layer_addresses(conn: Any, server: Any) -> None:
    assert list(conn.network.ips()) == []
    assert conn.list_floating_ips() == []
    # openstacksdk's cloud layer (what nodepool reads) still finds the address
    got = conn.get_server(server.id)
    assert got["public_v4"] == server.access_ipv4
    assert got["interface_ip"] == server.access_ipv4


def test_server_create_names_the_network(conn: Any) -> None:
    net = conn.network.find_network("public")
    srv = conn.compute.create_server(
        name="on-public", image_id="host", flavor_id="1", networks=[{"uuid": net.id}]
    )
    try:
        srv = conn.compute.wait_for_server(srv, wait=30)
        assert srv.addresses["public"]
    finally:
        conn.compute.delete_server(srv.id)
        conn.compute.wait_for_delete(srv, wait=30)
    with pytest.raises(os_exc.BadRequestException, match="Network .* could not be found"):
        conn.compute.create_server(
            name="nowhere", image_id="host", flavor_id="1",
            networks=[{"uuid": "2f8f3d1c-1d43-4b6f-9a44-6d3b0c4f5e11"}],
        )  # fmt: skip


def test_network_quota_follows_the_instances_quota(conn: Any, raw_admin: Raw, server: Any) -> None:
    pid = server.project_id
    r = raw_admin.put(f"/compute/v2.1/os-quota-sets/{pid}", json={"quota_set": {"instances": 7}})
    assert r.status_code == 200, r.text
    try:
        quota = conn.network.get_quota(pid, details=True)
        assert quota.ports == {"limit": 7, "used": 1, "reserved": 0}
        assert conn.network.get_quota(pid).networks == 0
        volume = conn.block_storage.get_quota_set(pid)
        assert (volume.volumes, volume.gigabytes) == (-1, -1)  # no volumes: nothing enforced
        compute = conn.compute.get_quota_set(pid, usage=True)
        assert compute.instances == 7 and compute.usage["instances"] == 1
    finally:
        raw_admin.put(f"/compute/v2.1/os-quota-sets/{pid}", json={"quota_set": {"instances": -1}})


@pytest.mark.parametrize(
    ("method", "path", "code", "kind"),
    [
        ("GET", "/network/v2.0/ports?colour=blue", 400, "HTTPBadRequest"),
        ("GET", "/network/v2.0/ports?limit=x", 400, "HTTPBadRequest"),
        ("GET", "/network/v2.0/ports?fixed_ips=mac=1", 400, "HTTPBadRequest"),
        ("GET", "/network/v2.0/ports/not-a-uuid", 404, "PortNotFound"),
        ("DELETE", "/network/v2.0/ports/5d6f2a55-7e0c-4b8e-9f3a-0c1d2e3f4a5b", 404, "PortNotFound"),
        ("GET", "/network/v2.0/networks/nope", 404, "NetworkNotFound"),
        ("POST", "/network/v2.0/ports", 400, "HTTPBadRequest"),
        ("POST", "/network/v2.0/floatingips", 400, "HTTPBadRequest"),
        ("GET", "/network/v2.0/routers", 404, "HTTPNotFound"),
    ],
)
def test_bad_requests_get_neutron_faults(
    raw: Raw, method: str, path: str, code: int, kind: str
) -> None:
    r = raw.request(method, path, json={} if method == "POST" else None)
    assert r.status_code == code, r.text
    fault = r.json()["NeutronError"]
    assert fault["type"] == kind and fault["message"]


def test_network_endpoint_needs_a_token(region: RegionHandle) -> None:
    import httpx

    r = httpx.get(f"{region.url}/network/v2.0/ports", timeout=10)
    assert r.status_code == 401 and r.json()["NeutronError"]["message"]
