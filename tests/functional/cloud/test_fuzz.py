"""Fuzz every region endpoint (Keystone, Nova, Glance, Cinder, Neutron, agent, admin) over
real HTTP: no 5xx, every error in its API's fault shape, nothing written by a request
that failed. Endpoints come from the app's router, so a new one is fuzzed too."""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from sqlalchemy import select
from tests.functional.cloud.conftest import NewDatabase, token_for
from tests.support.fuzz import Endpoint, check, endpoints, fault_shape, fuzz_settings, requests_for
from tests.support.region import (
    ADMIN_PASSWORD,
    AGENT_TOKEN,
    CI_PASSWORD,
    RegionHandle,
    region_config,
    running_region,
)

from rackpool.cloud.api.app import build_app
from rackpool.cloud.db.schema import flavors, images, keypairs, projects, servers
from rackpool.cloud.region import Region

PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHkbE3Z1T4VQXw7kSSeb/4QN0t3YFqBLe0NJ1D0oZbAg fuzz"


def shape(url: str, body: Any, status: int) -> str | None:
    if url.startswith("/identity"):
        err = body.get("error") if isinstance(body, dict) else None
        ok = isinstance(err, dict) and err.get("code") == status and "message" in err
        return None if ok else "not a Keystone error"
    if url.startswith("/network"):
        err = body.get("NeutronError") if isinstance(body, dict) else None
        ok = isinstance(err, dict) and {"type", "message", "detail"} <= set(err)
        return None if ok else "not a NeutronError"
    return fault_shape(body, status)


