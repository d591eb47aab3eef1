"""A project sees and touches only its own things; admin-only endpoints refuse members."""

from __future__ import annotations

import pytest
from tests.functional.cloud.conftest import Raw, token_for
from tests.support.region import RegionHandle


@pytest.fixture(scope="module")
def other(region: RegionHandle) -> Raw:
    region.region.ensure_project("other", "otheruser", "other-password", "member")
    return Raw(region.url, token_for(region.url, "otheruser", "other-password", "other"))


def test_other_project_cannot_see_or_touch_servers(raw: Raw, other: Raw, conn) -> None:
    server = conn.create_server("mine", image="host", flavor="m1.tiny", wait=True, timeout=30)
    try:
        assert server.id not in {
            s["id"] for s in other.get("/compute/v2.1/servers").json()["servers"]
        }
        assert other.get(f"/compute/v2.1/servers/{server.id}").status_code == 404
        assert other.delete(f"/compute/v2.1/servers/{server.id}").status_code == 404
        action = {"os-getConsoleOutput": {}}
        assert (
            other.post(f"/compute/v2.1/servers/{server.id}/action", json=action).status_code == 404
        )
        assert raw.get(f"/compute/v2.1/servers/{server.id}").status_code == 200
        # all_tenants is ignored for members
        listed = other.get("/compute/v2.1/servers/detail", params={"all_tenants": "1"}).json()
        assert server.id not in {s["id"] for s in listed["servers"]}
    finally:
        conn.delete_server(server.id, wait=True, timeout=30)


def test_keypairs_and_private_images_are_per_project(raw: Raw, other: Raw) -> None:
    pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBtQ4S3sWvzWvQ7fCq0Qm1G1b0n0lJ2dWw0x9m7f8Jx7 t"
    assert (
        raw.post(
            "/compute/v2.1/os-keypairs", json={"keypair": {"name": "k1", "public_key": pub}}
        ).status_code
        == 200
    )
    try:
        assert other.get("/compute/v2.1/os-keypairs/k1").status_code == 404
        assert "k1" not in {
            k["keypair"]["name"] for k in other.get("/compute/v2.1/os-keypairs").json()["keypairs"]
        }
        body = {"name": "boot-k1", "imageRef": "host", "flavorRef": "1", "key_name": "k1"}
        r = other.post("/compute/v2.1/servers", json={"server": body})
        assert r.status_code == 400 and "key_name" in r.json()["badRequest"]["message"]
    finally:
        raw.delete("/compute/v2.1/os-keypairs/k1")
    img = raw.post(
        "/image/v2/images",
        json={"name": "private-img", "disk_format": "raw", "container_format": "bare"},
    ).json()
    try:
        assert other.get(f"/image/v2/images/{img['id']}").status_code == 404
        assert other.delete(f"/image/v2/images/{img['id']}").status_code == 404
        assert img["id"] not in {i["id"] for i in other.get("/image/v2/images").json()["images"]}
        # public images are for everyone
        assert other.get("/image/v2/images/host").status_code == 200
    finally:
        raw.delete(f"/image/v2/images/{img['id']}")


ADMIN_ONLY = [
    ("GET", "/compute/v2.1/os-hypervisors", None),
    ("GET", "/compute/v2.1/os-hypervisors/detail", None),
    ("POST", "/compute/v2.1/flavors", {"flavor": {"name": "x", "vcpus": 1, "ram": 64, "disk": 0}}),
    ("DELETE", "/compute/v2.1/flavors/1", None),
    ("PUT", "/compute/v2.1/os-quota-sets/PROJECT", {"quota_set": {"cores": 1000}}),
    ("GET", "/admin/v1/hosts", None),
    ("POST", "/admin/v1/hosts/r1-fake1/disable", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY)
def test_admin_only_endpoints(raw: Raw, raw_admin: Raw, conn, method, path, body) -> None:
    path = path.replace("PROJECT", conn.current_project_id)
    r = raw.request(method, path, json=body)
    assert r.status_code == 403, r.text
    assert r.json()["forbidden"]["code"] == 403
    if method == "GET":
        assert raw_admin.request(method, path).status_code == 200


def test_admin_sees_hypervisors_and_all_tenants(admin, conn) -> None:
    hyps = {h.name: h for h in admin.list_hypervisors()}
    assert {"r1-fake1", "r1-fake2"} <= set(hyps)
    server = conn.create_server(
        "seen-by-admin", image="host", flavor="m1.tiny", wait=True, timeout=30
    )
    try:
        names = {s.name for s in admin.list_servers(all_projects=True)}
        assert "seen-by-admin" in names
        assert "seen-by-admin" not in {s.name for s in admin.list_servers()}
    finally:
        conn.delete_server(server.id, wait=True, timeout=30)
