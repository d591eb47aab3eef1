"""Each host has its own credential (docs/agent-api.md): the region's agent token only
enrolls a new host, and one host's credential cannot act for another host."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.functional.cloud.conftest import token_for
from tests.support.region import (
    ADMIN_PASSWORD,
    AGENT_TOKEN,
    CI_PASSWORD,
    RegionHandle,
    running_region,
)

A, B = "cred-a", "cred-b"
DATA = b"image bytes for host a only\n" * 100


def _register(url: str, host: str, token: str) -> httpx.Response:
    body = {"name": host, "driver": "wire", "vcpus": 8, "ram_mb": 16384, "disk_gb": 100}
    return httpx.post(f"{url}/agent/v1/hosts", json=body, headers={"X-Agent-Token": token})


class Rack:
    def __init__(self, region: RegionHandle) -> None:
        self.region = region
        self.url = region.url
        self.cred: dict[str, str] = {}

    def enroll(self, host: str) -> None:
        r = _register(self.url, host, AGENT_TOKEN)
        assert r.status_code == 200, r.text
        self.cred[host] = r.json()["credential"]

    def call(self, method: str, path: str, token: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method, self.url + path, json=body, headers={"X-Agent-Token": token}, timeout=10
        )


@pytest.fixture
def rack(tmp_path: Path) -> Iterator[tuple[Rack, Any, Any]]:
    """Host A runs one server booted from an uploaded image; host B runs nothing."""
    with running_region(tmp_path, "cred", fake_hosts=[]) as region:
        rack = Rack(region)
        rack.enroll(A)  # the only host: the server lands on A
        conn = region.connect()
        blob = tmp_path / "img.raw"
        blob.write_bytes(DATA)
        image = conn.create_image(
            "for-a", filename=str(blob), disk_format="raw", container_format="bare", wait=True
        )
        server = conn.compute.create_server(
            name="on-a", image_id=image.id, flavor_id="1", networks="auto"
        )
        r = rack.call("POST", f"/agent/v1/instances/{server.id}/report", rack.cred[A],
                      {"host": A, "status": "ACTIVE"})  # fmt: skip
        assert r.status_code == 200, r.text
        rack.enroll(B)
        yield rack, server, image


def test_a_hosts_credential_cannot_pull_heartbeat_or_report_for_another_host(rack) -> None:
    rack, server, _ = rack
    b = rack.cred[B]
    assert rack.call("GET", f"/agent/v1/hosts/{A}/instances", b).status_code == 403
    assert (
        rack.call("POST", f"/agent/v1/hosts/{A}/heartbeat", b, {"instances": []}).status_code == 403
    )
    for status in ("ERROR", "DELETED"):
        r = rack.call("POST", f"/agent/v1/instances/{server.id}/report", b,
                      {"host": A, "status": status, "fault": "forged"})  # fmt: skip
        assert r.status_code == 403, r.text
        # claiming it as its own: not on B, so 404
        r = rack.call("POST", f"/agent/v1/instances/{server.id}/report", b,
                      {"host": B, "status": status, "fault": "forged"})  # fmt: skip
        assert r.status_code == 404, r.text
    # B's own calls work, and A's instance is untouched and still A's
    assert rack.call("GET", f"/agent/v1/hosts/{B}/instances", b).json() == {"instances": []}
    pulled = rack.call("GET", f"/agent/v1/hosts/{A}/instances", rack.cred[A]).json()["instances"]
    assert [(i["id"], i["status"]) for i in pulled] == [(server.id, "ACTIVE")]
    assert rack.region.connect().compute.get_server(server.id).status == "ACTIVE"


def test_a_host_fetches_only_images_its_instances_use(rack) -> None:
    rack, _, image = rack
    path = f"/agent/v1/images/{image.id}/file"
    assert rack.call("GET", path, rack.cred[B]).status_code == 404
    r = rack.call("GET", path, rack.cred[A])
    assert r.status_code == 200 and r.content == DATA


def test_the_region_token_only_enrolls_a_new_host(rack) -> None:
    rack, server, image = rack
    for method, path, body in [
        ("GET", f"/agent/v1/hosts/{A}/instances", None),
        ("POST", f"/agent/v1/hosts/{A}/heartbeat", {}),
        ("POST", f"/agent/v1/instances/{server.id}/report", {"host": A, "status": "DELETED"}),
        ("GET", f"/agent/v1/images/{image.id}/file", None),
    ]:
        assert rack.call(method, path, AGENT_TOKEN, body).status_code == 403, path
    # an enrolled host cannot be taken over by enrolling its name again
    r = _register(rack.url, A, AGENT_TOKEN)
    assert r.status_code == 403 and "credential" in r.json()["forbidden"]["message"]
    # nor registered under another host's credential
    assert _register(rack.url, A, rack.cred[B]).status_code == 403
    # its own credential re-registers it (agent restart) and gets no new one
    r = _register(rack.url, A, rack.cred[A])
    assert r.status_code == 200 and "credential" not in r.json()
    assert rack.call("GET", "/agent/v1/hosts/nope/instances", "not-a-credential").status_code == 401


def test_an_admin_issues_a_new_credential_and_the_old_one_stops(rack, tmp_path: Path) -> None:
    rack, _, _ = rack
    url = rack.url
    ci = token_for(url, "ci", CI_PASSWORD, "ci")
    admin = token_for(url, "admin", ADMIN_PASSWORD, "admin")
    path = f"{url}/admin/v1/hosts/{A}/credential"
    assert httpx.post(path, headers={"X-Auth-Token": ci}).status_code == 403
    r = httpx.post(path, headers={"X-Auth-Token": admin})
    assert r.status_code == 200
    new = r.json()["credential"]
    pull = f"/agent/v1/hosts/{A}/instances"
    assert rack.call("GET", pull, rack.cred[A]).status_code == 401
    assert rack.call("GET", pull, new).status_code == 200
    # the same from the admin CLI
    config = tmp_path / "region.yaml"
    config.write_text(yaml.safe_dump(rack.region.config.model_dump(mode="json")))
    out = subprocess.run(
        [sys.executable, "-m", "rackpool.cli", "cloud", "admin", "--config", str(config),
         "host", "credential", A],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    cli_cred = yaml.safe_load(out)["credential"]
    assert rack.call("GET", pull, new).status_code == 401
    assert rack.call("GET", pull, cli_cred).status_code == 200
