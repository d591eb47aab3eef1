"""On a controller host: the health checks of a deploy, asked of the region's own API.

``python -m rackpool.deploy.hostcheck --config region.yaml --spec bootstrap.yaml ACTION``
(the ``rackpool_agent`` role runs it delegated to the host's controller):

- ``host --host H``: H as the region sees it now (registered, enabled, its
  disabled reason, state), one JSON line (``--drain`` re-enables H afterwards only if
  it was enabled before, or disabled by an earlier drain);
- ``snapshot --host H``: the instances on host H now (id, status, address), one JSON line;
- ``agent --host H [--before JSON]``: wait until H is up with a heartbeat newer than
  this check's start (the restarted agent registered and heartbeats); with ``--before``,
  every instance of the snapshot must still be ACTIVE on H (adopted, not lost) or
  deleted by its owner; prints their addresses, which the role checks for SSH from H;
- ``canary-create --host H``: boot a server forced onto H (Nova's admin-only
  ``availability_zone: "ZONE:H"``), wait until it is ACTIVE on H (prints id, host,
  address); ``canary-delete --id ID``: delete it, wait.

Exit 0 when healthy; otherwise exit 1 with one line naming the host and what is wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import httpx

from rackpool.core.config import load_model
from rackpool.core.errors import RackpoolError
from rackpool.deploy.bootstrap import BootstrapSpec


class Unhealthy(Exception):
    pass


class Region:
    """An admin session on the local region API."""

    def __init__(self, config_path: str, spec_path: str) -> None:
        from rackpool.cloud.config import load_region_config

        cfg = load_region_config(config_path)
        spec = load_model(spec_path, BootstrapSpec)
        self.url = f"http://127.0.0.1:{cfg.listen.port}"
        self.admin_project = cfg.admin_project
        self.http = httpx.Client(base_url=self.url, timeout=10)
        auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": spec.admin_password}}},
            "scope": {"project": {"name": cfg.admin_project, "domain": {"name": "Default"}}}}}  # fmt: skip
        r = self.http.post("/identity/v3/auth/tokens", json=auth)
        r.raise_for_status()
        self.http.headers["X-Auth-Token"] = r.headers["X-Subject-Token"]

    def host(self, name: str) -> dict[str, Any] | None:
        r = self.http.get("/admin/v1/hosts")
        r.raise_for_status()
        return next((h for h in r.json()["hosts"] if h["name"] == name), None)

    def servers(self, host: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"all_tenants": "1", "limit": 1000}
        while True:
            r = self.http.get("/compute/v2.1/servers/detail", params=params)
            r.raise_for_status()
            page = r.json()["servers"]
            out += page
            if not r.json().get("servers_links") or not page:
                break
            params["marker"] = page[-1]["id"]
        return [s for s in out if host is None or s.get("OS-EXT-SRV-ATTR:host") == host]

    def server(self, sid: str) -> dict[str, Any] | None:
        r = self.http.get(f"/compute/v2.1/servers/{sid}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        server: dict[str, Any] = r.json()["server"]
        return server


def address(server: dict[str, Any]) -> str | None:
    for addrs in (server.get("addresses") or {}).values():
        for a in addrs:
            if a.get("version", 4) == 4:
                return str(a["addr"])
    return server.get("accessIPv4") or None


def wait(what: str, timeout: float, check: Any, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        try:
            ok, last = check()
            if ok:
                return last
        except httpx.HTTPError as exc:
            last = f"region API: {exc}"
        if time.monotonic() >= deadline:
            raise Unhealthy(f"{what} within {timeout:g}s: {last}")
        time.sleep(interval)


def host_state(region: Region, host: str) -> dict[str, Any]:
    h = region.host(host)
    if h is None:
        return {"name": host, "registered": False, "enabled": False, "disabled_reason": None}
    return {"name": host, "registered": True, "enabled": bool(h["enabled"]),
            "disabled_reason": h.get("disabled_reason"), "state": h["state"]}  # fmt: skip


def snapshot(region: Region, host: str) -> list[dict[str, Any]]:
    return [
        {"id": s["id"], "status": s["status"], "address": address(s)}
        for s in region.servers(host)
        if s["status"] == "ACTIVE"
    ]


def check_agent(region: Region, host: str, timeout: float, before: list[dict[str, Any]]) -> str:
    """Wait until ``host`` heartbeats again and the instances of ``before`` are adopted;
    print the addresses (JSON) the caller then checks for SSH from the host itself."""
    since = time.time()

    def registered() -> tuple[bool, str]:
        h = region.host(host)
        if h is None:
            return False, f"host {host} is not registered"
        beat = float(h.get("last_heartbeat") or 0)
        if h["state"] != "up" or beat < since:
            return False, f"host {host} is {h['state']}, no heartbeat since its agent restarted"
        return True, "up"

    wait(f"host {host} did not register and heartbeat", timeout, registered)
    kept: list[str] = []

    def adopted() -> tuple[bool, str]:
        bad = []
        kept.clear()
        for inst in before:
            s = region.server(inst["id"])
            if s is None:
                continue  # deleted by its owner meanwhile: not lost
            if s["status"] != "ACTIVE" or s.get("OS-EXT-SRV-ATTR:host") != host:
                bad.append(f"instance {inst['id']} is {s['status']}")
            elif inst.get("address"):
                kept.append(inst["address"])
        return (not bad), "; ".join(bad) or "ok"

    if before:
        wait(f"host {host}: instances not adopted", timeout, adopted, interval=1.0)
    return json.dumps({"host": host, "adopted": len(kept), "addresses": kept})


def canary_create(region: Region, host: str, timeout: float) -> str:
    """Boot a canary forced onto ``host`` (``ZONE:HOST``, as the region's admin), so it
    proves that host works and not another of its zone; print its id, host, address."""
    h = region.host(host)
    if h is None:
        raise Unhealthy(f"host {host} is not registered")
    flavors = region.http.get("/compute/v2.1/flavors").json()["flavors"]
    images = region.http.get("/image/v2/images", params={"name": "host"}).json()["images"]
    if not images or not flavors:
        raise Unhealthy(f"no 'host' image or no flavor in the region for a canary on {host}")
    flavor = next((f for f in flavors if f["name"] == "m1.tiny"), flavors[0])
    body = {"server": {"name": f"rackpool-canary-{host}", "imageRef": images[0]["id"],
                       "flavorRef": flavor["id"], "networks": "auto",
                       "availability_zone": f"{h['availability_zone']}:{host}",
                       "metadata": {"rackpool_canary": host}}}  # fmt: skip
    r = region.http.post("/compute/v2.1/servers", json=body)
    if r.status_code >= 400:
        raise Unhealthy(f"canary for {host}: the region refused it: {r.text[:300]}")
    sid = r.json()["server"]["id"]

    def active() -> tuple[bool, str]:
        s = region.server(sid)
        if s is None:
            return False, "canary vanished"
        if s["status"] == "ERROR":
            fault = (s.get("fault") or {}).get("message", "")
            region.http.delete(f"/compute/v2.1/servers/{sid}")
            raise Unhealthy(f"canary on {host} went ERROR: {fault}")
        return s["status"] == "ACTIVE", f"canary is {s['status']}"

    try:
        wait(f"canary on {host} did not become ACTIVE", timeout, active)
    except Unhealthy:
        region.http.delete(f"/compute/v2.1/servers/{sid}")
        raise
    s = region.server(sid) or {}
    landed = s.get("OS-EXT-SRV-ATTR:host")
    if landed != host:
        region.http.delete(f"/compute/v2.1/servers/{sid}")
        raise Unhealthy(f"canary for {host} was placed on {landed}, not on {host}")
    return json.dumps({"id": sid, "host": landed, "address": address(s)})


def canary_delete(region: Region, sid: str, timeout: float) -> str:
    region.http.delete(f"/compute/v2.1/servers/{sid}")
    wait(
        f"canary {sid} was not deleted",
        timeout,
        lambda: (region.server(sid) is None, "still there"),
    )
    return f"canary {sid} deleted"


def connect(config: str, spec: str, timeout: float) -> Region:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return Region(config, spec)
        except httpx.HTTPError as exc:
            if time.monotonic() >= deadline:
                raise Unhealthy(
                    f"the region API did not answer within {timeout:g}s: {exc}"
                ) from None
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rackpool.deploy.hostcheck")
    ap.add_argument("--config", required=True, help="region.yaml")
    ap.add_argument("--spec", required=True, help="bootstrap.yaml (the admin password)")
    sub = ap.add_subparsers(dest="action", required=True)
    for name in ("host", "snapshot", "agent", "canary-create", "canary-delete"):
        p = sub.add_parser(name)
        p.add_argument("--host", required=name != "canary-delete")
        p.add_argument("--id", required=name == "canary-delete")
        p.add_argument("--timeout", type=float, default=120)
        if name == "agent":
            p.add_argument("--before", default="[]", help="JSON from snapshot")
    args = ap.parse_args(argv)
    try:
        region = connect(args.config, args.spec, 60)
        if args.action == "host":
            print(json.dumps(host_state(region, args.host)))
        elif args.action == "snapshot":
            print(json.dumps(snapshot(region, args.host)))
        elif args.action == "agent":
            print(check_agent(region, args.host, args.timeout, json.loads(args.before)))
        elif args.action == "canary-create":
            print(canary_create(region, args.host, args.timeout))
        else:
            print(canary_delete(region, args.id, args.timeout))
    except (Unhealthy, RackpoolError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
