"""Server lifecycle, flavors, images, keypairs, limits through the real openstacksdk."""

from __future__ import annotations

import base64

import openstack.exceptions
import pytest

from rackpool.core.clock import wait_for


def test_create_wait_active_with_public_address(conn) -> None:
    server = conn.create_server(
        "sdk-basic", image="host", flavor="m1.tiny", wait=True, timeout=30,
        meta={"rackpool_node_id": "0001"}, userdata="#!/bin/sh\necho hi\n", config_drive=True,
    )  # fmt: skip
    try:
        assert server.status == "ACTIVE"
        assert server.public_v4.startswith("198.18.")
        assert server.interface_ip == server.public_v4
        assert server.metadata["rackpool_node_id"] == "0001"
        assert server.location.region_name == "r1"
        assert any(s.id == server.id for s in conn.list_servers())
        got = conn.get_server(server.id)
        assert got.name == "sdk-basic" and got.flavor.id == "1"
        assert conn.get_server_console(server.id)
    finally:
        assert conn.delete_server(server.id, wait=True, timeout=30)
    assert conn.get_server(server.id) is None
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.compute.get_server(server.id)


@pytest.mark.parametrize("networks", ["auto", None])
def test_networks_auto_and_absent(conn, networks) -> None:
    kwargs = {"networks": networks} if networks else {}
    server = conn.compute.create_server(
        name=f"net-{networks}", image_id="host", flavor_id="1", **kwargs
    )
    try:
        server = conn.compute.wait_for_server(server, wait=30)
        assert server.status == "ACTIVE"
        assert server.access_ipv4.startswith("198.18.")
    finally:
        conn.delete_server(server.id, wait=True, timeout=30)


def test_addresses_are_unique_and_freed(conn) -> None:
    servers = [conn.create_server(f"addr-{i}", image="host", flavor="m1.tiny") for i in range(3)]
    done = [conn.wait_for_server(s, auto_ip=False, timeout=30) for s in servers]
    addrs = {s.public_v4 for s in done}
    assert len(addrs) == 3
    for s in done:
        conn.delete_server(s.id, wait=True, timeout=30)


def test_list_paginates_and_filters_by_name(conn) -> None:
    # the module's region has page_limit=3: five servers need two pages
    ids = [conn.create_server(f"page-{i}", image="host", flavor="m1.tiny").id for i in range(5)]
    try:
        names = {s.name for s in conn.compute.servers(details=True)}
        assert {f"page-{i}" for i in range(5)} <= names
        only = list(conn.compute.servers(details=True, name="page-3"))
        assert [s.name for s in only] == ["page-3"]
    finally:
        for sid in ids:
            conn.delete_server(sid, wait=True, timeout=30)


def test_flavors(conn) -> None:
    flavors = {f.name: f for f in conn.list_flavors()}
    assert flavors["m1.small"].vcpus == 1 and flavors["m1.small"].ram == 512
    assert conn.get_flavor("m1.medium").vcpus == 2


def test_image_upload_list_delete(conn, tmp_path) -> None:
    data = tmp_path / "rootfs.tar"
    data.write_bytes(b"x" * 4096)
    image = conn.create_image(
        "tiny-rootfs", filename=str(data), disk_format="raw", container_format="tar", wait=True
    )
    try:
        assert image.status == "active"
        assert image.size == 4096
        assert image.checksum == __import__("hashlib").md5(b"x" * 4096).hexdigest()
        assert "tiny-rootfs" in {i.name for i in conn.list_images()}
    finally:
        conn.delete_image(image.id, wait=True)
    assert conn.get_image(image.id) is None


def test_keypairs(conn) -> None:
    kp = conn.create_keypair("gen-key")
    try:
        assert kp.private_key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
        assert kp.public_key.startswith("ssh-ed25519 ")
        assert "gen-key" in {k.name for k in conn.list_keypairs()}
        uploaded = conn.create_keypair("up-key", public_key=kp.public_key)
        assert uploaded.fingerprint == kp.fingerprint
        server = conn.create_server(
            "with-key", image="host", flavor="m1.tiny", key_name="up-key", wait=True, timeout=30
        )
        assert server.key_name == "up-key"
        conn.delete_server(server.id, wait=True, timeout=30)
    finally:
        conn.delete_keypair("gen-key")
        conn.delete_keypair("up-key")
    assert conn.get_keypair("gen-key") is None


