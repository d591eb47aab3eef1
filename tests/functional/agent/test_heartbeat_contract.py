"""The heartbeat's ``instances`` list, spoken by hand over HTTP (docs/agent-api.md).

No agent here: the test is the agent, so each rule of the contract is checked on its
own, and users see the outcome through openstacksdk.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.region import AGENT_TOKEN, RegionHandle, running_region

H1, H2 = "wire-h1", "wire-h2"


class Wire:
    """The agent side of ``/agent/v1`` for named hosts."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)
        self.credentials: dict[str, str] = {}  # host -> its own credential

    def _as(self, host: str) -> dict[str, str]:
        return {"X-Agent-Token": self.credentials[host]}

    def register(self, host: str) -> None:
        body = {"name": host, "driver": "wire", "vcpus": 8, "ram_mb": 16384, "disk_gb": 100}
        token = self.credentials.get(host, AGENT_TOKEN)
        resp = self.http.post("/agent/v1/hosts", json=body, headers={"X-Agent-Token": token})
        resp.raise_for_status()
        self.credentials.setdefault(host, resp.json().get("credential"))

    def heartbeat(self, host: str, body: Any) -> httpx.Response:
        return self.http.post(
            f"/agent/v1/hosts/{host}/heartbeat", json=body, headers=self._as(host)
        )

    def beat(self, host: str, *running: str, stopped: dict[str, str] | None = None) -> Any:
        items = [{"id": i, "running": True} for i in running]
        items += [{"id": i, "running": False, "detail": d} for i, d in (stopped or {}).items()]
        resp = self.heartbeat(host, {"instances": items})
        resp.raise_for_status()
        return resp.json()

    def active(self, host: str, server_id: str) -> None:
        body = {"host": host, "status": "ACTIVE", "host_keys": ["ssh-ed25519 AAAAwire"]}
        self.http.post(
            f"/agent/v1/instances/{server_id}/report", json=body, headers=self._as(host)
        ).raise_for_status()


@pytest.fixture
def region(tmp_path: Path) -> Iterator[RegionHandle]:
    # no fake hosts: every server lands on H1, the only host registered when it is created
    with running_region(tmp_path, "wire", fake_hosts=[]) as r:
        yield r


@pytest.fixture
def wire(region: RegionHandle) -> Iterator[Wire]:
    w = Wire(region.url)
    w.register(H1)
    yield w
    w.http.close()


def _active_server(region: RegionHandle, wire: Wire, name: str) -> Any:
    conn = region.connect()
    flavor = min(conn.compute.flavors(), key=lambda f: (f.vcpus, f.ram))
    server = conn.compute.create_server(
        name=name, image_id="host", flavor_id=flavor.id, networks="auto"
    )
    wire.active(H1, server.id)
    assert conn.compute.get_server(server.id).status == "ACTIVE"
    return server


def _status(region: RegionHandle, server_id: str) -> tuple[str, str | None]:
    s = region.connect().compute.get_server(server_id)
    return s.status, (s.fault or {}).get("message")


def test_a_build_is_not_judged_by_the_heartbeat(region, wire):
    conn = region.connect()
    flavor = min(conn.compute.flavors(), key=lambda f: (f.vcpus, f.ram))
    server = conn.compute.create_server(
        name="building", image_id="host", flavor_id=flavor.id, networks="auto"
    )
    assert wire.beat(H1) == {"enabled": True, "state": "up", "unknown": []}
    assert _status(region, server.id) == ("BUILD", None)  # still spawning on the host


def test_running_instances_stay_active_and_strangers_are_named_unknown(region, wire):
    server = _active_server(region, wire, "node-1")
    reply = wire.beat(H1, server.id, "not-a-server")
    assert reply["unknown"] == ["not-a-server"]
    assert _status(region, server.id) == ("ACTIVE", None)


def test_an_instance_reported_not_running_goes_error_with_its_detail(region, wire):
    server = _active_server(region, wire, "node-1")
    wire.beat(H1, stopped={server.id: "exit status 137"})
    assert _status(region, server.id) == (
        "ERROR",
        f"Instance stopped on host {H1}: exit status 137",
    )


def test_an_instance_missing_from_the_heartbeat_goes_error(region, wire):
    server, other = _active_server(region, wire, "node-1"), _active_server(region, wire, "node-2")
    wire.beat(H1, other.id)
    assert _status(region, server.id) == ("ERROR", f"Instance is no longer on host {H1}")
    assert _status(region, other.id) == ("ACTIVE", None)


def test_another_hosts_heartbeat_cannot_touch_an_instance(region, wire):
    server = _active_server(region, wire, "node-1")
    wire.register(H2)
    # H2 claims H1's instance (stopped, even): it is not H2's, so H2 is told it is unknown
    assert wire.beat(H2, stopped={server.id: "confused"})["unknown"] == [server.id]
    # ... and H2 running nothing says nothing about H1's instances
    assert wire.beat(H2)["unknown"] == []
    assert _status(region, server.id) == ("ACTIVE", None)


def test_a_heartbeat_without_instances_checks_nothing(region, wire):
    server = _active_server(region, wire, "node-1")
    for body in ({}, None):
        resp = wire.heartbeat(H1, body)
        assert resp.status_code == 200 and resp.json() == {"enabled": True, "state": "up"}
    assert _status(region, server.id) == ("ACTIVE", None)


@pytest.mark.parametrize(
    ("instances", "names"),
    [("all", "'instances'"), ([{"id": "x"}], "'instances[0]'"),
     ([{"id": "x", "running": True}, {"id": 7, "running": True}], "'instances[1]'")],
)  # fmt: skip
def test_a_malformed_instances_list_is_refused_naming_the_field(region, wire, instances, names):
    server = _active_server(region, wire, "node-1")
    resp = wire.heartbeat(H1, {"instances": instances})
    assert resp.status_code == 400
    assert names in resp.json()["badRequest"]["message"]
    assert _status(region, server.id) == ("ACTIVE", None)  # nothing half-applied
