"""The ``openstack`` commands an operator types on day one, against ``rackpool cloud
serve`` as a user starts it, through the real openstackclient with ``-f json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.region import AGENT_TOKEN, RegionProcess

from rackpool.core.clock import wait_for

OPENSTACK = str(Path(sys.executable).with_name("openstack"))
QUOTA = {"instances": 6, "cores": 12, "ram": 8192}
SILENT = "r1-silent"


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegionProcess]:
    proc = RegionProcess(
        tmp_path_factory.mktemp("day-one"),
        default_quota=QUOTA,
        hosts={"heartbeat_interval": 0.5, "heartbeat_timeout": 3, "check_interval": 0.25},
    )
    try:
        yield proc.start()
    finally:
        proc.stop()


def osc(region: RegionProcess, *args: str, admin: bool = False, ok: bool = True) -> Any:
    """Run ``openstack --os-cloud rackpool-r1[-admin] ARGS -f json``; its JSON, or the
    completed process when ``ok`` is False (a command expected to fail)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(region.clouds_yaml)
    cloud = "rackpool-r1-admin" if admin else "rackpool-r1"
    r = subprocess.run(
        [OPENSTACK, "--os-cloud", cloud, *args, *(["-f", "json"] if ok else [])],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    if not ok:
        return r
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout) if r.stdout.strip() else None


@pytest.fixture(scope="module")
def node(region: RegionProcess) -> Iterator[dict[str, Any]]:
    server = osc(
        region, "server", "create", "--image", "host", "--flavor", "m1.small",
        "--network", "public", "--wait", "day-one",
    )  # fmt: skip
    yield server
    osc(region, "server", "delete", "--wait", "day-one", ok=False)


def test_quota_show_has_the_enforced_limits(region: RegionProcess, node: dict[str, Any]) -> None:
    rows = {r["Resource"]: r["Limit"] for r in osc(region, "quota", "show")}
    assert {k: rows[k] for k in QUOTA} == QUOTA
    # no block storage here, so no volume limit is enforced (-1, as /volume/v3/limits says)
    assert rows["volumes"] == -1 and rows["gigabytes"] == -1
    assert rows["ports"] == QUOTA["instances"] and rows["networks"] == 0
    usage = {r["Resource"]: r["In Use"] for r in osc(region, "quota", "show", "--usage")}
    assert (usage["instances"], usage["cores"], usage["ram"], usage["ports"]) == (1, 1, 512, 1)


def test_server_show_and_console_log(region: RegionProcess, node: dict[str, Any]) -> None:
    shown = osc(region, "server", "show", "day-one")
    assert shown["status"] == "ACTIVE"
    (address,) = shown["addresses"]["public"]
    assert address.startswith("198.18.")
    console = osc(region, "console", "log", "show", "day-one", ok=False)
    assert console.returncode == 0, console.stderr
    assert "day-one login:" in console.stdout


def test_network_subnet_and_the_servers_port(region: RegionProcess, node: dict[str, Any]) -> None:
    (net,) = osc(region, "network", "list")
    assert net["Name"] == "public"
    (subnet,) = osc(region, "subnet", "list")
    assert subnet["Subnet"] == "198.18.0.0/16" and subnet["Network"] == net["ID"]
    (port,) = osc(region, "port", "list", "--server", "day-one")
    (address,) = osc(region, "server", "show", "day-one")["addresses"]["public"]
    assert port["Fixed IP Addresses"][0]["ip_address"] == address
    assert port["Status"] == "ACTIVE"
    assert osc(region, "floating", "ip", "list") == []
    refused = osc(region, "port", "delete", port["ID"], ok=False)
    assert refused.returncode != 0 and "delete the server" in refused.stderr
    assert [p["ID"] for p in osc(region, "port", "list", "--server", "day-one")] == [port["ID"]]


def test_hypervisor_list_and_show(region: RegionProcess, node: dict[str, Any]) -> None:
    hyps = osc(region, "hypervisor", "list", admin=True)
    assert {h["Hypervisor Hostname"] for h in hyps} >= {"r1-fake1", "r1-fake2"}
    shown = [
        osc(region, "hypervisor", "show", name, admin=True) for name in ("r1-fake1", "r1-fake2")
    ]
    assert sum(h["running_vms"] for h in shown) == 1
    assert all(h["state"] == "up" and h["status"] == "enabled" for h in shown)
    assert {h["vcpus"] for h in shown} == {64}


def _services(region: RegionProcess) -> dict[str, dict[str, Any]]:
    rows = osc(region, "compute", "service", "list", admin=True)
    return {r["Host"]: r for r in rows if r["Binary"] == "nova-compute"}


def test_compute_service_list_shows_hosts_up_and_a_silent_one_down(
    region: RegionProcess,
) -> None:
    rows = osc(region, "compute", "service", "list", admin=True)
    assert {r["Binary"] for r in rows} == {"nova-compute", "nova-scheduler", "nova-conductor"}
    hosts = _services(region)
    for name in ("r1-fake1", "r1-fake2"):
        assert (hosts[name]["State"], hosts[name]["Status"], hosts[name]["Zone"]) == (
            "up", "enabled", "nova",
        )  # fmt: skip
        assert hosts[name]["Updated At"]
    # a host that registers over the agent API and then never heartbeats goes down
    body = {"name": SILENT, "vcpus": 1, "ram_mb": 128, "disk_gb": 1, "driver": "fake"}
    r = httpx.post(
        f"{region.url}/agent/v1/hosts", json=body, headers={"X-Agent-Token": AGENT_TOKEN}
    )
    assert r.status_code == 200, r.text
    assert _services(region)[SILENT]["State"] == "up"
    wait_for(lambda: _services(region)[SILENT]["State"] == "down", 30, f"{SILENT} to show down")
    hosts = _services(region)
    assert hosts["r1-fake1"]["State"] == hosts["r1-fake2"]["State"] == "up"


def test_compute_service_set_disable_and_enable(region: RegionProcess) -> None:
    set_ = ("compute", "service", "set")
    r = osc(region, *set_, "--disable", "--disable-reason", "rack work", "r1-fake2",
            "nova-compute", admin=True, ok=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert _services(region)["r1-fake2"]["Status"] == "disabled"
    r = osc(region, *set_, "--enable", "r1-fake2", "nova-compute", admin=True, ok=False)
    assert r.returncode == 0, r.stderr
    assert _services(region)["r1-fake2"]["Status"] == "enabled"


def test_members_cannot_list_compute_services(region: RegionProcess) -> None:
    r = osc(region, "compute", "service", "list", ok=False)
    assert r.returncode != 0 and "403" in r.stderr
