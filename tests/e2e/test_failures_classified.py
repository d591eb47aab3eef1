"""Pool failures against real region controllers end up in the index, classified.

Four regions (fake hosts), each failing a different way, are the pool's four
providers; the pool runs as ``rackpool pool serve`` and the ops daemon as ``rackpool ops
serve`` shipping the pool's log file. Nothing is hand-written into a log: each failure
line is what the pool logged about what the controller did, and the builtin signatures
must recognise it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import httpx
from tests.functional.pool.daemon import PoolProcess
from tests.support.ops import OpsProcess
from tests.support.region import running_region

from rackpool.core.clock import wait_for

HEALTH = {"heartbeat_interval": 0.2, "heartbeat_timeout": 1.0, "check_interval": 0.1}


def provider(region: Any, label: str, **kw: Any) -> dict[str, Any]:
    return {
        "name": region.name, "driver": "openstack", "cloud": f"rackpool-{region.name}",
        "region-name": region.name, "clouds-yaml": str(region.clouds_yaml),
        "host-key-checking": False, "poll-interval": 0.05, "launch-retries": 1,
        "pools": [{"name": "main", "labels": [
            {"name": label, "cloud-image": "host", "flavor-name": "m1.tiny"}]}],
        **kw,
    }  # fmt: skip


def test_pool_failures_are_indexed_and_classified_as_the_right_bug(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        region = stack.enter_context
        rq = region(running_region(tmp_path, "rq", fake_hosts=[{"name": "rq-h1"}]))
        rf = region(running_region(tmp_path, "rf", fake_hosts=[
            {"name": "rf-h1", "build_delay": 0.05, "fail_names": [".*"]}]))  # fmt: skip
        rs = region(running_region(tmp_path, "rs", fake_hosts=[
            {"name": "rs-h1", "build_delay": 600}]))  # fmt: skip
        rd = region(running_region(tmp_path, "rd", hosts=HEALTH, fake_hosts=[
            {"name": "rd-h1", "build_delay": 600}]))  # fmt: skip
        config = {
            "state-dir": str(tmp_path / "pool-state"),
            "api": {"listen": "127.0.0.1", "port": 0, "token": "classify-test-token"},
            "timing": {"tick-interval": 0.05, "cleanup-interval": 0.5},
            "labels": [{"name": n, "min-ready": 0} for n in ("quota", "faulty", "slow", "down")],
            "providers": [
                provider(rq, "quota"),
                provider(rf, "faulty"),
                provider(rs, "slow", **{"boot-timeout": 1}),
                provider(rd, "down", **{"boot-timeout": 120}),
            ],
        }
        pool = PoolProcess(tmp_path / "pool", config)
        ops = OpsProcess(tmp_path / "ops", [str(pool.log_path)])
        stack.callback(ops.stop)
        ops.start()
        stack.callback(pool.stop)
        pool.start()
        client = pool.client()

        # quota: the pool knows the limits from a first launch; then the operator
        # tightens the project quota, so the next create is refused by the controller
        first = client.wait(client.request(["quota"], requestor="ci")["id"], 30)
        assert first["state"] == "fulfilled", first
        ci = rq.region.identity.project_id("ci")
        rq.region.compute.set_quota(ci, {"instances": 1})
        client.request(["quota"], requestor="ci")
        # a fake host told to fail; a boot that never finishes; a host that goes silent
        client.request(["faulty"], requestor="ci")
        client.request(["slow"], requestor="ci")
        client.request(["down"], requestor="ci")
        rd_conn = rd.connect()
        wait_for(
            lambda: [s for s in rd_conn.compute.servers() if s.status == "BUILD"],
            30, "a server building in rd",
        )  # fmt: skip
        next(h for h in rd.region.fake_hosts if h.spec.name == "rd-h1").paused = True

        def by_label() -> dict[str, set[tuple[str, ...]]]:
            failures = httpx.get(f"{ops.url}/api/failures", timeout=10).json()["failures"]
            out: dict[str, set[tuple[str, ...]]] = {}
            for f in failures:
                out.setdefault(f.get("label", "?"), set()).add(tuple(f["bugs"]))
            return out

        wait_for(
            lambda: {"quota", "faulty", "slow", "down"} <= set(by_label()),
            60, "a classified failure for every label",
        )  # fmt: skip
        got = by_label()
        assert got["quota"] == {("rackpool-quota-exceeded",)}, got
        assert got["slow"] == {("rackpool-boot-timeout",)}, got
        assert got["down"] == {("rackpool-host-down",)}, got
        assert got["faulty"] == {()}, got  # nobody knows this bug yet: uncategorized
        unc = httpx.get(f"{ops.url}/api/uncategorized", timeout=10).json()["failures"]
        assert any("told to fail" in u["message"] for u in unc), unc
        bugs = {b["bug"]: b for b in httpx.get(f"{ops.url}/api/bugs", timeout=10).json()["bugs"]}
        for bug in ("rackpool-quota-exceeded", "rackpool-boot-timeout", "rackpool-host-down"):
            assert bugs[bug]["fails24h"] >= 1, bugs[bug]