def test_limits_report_usage(conn) -> None:
    before = conn.get_compute_limits()
    server = conn.create_server("lim", image="host", flavor="m1.small", wait=True, timeout=30)
    try:
        after = conn.get_compute_limits()
        assert after.total_cores_used == before.total_cores_used + 1
        assert after.total_ram_used == before.total_ram_used + 512
        assert after.total_instances_used == before.total_instances_used + 1
    finally:
        conn.delete_server(server.id, wait=True, timeout=30)


def test_faulted_build_goes_error_with_message(conn) -> None:
    server = conn.create_server(
        "doomed", image="host", flavor="m1.tiny", meta={"rackpool_fake_fault": "disk on fire"}
    )
    got = wait_for(
        lambda: (s := conn.get_server(server.id)) and s.status == "ERROR" and s, 30, "ERROR"
    )
    assert got.fault["message"] == "disk on fire"
    with pytest.raises(openstack.exceptions.SDKException, match="reports fault: again"):
        conn.create_server("doomed2", image="host", flavor="m1.tiny", wait=True, timeout=30,
                           meta={"rackpool_fake_fault": "again"})  # fmt: skip
    for name in ("doomed", "doomed2"):
        conn.delete_server(name, wait=True, timeout=30)


def test_quota_exceeded_is_403(conn, admin) -> None:
    project = conn.current_project_id
    admin.set_compute_quotas(project, cores=2)
    try:
        with pytest.raises(openstack.exceptions.HttpException) as err:
            conn.create_server("big", image="host", flavor="m1.large")
        assert err.value.status_code == 403
        assert "Quota exceeded" in str(err.value)
        assert conn.get_server("big") is None
    finally:
        admin.set_compute_quotas(project, cores=-1)


def test_nodepool_fields_without_microversion(raw, conn) -> None:
    server = conn.create_server(
        "np", image="host", flavor="m1.tiny", wait=True, timeout=30,
        meta={"nodepool_node_id": "7"}, availability_zone="nova",
    )  # fmt: skip
    try:
        r = raw.get("/compute/v2.1/servers/detail")
        assert r.status_code == 200
        s = (
            next(x for x in r.json()["servers"] if x["id"] == server.id)
            if "servers_links" not in r.json()
            else None
        )
        if s is None:
            s = raw.get(f"/compute/v2.1/servers/{server.id}").json()["server"]
        for key in ("hostId", "metadata", "addresses", "OS-EXT-AZ:availability_zone", "flavor",
                    "os-extended-volumes:volumes_attached", "accessIPv4"):  # fmt: skip
            assert key in s, key
        assert s["flavor"]["id"] == "1"
        assert s["addresses"]["public"][0]["addr"] == s["accessIPv4"]
        assert s["OS-EXT-AZ:availability_zone"] == "nova"
        assert s["metadata"] == {"nodepool_node_id": "7"}
    finally:
        conn.delete_server(server.id, wait=True, timeout=30)


def test_user_data_and_config_drive_accepted(raw) -> None:
    body = {"server": {"name": "ud", "imageRef": "host", "flavorRef": "1",
                       "user_data": base64.b64encode(b"#!/bin/sh\ntrue\n").decode(),
                       "config_drive": True, "security_groups": [{"name": "default"}],
                       "networks": "auto", "min_count": 2, "max_count": 2}}  # fmt: skip
    r = raw.post("/compute/v2.1/servers", json=body)
    assert r.status_code == 202, r.text
    listed = raw.get("/compute/v2.1/servers/detail", params={"name": "^ud-"}).json()["servers"]
    assert sorted(s["name"] for s in listed) == ["ud-1", "ud-2"]
    for s in listed:
        assert raw.delete(f"/compute/v2.1/servers/{s['id']}").status_code == 204


def test_console_output_action(raw, conn) -> None:
    server = conn.create_server("cons", image="host", flavor="m1.tiny", wait=True, timeout=30)
    try:
        r = raw.post(
            f"/compute/v2.1/servers/{server.id}/action", json={"os-getConsoleOutput": {"length": 5}}
        )
        assert r.status_code == 200 and "cons login" in r.json()["output"]
    finally:
        conn.delete_server(server.id, wait=True, timeout=30)


def test_availability_zones(conn) -> None:
    zones = conn.list_availability_zone_names()
    assert "nova" in zones
