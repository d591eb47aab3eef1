"""A fake-driver ``rackpool up`` with real activity planted for the dashboard's tests:
a node request, a searchable line, a known-bug hit, an uncategorized failure, and a
log line carrying a password (which the index must redact and no page may show)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from tests.support.up import UpProcess

from rackpool.core.clock import wait_for

PROBE_WORD = "zqxjvprobe"
PROBE_NODE = "probe-node-1"
QUOTA_NODE = "probe-quota-1"
ODD_WORD = "xyzzyodd"


@dataclass
class Dashboard:
    up: UpProcess
    url: str
    pool_url: str
    pool_token: str
    ops_url: str

    def secrets(self) -> dict[str, str]:
        """Every secret of this state dir: what no page may contain."""
        state = self.up.state
        found = {"pool token": self.pool_token}
        found["ops push token"] = json.loads((state / "ops.json").read_text())["push_token"]
        for region, s in json.loads((state / "secrets.json").read_text()).items():
            for key, value in s.items():
                found[f"{region} {key}"] = value
        return found

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30)


def _read(path: Path) -> dict[str, str]:
    data: dict[str, str] = json.loads(path.read_text())
    return data


def start(root: Path, regions: int = 1) -> Dashboard:
    up = UpProcess(root / "state", ["--driver", "fake", "--regions", str(regions)])
    try:
        up.start(120)
        web = _read(up.state / "web.json")
        pool = _read(up.state / "pool.json")
        ops = _read(up.state / "ops.json")
        dash = Dashboard(up, web["url"], pool["url"], pool["token"], ops["url"])
        plant(dash, ops["push_token"])
    except BaseException:
        up.stop()
        up.kill_leftovers()
        raise
    return dash


def plant(d: Dashboard, push_token: str) -> None:
    ci_password = d.secrets()["r1 ci_password"]
    httpx.post(
        d.pool_url + "/api/requests",
        json={"labels": ["default"], "requestor": "web-test"},
        headers={"Authorization": f"Bearer {d.pool_token}"},
    ).raise_for_status()
    docs = [
        {"message": f"{PROBE_WORD} planted line for the dashboard", "level": "WARNING",
         "component": "probe", "node_id": PROBE_NODE},
        {"message": f"probe login with password={ci_password}", "level": "INFO",
         "component": "probe"},
        {"message": f"launch of node {QUOTA_NODE} failed (attempt 1 of 3): Quota exceeded "
         "for cores: Requested 2, but already used 8 of 8 cores", "level": "WARNING",
         "component": "pool", "event": "launch_failed", "node_id": QUOTA_NODE, "provider": "r1"},
        {"message": f"launch of node probe-odd-1 failed: {ODD_WORD} went wrong", "level": "ERROR",
         "component": "pool", "event": "launch_failed", "node_id": "probe-odd-1",
         "provider": "r1"},
    ]  # fmt: skip
    httpx.post(
        d.ops_url + "/api/push",
        json={"documents": docs, "source": "web-test"},
        headers={"Authorization": f"Bearer {push_token}"},
    ).raise_for_status()

    def indexed_and_classified() -> bool:
        hits = httpx.get(d.ops_url + "/api/search", params={"q": PROBE_WORD}).json()["total"]
        bugs = httpx.get(d.ops_url + "/api/bugs").json()["bugs"]
        quota = [b for b in bugs if b["bug"] == "rackpool-quota-exceeded"]
        return hits == 1 and bool(quota) and quota[0]["fails24h"] >= 1

    wait_for(indexed_and_classified, 60, "the planted lines to be indexed and classified")


DRAINED = "web test: rack drained"


def region_urls(d: Dashboard) -> dict[str, str]:
    web = yaml.safe_load((d.up.state / "web.yaml").read_text())
    return {r["name"]: r["url"] for r in web["regions"]}


def admin_token(d: Dashboard, region: str) -> str:
    password = json.loads((d.up.state / "secrets.json").read_text())[region]["admin_password"]
    domain = {"name": "Default"}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": domain, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": domain}}}}  # fmt: skip
    r = httpx.post(region_urls(d)[region] + "/identity/v3/auth/tokens", json=body)
    r.raise_for_status()
    return r.headers["X-Subject-Token"]


def fail_a_provider(d: Dashboard, sick: str = "r2", healthy: str = "r1") -> None:
    """Make ``sick`` fail for real: disable its region's hosts (no valid host for any
    server), pause ``healthy`` so requests go to ``sick`` until health takes it out of
    service, then resume ``healthy``, which fulfils them."""
    base = region_urls(d)[sick] + "/compute/v2.1"
    h = {"X-Auth-Token": admin_token(d, sick)}
    for s in httpx.get(base + "/os-services?binary=nova-compute", headers=h).json()["services"]:
        body = {"host": s["host"], "binary": "nova-compute", "disabled_reason": DRAINED}
        httpx.put(base + "/os-services/disable-log-reason", json=body, headers=h).raise_for_status()
    pool = {"Authorization": f"Bearer {d.pool_token}"}

    def post(path: str, body: object = None) -> dict[str, object]:
        r = httpx.post(d.pool_url + path, json=body, headers=pool)
        r.raise_for_status()
        return dict(r.json())

    post(f"/api/providers/{healthy}/pause")
    ids = [post("/api/requests", {"labels": ["tiny"], "requestor": "web-failover"})["id"]
           for _ in range(2)]  # fmt: skip

    def out_of_service() -> bool:
        got = httpx.get(d.pool_url + "/api/providers", headers=pool).json()
        return any(p["name"] == sick and not p["in_service"] for p in got)

    wait_for(out_of_service, 60, f"{sick} to be taken out of service")
    post(f"/api/providers/{healthy}/resume")

    def fulfilled() -> bool:
        reqs = {r["id"]: r for r in httpx.get(d.pool_url + "/request-list.json").json()}
        return all(reqs[i]["state"] == "fulfilled" for i in ids)

    wait_for(fulfilled, 90, f"the requests to fail over to {healthy}")
