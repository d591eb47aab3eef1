"""Region controller benchmark: server creates/deletes through openstacksdk, and
GET /servers/detail at 10,000 servers, with in-process fake hosts.

Run: .venv/bin/python bench/cloud_api.py [--servers 1000] [--threads 8] [--listing 10000]
The controller runs as its own process (``rackpool cloud serve``) so its RSS is its own.
Prints figures; targets on a 2-core machine: >= 100 creates/s accepted,
detail listing of 10,000 servers < 0.5 s, controller RSS < 200 MB.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.region import RegionProcess, connect  # noqa: E402

from rackpool.cloud.config import RegionConfig  # noqa: E402
from rackpool.cloud.db.engine import make_engine  # noqa: E402
from rackpool.cloud.db.schema import addresses, servers  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def create_delete(region: RegionProcess, n: int, threads: int) -> None:
    conns = [connect(region.clouds_yaml, "rackpool-r1") for _ in range(threads)]
    for c in conns:
        c.compute.flavors()  # authenticate before timing
        list(c.compute.flavors())
    per = n // threads

    def create(i: int) -> list[str]:
        c = conns[i]
        return [
            c.compute.create_server(name=f"b{i}-{j}", image_id="host", flavor_id="1").id
            for j in range(per)
        ]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as ex:
        ids = [sid for chunk in ex.map(create, range(threads)) for sid in chunk]
    dt = time.perf_counter() - t0
    print(f"create: {len(ids)} servers accepted in {dt:.2f}s = {len(ids) / dt:.0f} creates/s "
          f"({threads} threads, openstacksdk)")  # fmt: skip
    c = conns[0]
    t0 = time.perf_counter()
    deadline = time.monotonic() + 120
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = {}
        for s in c.compute.servers(details=True):
            counts[s.status] = counts.get(s.status, 0) + 1
        if not counts.get("BUILD"):
            break
        time.sleep(0.2)
    print(f"settled after a further {time.perf_counter() - t0:.2f}s (fake hosts): {counts}")

    def delete(i: int) -> None:
        for sid in ids[i::threads]:
            conns[i].compute.delete_server(sid)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(delete, range(threads)))
    dt = time.perf_counter() - t0
    print(f"delete: {len(ids)} servers in {dt:.2f}s = {len(ids) / dt:.0f} deletes/s")


def fill(region: RegionProcess, project_id: str, count: int) -> None:
    """Insert rows directly: the listing benchmark is about reading, not creating."""
    engine = make_engine(RegionConfig.model_validate(region.config.model_dump()).database_url())
    now = time.time()
    rows, addrs = [], []
    for i in range(count):
        sid = str(uuid.uuid4())
        a = f"198.18.{64 + i // 250}.{1 + i % 250}"
        rows.append({
            "id": sid, "seq": 10_000_000 + i, "project_id": project_id, "user_id": "bench",
            "name": f"fill-{i}", "hostname": f"fill-{i}", "status": "ACTIVE", "task_state": None,
            "deleted": False, "host": "r1-fake1", "flavor_id": "1", "vcpus": 1, "ram": 256, "disk": 1,
            "image_id": "host", "key_name": None, "public_key": None, "address": a,
            "mac": "fa:16:3e:00:00:01", "availability_zone": "nova",
            "metadata": {"rackpool_pool": "bench", "rackpool_node_id": str(i)},
            "user_data": None, "config_drive": False, "security_groups": ["default"],
            "host_keys": [], "console_log": "", "created_at": now, "updated_at": now,
            "launched_at": now,
        })  # fmt: skip
        addrs.append({"address": a, "server_id": sid, "allocated_at": now})
    with engine.begin() as conn:
        conn.execute(insert(servers), rows)
        conn.execute(insert(addresses), addrs)
    engine.dispose()


def listing(region: RegionProcess, count: int) -> None:
    conn = connect(region.clouds_yaml, "rackpool-r1")
    project_id = conn.current_project_id
    fill(region, project_id, count)
    token = conn.auth_token
    client = httpx.Client(base_url=region.url, headers={"X-Auth-Token": token}, timeout=60)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        r = client.get("/compute/v2.1/servers/detail", params={"limit": count})
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200 and len(r.json()["servers"]) >= min(count, 1000)
    got = len(r.json()["servers"])
    print(f"GET /servers/detail (one page of {got}): median {statistics.median(times):.3f}s, "
          f"max {max(times):.3f}s, {len(r.content) / 1e6:.1f} MB")  # fmt: skip
    t0 = time.perf_counter()
    all_servers = list(conn.compute.servers(details=True))
    dt = time.perf_counter() - t0
    print(f"openstacksdk list of all {len(all_servers)} servers (pages of 1000): {dt:.3f}s")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--listing", type=int, default=10_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        # room for every benchmark server (the default fake host fits ~256 m1.tiny)
        hosts = [
            {"name": f"r1-fake{i}", "build_delay": 0.05, "vcpus": 1024, "ram_mb": 1 << 20}
            for i in (1, 2)
        ]
        region = RegionProcess(
            Path(d), page_limit=max(1000, a.listing), fake_hosts=hosts,
            hosts={"heartbeat_interval": 2, "heartbeat_timeout": 60},
            default_quota={"instances": -1, "cores": -1, "ram": -1},  # a load test's tenant
        ).start()  # fmt: skip
        try:
            assert region.proc is not None
            create_delete(region, a.servers, a.threads)
            print(f"controller RSS after create/delete: {rss_mb(region.proc.pid):.0f} MB")
            listing(region, a.listing)
            print(f"controller RSS at {a.listing} servers: {rss_mb(region.proc.pid):.0f} MB")
        finally:
            region.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