class World:
    """The fuzzed region and what exists in it: ids to aim at, valid bodies to break."""

    def __init__(self, handle: RegionHandle) -> None:
        self.handle = handle
        url = handle.url
        member = token_for(url, "ci", CI_PASSWORD, "ci")
        admin = token_for(url, "admin", ADMIN_PASSWORD, "admin")
        http = httpx.Client(base_url=url, headers={"X-Auth-Token": member}, timeout=30)
        kp = http.post("/compute/v2.1/os-keypairs", json={"keypair": {"name": "fuzzkey"}})
        image = http.post("/image/v2/images", json={"name": "fuzzimg", "disk_format": "raw",
                                                    "container_format": "bare"}).json()  # fmt: skip
        srv = http.post("/compute/v2.1/servers", json={"server": {
            "name": "fuzz0", "imageRef": "host", "flavorRef": "1"}}).json()["server"]  # fmt: skip
        ports = http.get("/network/v2.0/ports").json()["ports"]
        net = http.get("/network/v2.0/networks").json()["networks"][0]
        assert kp.status_code == 200, kp.text
        pids = [p["id"] for p in httpx.get(f"{url}/identity/v3/projects",
                                           headers={"X-Auth-Token": admin}).json()["projects"]]  # fmt: skip
        # an enrolled agent host with a server on it, so the agent API is fuzzed past
        # its credential check with a host's own credential (not only 401s)
        agent_host = {"name": "fzagent", "availability_zone": "nova", "driver": "fake",
                      "vcpus": 64, "ram_mb": 65536, "disk_gb": 100, "version": "1"}  # fmt: skip
        enrolled = httpx.post(f"{url}/agent/v1/hosts", json=agent_host,
                              headers={"X-Agent-Token": AGENT_TOKEN}, timeout=30)  # fmt: skip
        assert enrolled.status_code == 200, enrolled.text
        credential = enrolled.json()["credential"]
        hosts = [h.name for h in handle.config.fake_hosts] + ["fzagent"]
        sid, iid = srv["id"], image["id"]
        self.known: dict[str, list[str]] = {
            "server_id": [sid], "image_id": [iid, "host"], "flavor_id": ["1", "2"],
            "name": ["fuzzkey", *hosts], "target": pids, "project_id": pids,
            "id": [net["id"], net["subnets"][0], *[p["id"] for p in ports]],
            "hid": hosts, "action": ["enable", "disable", "drain", "disable-log-reason"],
        }  # fmt: skip
        self.templates: dict[str, list[Any]] = {
            "POST /identity/v3/auth/tokens": [{"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "ci", "password": CI_PASSWORD, "domain": {"name": "Default"}}}},
                "scope": {"project": {"name": "ci", "domain": {"name": "Default"}}}}}],
            "POST /compute/v2.1/servers": [{"server": {
                "name": "fz", "imageRef": "host", "flavorRef": "1", "networks": [{"uuid": net["id"]}],
                "key_name": "fuzzkey", "metadata": {"a": "b"}, "security_groups": [{"name": "default"}],
                "min_count": 1, "max_count": 1, "user_data": base64.b64encode(b"hi").decode(),
                "availability_zone": "nova", "config_drive": True}}],
            "POST /compute/v2.1/flavors": [{"flavor": {"name": "fz", "vcpus": 1, "ram": 64,
                                                       "disk": 1, "id": "fz1"}}],
            "POST /compute/v2.1/os-keypairs": [{"keypair": {"name": "fz", "public_key": PUBKEY}},
                                               {"keypair": {"name": "fz2", "type": "ssh"}}],
            "POST /compute/v2.1/servers/{server_id}/action": [
                {"os-getConsoleOutput": {"length": 10}}],
            "PUT /compute/v2.1/os-quota-sets/{target}": [{"quota_set": {
                "cores": 100, "ram": 100000, "instances": 50}}],
            "PUT /compute/v2.1/os-services/{action}": [{
                "host": hosts[0], "binary": "nova-compute", "disabled_reason": "fuzz"}],
            "POST /image/v2/images": [{"name": "fz", "disk_format": "raw", "container_format": "bare",
                                       "visibility": "private", "tags": ["a"], "min_disk": 0,
                                       "min_ram": 0, "protected": False, "prop": "x"}],
            "PATCH /image/v2/images/{image_id}": [[
                {"op": "replace", "path": "/name", "value": "n"},
                {"op": "add", "path": "/tags", "value": ["t"]},
                {"op": "add", "path": "/prop", "value": "v"}]],
            "POST /agent/v1/hosts": [{"name": "fzhost", "availability_zone": "nova", "driver": "fake",
                                      "vcpus": 4, "ram_mb": 1024, "disk_gb": 10, "version": "1"}],
            "POST /agent/v1/hosts/{name}/heartbeat": [{"instances": [
                {"id": sid, "running": True, "detail": ""}]}],
            "POST /agent/v1/instances/{server_id}/report": [{
                "host": hosts[0], "status": "ACTIVE", "console_log": "x", "host_keys": ["k"]}, {
                "host": "fzagent", "status": "ERROR", "fault": "f", "console_log": "x"}],
        }  # fmt: skip
        agent = {"X-Agent-Token": AGENT_TOKEN}
        self.headers = [
            {"X-Auth-Token": member, **agent}, {"X-Auth-Token": member},
            {"X-Auth-Token": admin, **agent}, {"X-Auth-Token": admin},
            {"X-Auth-Token": "garbage", "X-Agent-Token": "garbage"}, {},
            {"X-Agent-Token": credential}, {"X-Agent-Token": credential},
        ]  # fmt: skip
        self.client = httpx.Client(base_url=url, timeout=60)

    def snapshot(self) -> dict[str, Any]:
        with self.handle.region.engine.connect() as conn:
            return {
                t.name: sorted(tuple(map(str, r)) for r in conn.execute(select(t)))
                for t in (flavors, images, keypairs, projects)
            } | {"servers": {r[0] for r in conn.execute(select(servers.c.id))}}

    @staticmethod
    def unchanged(before: dict[str, Any], after: dict[str, Any]) -> bool:
        """Nothing new or changed; servers may only go away (deletes finish in the
        background), never appear."""
        rest = {k: v for k, v in before.items() if k != "servers"}
        return after["servers"] <= before["servers"] and rest == {
            k: v for k, v in after.items() if k != "servers"
        }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, new_db: NewDatabase) -> Iterator[World]:
    with running_region(tmp_path_factory.mktemp("fuzz"), page_limit=5, database=new_db()) as handle:
        yield World(handle)


def _endpoints() -> list[Endpoint]:
    """The routes of a real (empty, throwaway) region's app."""
    with tempfile.TemporaryDirectory() as tmp:
        region = Region.open(region_config(Path(tmp)))
        try:
            return endpoints(build_app(region, run_background=False))
        finally:
            region.close()


def _fuzz(world: World, ep: Endpoint, examples: int | None) -> None:
    @fuzz_settings(examples)
    @given(req=requests_for(ep, world.known, world.templates, world.headers))
    def run(req: Any) -> None:
        check(world.client, req, shape, world.snapshot, world.unchanged)

    run()


@pytest.mark.parametrize("ep", _endpoints(), ids=str)
def test_fuzz_region(world: World, ep: Endpoint) -> None:
    _fuzz(world, ep, None)


@pytest.mark.heavy
@pytest.mark.parametrize("ep", _endpoints(), ids=str)
def test_fuzz_region_heavy(world: World, ep: Endpoint) -> None:
    _fuzz(world, ep, 300)
