"""`rackpool up` as a user starts it, driven by the real `openstack` command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from tests.support.up import UpProcess

OPENSTACK = str(Path(sys.executable).with_name("openstack"))


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    args = ["--driver", "fake", "--regions", "2", "--no-pool", "--no-ops"]
    proc = UpProcess(tmp_path_factory.mktemp("up") / "state", args)
    try:
        yield proc.start().state
    finally:
        proc.stop(timeout=30)


def osc(state: Path, cloud: str, *args: str, fmt: bool = True) -> object:
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(state / "clouds.yaml")}
    env = {k: v for k, v in env.items() if not k.startswith("OS_") or k == "OS_CLIENT_CONFIG_FILE"}
    r = subprocess.run(
        [OPENSTACK, "--os-cloud", cloud, *args, *(["-f", "json"] if fmt else [])],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout) if r.stdout.strip() else None


def test_clouds_yaml_has_a_ci_and_admin_entry_per_region(up: Path) -> None:
    clouds = yaml.safe_load((up / "clouds.yaml").read_text())["clouds"]
    assert set(clouds) == {"rackpool-r1", "rackpool-r1-admin", "rackpool-r2", "rackpool-r2-admin"}
    assert oct((up / "clouds.yaml").stat().st_mode & 0o777) == "0o600"
    urls = {c["auth"]["auth_url"] for c in clouds.values()}
    assert len(urls) == 2 and all(u.startswith("http://127.0.0.1:") for u in urls)


def test_openstack_cli_server_lifecycle(up: Path) -> None:
    flavors = osc(up, "rackpool-r1", "flavor", "list")
    assert "m1.small" in {f["Name"] for f in flavors}  # type: ignore[union-attr]
    images = osc(up, "rackpool-r1", "image", "list")
    assert "host" in {i["Name"] for i in images}  # type: ignore[union-attr]
    created = osc(
        up, "rackpool-r1", "server", "create", "--image", "host", "--flavor", "m1.small",
        "--key-name", "default", "--wait", "cli-node",
    )  # fmt: skip
    assert created["status"] == "ACTIVE"  # type: ignore[index]
    assert "198.18." in json.dumps(created["addresses"])  # type: ignore[index]
    listed = osc(up, "rackpool-r1", "server", "list")
    assert [s["Name"] for s in listed] == ["cli-node"]  # type: ignore[union-attr]
    # regions are separate clouds
    assert osc(up, "rackpool-r2", "server", "list") == []
    limits = osc(up, "rackpool-r1", "limits", "show", "--absolute")
    used = {row["Name"]: row["Value"] for row in limits}  # type: ignore[union-attr]
    # openstackclient renames the Nova fields (totalInstancesUsed -> instances_used, ...)
    assert used["instances_used"] == 1, used
    assert used["total_cores_used"] == 1, used
    osc(up, "rackpool-r1", "server", "delete", "--wait", "cli-node", fmt=False)
    assert osc(up, "rackpool-r1", "server", "list") == []


def test_admin_entry_sees_hypervisors(up: Path) -> None:
    hyps = osc(up, "rackpool-r2-admin", "hypervisor", "list")
    assert {h["Hypervisor Hostname"] for h in hyps} == {"r2-h1", "r2-h2"}  # type: ignore[union-attr]
    clouds = yaml.safe_load((up / "clouds.yaml").read_text())["clouds"]
    r = httpx.get(
        clouds["rackpool-r2"]["auth"]["auth_url"].replace(
            "/identity", "/compute/v2.1/os-hypervisors"
        )
    )
    assert r.status_code == 401
