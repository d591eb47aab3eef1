"""Keystone's ``reader`` role on the cloud's admin project: cloud-wide reads (what a public
dashboard needs: hosts, every project's servers, quotas) and nothing else: every call
that would change something is refused 403."""

from __future__ import annotations

from typing import Any

import pytest
from tests.functional.cloud.conftest import Raw, token_for
from tests.support.region import RegionHandle

READER_PASSWORD = "web-reader-password"


@pytest.fixture(scope="module")
def reader(region: RegionHandle) -> Raw:
    region.region.ensure_project("admin", "web-reader", READER_PASSWORD, "reader")
    return Raw(region.url, token_for(region.url, "web-reader", READER_PASSWORD, "admin"))


@pytest.fixture(scope="module")
def victim(conn: Any) -> Any:
    server = conn.create_server("ci-read", image="host", flavor="m1.tiny", wait=True, timeout=30)
    yield server
    conn.delete_server(server.id, wait=True, timeout=30)


def test_reader_sees_every_projects_servers_and_the_hosts(reader: Raw, victim: Any) -> None:
    listed = reader.get("/compute/v2.1/servers/detail", params={"all_tenants": "1"})
    assert listed.status_code == 200
    assert victim.id in {s["id"] for s in listed.json()["servers"]}
    assert reader.get("/compute/v2.1/os-hypervisors/detail").status_code == 200
    assert reader.get("/compute/v2.1/limits").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/compute/v2.1/servers",
         {"server": {"name": "x", "imageRef": "host", "flavorRef": "1", "networks": "auto"}}),
        ("POST", "/compute/v2.1/os-keypairs", {"keypair": {"name": "k"}}),
        ("POST", "/compute/v2.1/flavors",
         {"flavor": {"name": "f", "vcpus": 1, "ram": 64, "disk": 1}}),
        ("POST", "/image/v2/images", {"name": "i", "disk_format": "raw"}),
        ("PUT", "/compute/v2.1/os-quota-sets/ci", {"quota_set": {"instances": 1}}),
        ("DELETE", "/compute/v2.1/os-keypairs/default", None),
    ],
)  # fmt: skip
def test_reader_cannot_create(reader: Raw, method: str, path: str, body: Any) -> None:
    r = reader.request(method, path, json=body)
    assert r.status_code == 403, r.text
    assert "reader role only reads" in r.json()["forbidden"]["message"]


def test_reader_cannot_delete_or_act_on_a_server(reader: Raw, victim: Any, conn: Any) -> None:
    assert reader.delete(f"/compute/v2.1/servers/{victim.id}").status_code == 403
    stop = reader.post(f"/compute/v2.1/servers/{victim.id}/action", json={"os-stop": None})
    assert stop.status_code == 403
    assert conn.get_server(victim.id).status == "ACTIVE"
