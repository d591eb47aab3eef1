"""Keystone subset as openstacksdk and plain HTTP clients see it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.functional.cloud.conftest import NewDatabase, token_for
from tests.support.region import CI_PASSWORD, RegionHandle, running_region

from rackpool.core.clock import ManualClock


def test_sdk_login_gets_a_catalog_with_every_service(conn) -> None:
    access = conn.session.auth.get_access(conn.session)
    types = {s["type"] for s in access.service_catalog.catalog}
    assert {"compute", "image", "volumev3", "identity"} <= types
    assert access.project_name == "ci"
    assert access.role_names == ["member"]
    assert conn.compute.get_endpoint().endswith("/compute/v2.1")


def test_wrong_password_is_401(region: RegionHandle) -> None:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "ci", "domain": {"name": "Default"}, "password": "wrong-password"}}},
        "scope": {"project": {"name": "ci", "domain": {"name": "Default"}}}}}  # fmt: skip
    r = httpx.post(f"{region.url}/identity/v3/auth/tokens", json=body)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == 401


def test_validate_and_revoke(region: RegionHandle) -> None:
    token = token_for(region.url, "ci", CI_PASSWORD, "ci")
    other = token_for(region.url, "ci", CI_PASSWORD, "ci")
    hdrs = {"X-Auth-Token": other, "X-Subject-Token": token}
    r = httpx.get(f"{region.url}/identity/v3/auth/tokens", headers=hdrs)
    assert r.status_code == 200 and r.json()["token"]["project"]["name"] == "ci"
    assert (
        httpx.get(f"{region.url}/compute/v2.1/flavors", headers={"X-Auth-Token": token}).status_code
        == 200
    )
    assert httpx.delete(f"{region.url}/identity/v3/auth/tokens", headers=hdrs).status_code == 204
    r = httpx.get(f"{region.url}/compute/v2.1/flavors", headers={"X-Auth-Token": token})
    assert r.status_code == 401
    assert r.json()["unauthorized"]["code"] == 401
    # the other token still works
    assert (
        httpx.get(f"{region.url}/compute/v2.1/flavors", headers={"X-Auth-Token": other}).status_code
        == 200
    )


def test_no_token_is_401_everywhere(region: RegionHandle) -> None:
    for path in (
        "/compute/v2.1/servers",
        "/image/v2/images",
        "/volume/v3/limits",
        "/admin/v1/hosts",
    ):
        assert httpx.get(region.url + path).status_code == 401, path


def test_expired_token_is_401(tmp_path: Path, new_db: NewDatabase) -> None:
    clock = ManualClock()
    with running_region(
        tmp_path, clock=clock, token_ttl=60, fake_hosts=[], database=new_db()
    ) as region:
        token = token_for(region.url, "ci", CI_PASSWORD, "ci")
        url = f"{region.url}/compute/v2.1/flavors"
        assert httpx.get(url, headers={"X-Auth-Token": token}).status_code == 200
        clock.advance(61)
        r = httpx.get(url, headers={"X-Auth-Token": token})
        assert r.status_code == 401
        assert "expired" in r.json()["unauthorized"]["message"]


def test_sdk_reports_bad_credentials(region: RegionHandle) -> None:
    import openstack.connection

    conn = openstack.connection.Connection(
        auth_url=f"{region.url}/identity", username="ci", password="not-the-password",
        project_name="ci", user_domain_name="Default", project_domain_name="Default",
        region_name="r1",
    )  # fmt: skip
    import keystoneauth1.exceptions

    with pytest.raises(
        (openstack.exceptions.SDKException, keystoneauth1.exceptions.Unauthorized)
    ) as err:
        conn.list_flavors()
    assert "401" in str(err.value) or "authentication" in str(err.value).lower()
