"""API server creates per second: two region controllers on one PostgreSQL vs one.

Both runs go through HAProxy (with one backend, then two), on the same PostgreSQL
cluster (Debian's, started here, no fsync) and fake hosts, with ``--threads`` client
threads spread over ``--tenants`` projects creating servers for ``--seconds``; then
everything is deleted (not timed). Prints one line per run and the ratio::

    .venv/bin/python bench/ha_controllers.py --seconds 10

``measure(seconds, threads, tenants)`` returns the figures, for bench/ha.py.
Every process started here is stopped by PID, the cluster directory removed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.haproxy import ControllerProcess, haproxy  # noqa: E402
from tests.support.region import free_port, region_config  # noqa: E402

from rackpool.cli.localservices import PostgresCluster  # noqa: E402
from rackpool.cloud.region import Region  # noqa: E402

PASSWORD = "bench-tenant-password"


def _token(url: str, project: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": project, "domain": {"name": "Default"}, "password": PASSWORD}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}  # fmt: skip
    r = httpx.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=30)
    r.raise_for_status()
    return r.headers["X-Subject-Token"]


def _load(url: str, seconds: float, threads: int, tenants: int) -> tuple[int, int, float]:
    """Creates accepted (202) and failed from ``threads`` clients for ``seconds``."""
    tokens = [_token(url, f"b{i}") for i in range(tenants)]
    ok = [0] * threads
    bad = [0] * threads
    start = time.monotonic()
    end = start + seconds

    def client(n: int) -> None:
        http = httpx.Client(base_url=url, timeout=60, headers={"X-Auth-Token": tokens[n % tenants]})
        body = {"server": {"name": f"b{n}", "imageRef": "host", "flavorRef": "1"}}
        while time.monotonic() < end:
            try:
                r = http.post("/compute/v2.1/servers", json=body)
            except httpx.TransportError:
                bad[n] += 1
                continue
            if r.status_code == 202:
                ok[n] += 1
            else:
                bad[n] += 1

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(ok), sum(bad), time.monotonic() - start


def _cleanup(url: str, tenants: int) -> None:
    for i in range(tenants):
        http = httpx.Client(
            base_url=url, timeout=60, headers={"X-Auth-Token": _token(url, f"b{i}")}
        )
        while True:
            listed = http.get("/compute/v2.1/servers", params={"limit": 1000}).json()["servers"]
            if not listed:
                break
            for s in listed:
                http.delete(f"/compute/v2.1/servers/{s['id']}")


def _run(
    work: Path, url: str, controllers: int, seconds: float, threads: int, tenants: int
) -> dict[str, Any]:
    state = work / f"state-{controllers}"
    hosts = [{"name": f"bh{i}", "build_delay": 0.0} for i in range(8)]
    config = region_config(
        state, "bench", database=url, fake_hosts=hosts,
        default_quota={"instances": -1, "cores": -1, "ram": -1},
        network={"cidr": "198.18.0.0/16"},
    )  # fmt: skip
    region = Region.open(config)
    try:
        for i in range(tenants):
            region.ensure_project(f"b{i}", f"b{i}", PASSWORD, "member")
    finally:
        region.close()
    procs = []
    try:
        for i in range(controllers):
            # the fake hosts run in the first controller only (they are in-process)
            cfg = config if i == 0 else config.model_copy(update={"fake_hosts": []})
            procs.append(ControllerProcess(state, cfg, free_port(), i + 1).spawn())
        for p in procs:
            p.wait_started()
        with haproxy(work / f"lb-{controllers}", [p.port for p in procs]) as lb:
            ok, bad, took = _load(lb.url, seconds, threads, tenants)
            _cleanup(lb.url, tenants)
    finally:
        for p in procs:
            p.stop()
    return {"controllers": controllers, "creates": ok, "failed": bad,
            "seconds": round(took, 2), "creates_per_s": round(ok / took, 1)}  # fmt: skip


def measure(seconds: float = 10, threads: int = 16, tenants: int = 8) -> dict[str, Any]:
    """Creates/s through HAProxy with one controller, then two, on one PostgreSQL."""
    with tempfile.TemporaryDirectory(prefix="rackpool-bench-ha-") as tmp:
        pg = PostgresCluster.create(durable=False).start()
        try:
            one = _run(Path(tmp), pg.create_database("bench1"), 1, seconds, threads, tenants)
            two = _run(Path(tmp), pg.create_database("bench2"), 2, seconds, threads, tenants)
        finally:
            pg.stop()
    return {"one": one, "two": two, "ratio": round(two["creates_per_s"] / one["creates_per_s"], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--tenants", type=int, default=8)
    args = ap.parse_args()
    figures = measure(args.seconds, args.threads, args.tenants)
    for key in ("one", "two"):
        f = figures[key]
        print(f"{f['controllers']} controller(s): {f['creates']} creates in {f['seconds']} s = "
              f"{f['creates_per_s']}/s ({f['failed']} failed)")  # fmt: skip
    print(f"two vs one: {figures['ratio']}x")


if __name__ == "__main__":
    main()
