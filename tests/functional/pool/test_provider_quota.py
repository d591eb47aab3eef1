"""The pool publishes each provider's quota as it counts it: ``GET /api/providers`` and
``rackpool provider list`` against a real region whose project quota an admin set, with
a server in the project that is not the pool's, checked against the region's own count."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.support.region import RegionHandle, clouds_entries, free_port, running_region
from tests.support.region import write_clouds_yaml as write_clouds

from rackpool.core.clock import wait_for

from .conftest import openstack_provider
from .daemon import PoolProcess
from .test_daemon import rackpool

LIMITS = {"instances": 5, "cores": 4, "ram": 2048}  # m1.tiny: 1 vCPU, 256 MiB


def _region_count(region: RegionHandle) -> dict[str, dict[str, int]]:
    """The region's own view of the ci project: Nova's os-quota-sets detail, as admin."""
    admin = region.connect(admin=True)
    pid = admin.identity.find_project("ci").id
    detail = admin.compute.get(f"/os-quota-sets/{pid}/detail").json()["quota_set"]
    return {k: {"limit": detail[k]["limit"], "in_use": detail[k]["in_use"]} for k in LIMITS}


def _provider(pool: PoolProcess, name: str) -> dict[str, Any]:
    found = [p for p in pool.client().providers() if p["name"] == name]
    assert len(found) == 1, found
    return found[0]


def _row(state: Path, name: str) -> str:
    out = rackpool("provider", "list", "--state-dir", str(state))
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.split()[0] == name]
    assert len(rows) == 1, out.stdout
    assert out.stdout.splitlines()[0].split()[:4] == ["NAME", "DRIVER", "REGION", "NODES"]
    return rows[0]


def test_provider_status_and_list_show_limits_and_use_as_the_pool_counts(
    tmp_path: Path,
) -> None:
    with running_region(tmp_path, "r1") as region:
        admin = region.connect(admin=True)
        admin.set_compute_quotas("ci", **LIMITS)
        # someone else's server in the pool's project: it takes quota the pool cannot use
        ci = region.connect()
        other = ci.compute.create_server(
            name="not-the-pools", image_id="host", flavor_id="1", networks="auto"
        )
        ci.compute.wait_for_server(other, wait=30, interval=0.1)
        # a provider whose cloud never answers: its quota is never read
        dead = write_clouds(
            tmp_path / "clouds-dead.yaml", clouds_entries("dead", f"http://127.0.0.1:{free_port()}")
        )
        r1 = openstack_provider("r1", region.clouds_yaml, "r1", priority=1)
        r1["pools"][0]["max-servers"] = 4
        state = tmp_path / "state"
        cfg = {
            "state-dir": str(state),
            "api": {"port": 0, "token": "quota-test-token"},
            "timing": {"tick-interval": 0.05, "cleanup-interval": 0.5},
            "labels": [{"name": "default", "min-ready": 0}],
            "providers": [
                r1,
                openstack_provider(
                    "dead", dead, "dead", priority=2,
                    health={"error-threshold": 1, "probe-interval": 1, "call-timeout": 3},
                ),
            ],
        }  # fmt: skip
        started = time.time()
        pool = PoolProcess(tmp_path / "pool", cfg).start()
        try:
            wait_for(lambda: _provider(pool, "r1")["quota"] is not None, 30, "r1's quota read")
            before = _provider(pool, "r1")
            q = before["quota"]
            assert before["quota_known"] is True
            assert {k: q[k]["limit"] for k in LIMITS} == LIMITS
            assert q["instances"] == {"limit": 5, "in_use": 1, "pool": 0, "other": 1}
            assert (q["cores"]["other"], q["ram"]["other"]) == (1, 256)
            assert started <= q["limits_read_at"] <= time.time()
            assert started <= q["usage_read_at"] <= time.time()
            assert q["hosts"] is None
            assert before["caps"] == [{"pool": "main", "max_servers": 4, "max_cores": None,
                                       "max_ram": None, "instances": 0, "cores": 0, "ram": 0}]  # fmt: skip
            gone = _provider(pool, "dead")
            assert gone["quota"] is None and gone["quota_known"] is False
            assert "quota not read yet" in _row(state, "dead")

            got = rackpool("node", "request", "default", "default", "--wait", "--timeout", "60",
                           "--state-dir", str(state))  # fmt: skip
            assert got.returncode == 0, got.stderr + got.stdout
            nodes = json.loads(got.stdout)["nodes"]
            assert [n["provider"] for n in nodes] == ["r1", "r1"]

            after = _provider(pool, "r1")
            q = after["quota"]
            assert q["instances"] == {"limit": 5, "in_use": 3, "pool": 2, "other": 1}
            assert q["cores"] == {"limit": 4, "in_use": 3, "pool": 2, "other": 1}
            assert q["ram"] == {"limit": 2048, "in_use": 768, "pool": 512, "other": 256}
            assert after["caps"][0]["instances"] == 2 and after["caps"][0]["ram"] == 512
            # the pool's count is the region's own
            assert _region_count(region) == {k: {"limit": q[k]["limit"], "in_use": q[k]["in_use"]}
                                             for k in LIMITS}  # fmt: skip
            row = _row(state, "r1")
            assert "instances 3/5 cores 3/4 ram 768/2048 main max-servers 2/4" in row, row
            assert "in service" in row

            # a released node gives its share back
            released = rackpool("node", "release", nodes[0]["id"], "--state-dir", str(state))
            assert released.returncode == 0, released.stderr
            wait_for(
                lambda: _provider(pool, "r1")["quota"]["instances"]["in_use"] == 2, 30,
                "the released node's server to be gone from the count",
            )  # fmt: skip
            wait_for(lambda: _region_count(region)["instances"]["in_use"] == 2, 30, "region")
            assert "instances 2/5 cores 2/4 ram 512/2048 main max-servers 1/4" in _row(state, "r1")
        finally:
            pool.stop()
