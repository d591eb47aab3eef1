"""Keystone's scope model: cloud-wide power comes only from the admin role on the cloud's
admin project; an admin of any other project (``p2`` here) acts only inside it. Token
validation is for the token's own user or a cloud admin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openstack.exceptions
import pytest
from tests.functional.cloud.conftest import Raw, token_for
from tests.support.region import (
    CI_PASSWORD,
    RegionHandle,
    clouds_entries,
    connect,
    write_clouds_yaml,
)

P2_PASSWORD = "p2-admin-password"


@pytest.fixture(scope="module")
def p2(region: RegionHandle) -> Raw:
    """A user holding the admin role on project p2 only."""
    region.region.ensure_project("p2", "p2admin", P2_PASSWORD, "admin")
    return Raw(region.url, token_for(region.url, "p2admin", P2_PASSWORD, "p2"))


@pytest.fixture(scope="module")
def p2_sdk(region: RegionHandle, p2: Raw, tmp_path_factory: pytest.TempPathFactory) -> Any:
    entry = clouds_entries(region.name, region.url)[f"rackpool-{region.name}"]
    entry["auth"] |= {"username": "p2admin", "password": P2_PASSWORD, "project_name": "p2"}
    path = write_clouds_yaml(tmp_path_factory.mktemp("p2") / "clouds.yaml", {"p2": entry})
    return connect(path, "p2")


@pytest.fixture(scope="module")
def victim(conn: Any) -> Iterator[Any]:
    """A server of the ci project."""
    server = conn.create_server("ci-victim", image="host", flavor="m1.tiny", wait=True, timeout=30)
    yield server
    conn.delete_server(server.id, wait=True, timeout=30)


def test_project_admin_token_says_admin_role_but_sees_only_its_project(p2: Raw) -> None:
    projects = p2.get("/identity/v3/projects").json()["projects"]
    assert [p["name"] for p in projects] == ["p2"]


def test_project_admin_cannot_see_or_delete_another_projects_servers(
    p2: Raw, p2_sdk: Any, raw_admin: Raw, victim: Any, conn: Any
) -> None:
    listed = p2.get("/compute/v2.1/servers/detail", params={"all_tenants": "1"}).json()
    assert victim.id not in {s["id"] for s in listed["servers"]}
    assert victim.id not in {s.id for s in p2_sdk.list_servers(all_projects=True)}
    assert p2.get(f"/compute/v2.1/servers/{victim.id}").status_code == 404
    assert p2.delete(f"/compute/v2.1/servers/{victim.id}").status_code == 404
    with pytest.raises(openstack.exceptions.NotFoundException):
        p2_sdk.compute.delete_server(victim.id, ignore_missing=False)
    ports = p2.get("/network/v2.0/ports", params={"device_id": victim.id}).json()["ports"]
    assert ports == []
    assert conn.get_server(victim.id).status == "ACTIVE"
    # the cloud admin still sees it
    listed = raw_admin.get("/compute/v2.1/servers/detail", params={"all_tenants": "1"}).json()
    assert victim.id in {s["id"] for s in listed["servers"]}
    assert raw_admin.get(f"/compute/v2.1/servers/{victim.id}").status_code == 200


CLOUD_WIDE = [
    ("GET", "/compute/v2.1/os-hypervisors", None),
    ("GET", "/compute/v2.1/os-hypervisors/detail", None),
    ("GET", "/compute/v2.1/os-services", None),
    ("PUT", "/compute/v2.1/os-services/disable", {"host": "r1-fake1", "binary": "nova-compute"}),
    (
        "POST",
        "/compute/v2.1/flavors",
        {"flavor": {"name": "p2f", "vcpus": 1, "ram": 64, "disk": 0}},
    ),
    ("DELETE", "/compute/v2.1/flavors/1", None),
    ("GET", "/compute/v2.1/os-quota-sets/CI", None),
    ("PUT", "/compute/v2.1/os-quota-sets/CI", {"quota_set": {"cores": 1}}),
    ("PUT", "/compute/v2.1/os-quota-sets/OWN", {"quota_set": {"cores": 100000}}),
    ("GET", "/compute/v2.1/limits?tenant_id=CI", None),
    ("GET", "/network/v2.0/quotas/CI", None),
    ("GET", "/network/v2.0/quotas", None),
    ("GET", "/admin/v1/hosts", None),
    ("POST", "/admin/v1/hosts/r1-fake1/disable", None),
]


@pytest.mark.parametrize(("method", "path", "body"), CLOUD_WIDE)
def test_project_admin_gets_403_on_cloud_wide_operations(
    region: RegionHandle, p2: Raw, raw_admin: Raw, conn: Any, method: str, path: str, body: Any
) -> None:
    ci = conn.current_project_id
    own = region.region.identity.project_id("p2")
    path = path.replace("CI", ci).replace("OWN", own)
    r = p2.request(method, path, json=body)
    assert r.status_code == 403, r.text
    if method == "GET":
        assert raw_admin.request(method, path).status_code == 200


def test_project_admin_cannot_make_a_public_image(p2: Raw, raw_admin: Raw) -> None:
    body = {"name": "p2-public", "disk_format": "raw", "container_format": "bare"}
    r = p2.post("/image/v2/images", json=body | {"visibility": "public"})
    assert r.status_code == 403, r.text
    r = raw_admin.post("/image/v2/images", json=body | {"visibility": "public"})
    assert r.status_code == 201, r.text
    raw_admin.delete(f"/image/v2/images/{r.json()['id']}")


def test_project_admin_cannot_see_another_projects_private_image(p2: Raw, raw: Raw) -> None:
    img = raw.post(
        "/image/v2/images", json={"name": "ci-private", "disk_format": "raw",
                                  "container_format": "bare"},
    ).json()  # fmt: skip
    try:
        assert p2.get(f"/image/v2/images/{img['id']}").status_code == 404
        assert p2.delete(f"/image/v2/images/{img['id']}").status_code == 404
        assert img["id"] not in {i["id"] for i in p2.get("/image/v2/images").json()["images"]}
    finally:
        raw.delete(f"/image/v2/images/{img['id']}")


def test_cloud_admin_quota_set_still_works(raw_admin: Raw, conn: Any) -> None:
    ci = conn.current_project_id
    before = raw_admin.get(f"/compute/v2.1/os-quota-sets/{ci}").json()["quota_set"]["cores"]
    r = raw_admin.put(f"/compute/v2.1/os-quota-sets/{ci}", json={"quota_set": {"cores": 77}})
    assert r.status_code == 200 and r.json()["quota_set"]["cores"] == 77
    raw_admin.put(f"/compute/v2.1/os-quota-sets/{ci}", json={"quota_set": {"cores": before}})


# -- token validation (Keystone's identity:validate_token) ---------------------------------
def _check(url: str, caller: str, subject: str, method: str = "GET") -> httpx.Response:
    hdrs = {"X-Auth-Token": caller, "X-Subject-Token": subject}
    return httpx.request(method, f"{url}/identity/v3/auth/tokens", headers=hdrs)


def test_only_the_owner_or_a_cloud_admin_validates_a_token(
    region: RegionHandle, p2: Raw, raw_admin: Raw
) -> None:
    ci_token = token_for(region.url, "ci", CI_PASSWORD, "ci")
    p2_token = str(p2.headers["X-Auth-Token"])
    admin_token = str(raw_admin.headers["X-Auth-Token"])
    for method in ("GET", "HEAD"):
        assert _check(region.url, p2_token, ci_token, method).status_code == 403
        assert _check(region.url, ci_token, admin_token, method).status_code == 403
        assert _check(region.url, ci_token, ci_token, method).status_code == 200
        assert _check(region.url, admin_token, ci_token, method).status_code == 200
    r = _check(region.url, p2_token, ci_token)
    assert r.json()["error"]["code"] == 403
    assert "catalog" not in r.text
    # nor may p2's admin revoke it
    assert _check(region.url, p2_token, ci_token, "DELETE").status_code == 403
    assert _check(region.url, ci_token, ci_token).status_code == 200


def test_an_invalid_or_revoked_subject_token_is_404(region: RegionHandle, raw: Raw) -> None:
    mine = str(raw.headers["X-Auth-Token"])
    assert _check(region.url, mine, "no-such-token").status_code == 404
    assert _check(region.url, mine, "", "HEAD").status_code == 404
    gone = token_for(region.url, "ci", CI_PASSWORD, "ci")
    assert _check(region.url, gone, gone, "DELETE").status_code == 204
    r = _check(region.url, mine, gone)
    assert r.status_code == 404 and r.json()["error"]["code"] == 404
    # the caller's own bad token is still 401
    assert _check(region.url, "bad-caller", mine).status_code == 401
