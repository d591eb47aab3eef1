"""Fairness benchmark: is a region still responsive while tenants push it?

Starts a region (``rackpool cloud serve``, its own process, with in-process fake hosts)
and measures the latency of region ``GET /`` and of an agent heartbeat
(``POST /agent/v1/hosts/NAME/heartbeat`` over HTTP) in two phases:

  load     8 threads create servers through openstacksdk
  hostile  one of each hostile request at once: a catastrophic-backtracking ``?name=``
           filter over servers with long names, an image upload near the size cap, a
           create on a full address range, a create over quota

Run: .venv/bin/python bench/fairness.py [--seconds 10] [--threads 8]
Prints p50/p99 per phase and probe; goal p99 < 100 ms in both phases.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.region import AGENT_TOKEN, RegionProcess, connect  # noqa: E402

MiB = 1024 * 1024
IMAGE_CAP = 64 * MiB
LONG = "a" * 240


def token(url: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "ci", "domain": {"name": "Default"}, "password": "ci-secret-password"}}},
        "scope": {"project": {"name": "ci", "domain": {"name": "Default"}}}}}  # fmt: skip
    r = httpx.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=10)
    r.raise_for_status()
    return r.headers["X-Subject-Token"]


class Probe:
    """Time ``GET /`` and a heartbeat, one after the other, until stopped."""

    def __init__(self, url: str, host: str) -> None:
        self.url, self.host = url, host
        self.root: list[float] = []
        self.beat: list[float] = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as c:
            reg = {"name": self.host, "vcpus": 8, "ram_mb": 8192, "disk_gb": 100, "driver": "fake"}
            r = c.post("/agent/v1/hosts", json=reg, headers={"X-Agent-Token": AGENT_TOKEN})
            r.raise_for_status()
            cred = r.json().get("credential", AGENT_TOKEN)  # the host's own, once enrolled
            while not self.stop.is_set():
                for path, out in (("/", self.root), ("beat", self.beat)):
                    t0 = time.perf_counter()
                    try:
                        if path == "/":
                            r = c.get("/")
                        else:
                            r = c.post(f"/agent/v1/hosts/{self.host}/heartbeat", json={},
                                       headers={"X-Agent-Token": cred})  # fmt: skip
                        ok = r.status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    out.append(time.perf_counter() - t0)
                    self.errors += not ok
                self.stop.wait(0.01)


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000


def report(phase: str, probe: Probe, extra: str) -> None:
    for name, xs in (("GET /", probe.root), ("heartbeat", probe.beat)):
        print(f"{phase:8} {name:10} n={len(xs):5d} p50={pct(xs, 50):7.1f} ms "
              f"p99={pct(xs, 99):7.1f} ms max={max(xs, default=0) * 1000:7.1f} ms")  # fmt: skip
    print(f"{phase:8} probe errors={probe.errors}; {extra}")


def measure(region: RegionProcess, phase: str, work: Callable[[threading.Event], str]) -> None:
    probe = Probe(region.url, f"probe-{phase}")
    t = threading.Thread(target=probe.run, daemon=True)
    t.start()
    done = threading.Event()
    try:
        extra = work(done)
    finally:
        probe.stop.set()
        t.join(20)
    report(phase, probe, extra)


def load(region: RegionProcess, threads: int, seconds: float) -> Callable[[threading.Event], str]:
    def work(done: threading.Event) -> str:
        conns = [connect(region.clouds_yaml, "rackpool-r1") for _ in range(threads)]
        for c in conns:
            list(c.compute.flavors())  # authenticate first
        counts = [0] * threads
        deadline = time.monotonic() + seconds

        def creator(i: int) -> None:
            while time.monotonic() < deadline:
                sid = (
                    conns[i]
                    .compute.create_server(
                        name=f"load-{i}-{counts[i]}",
                        image_id="host",
                        flavor_id="1",
                        networks="none",
                    )
                    .id
                )
                conns[i].compute.delete_server(sid)
                counts[i] += 1

        ts = [threading.Thread(target=creator, args=(i,)) for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return f"{sum(counts)} servers created and deleted by {threads} threads in {seconds:.0f}s"

    return work


def hostile(region: RegionProcess, seconds: float) -> Callable[[threading.Event], str]:
    url = region.url

    def work(done: threading.Event) -> str:
        tok = token(url)
        h = {"X-Auth-Token": tok}
        c = httpx.Client(base_url=url, headers=h, timeout=300)
        for i in range(20):  # long names for the regex to chew on (networks none: no address)
            c.post(
                "/compute/v2.1/servers",
                json={
                    "server": {
                        "name": f"{LONG}-{i}",
                        "imageRef": "host",
                        "flavorRef": "1",
                        "networks": "none",
                    }
                },
            )
        # fill the address range so creates that want an address hit a full range
        while True:
            r = c.post(
                "/compute/v2.1/servers",
                json={"server": {"name": "fill", "imageRef": "host", "flavorRef": "1"}},
            )
            sid = r.json()["server"]["id"]
            if c.get(f"/compute/v2.1/servers/{sid}").json()["server"]["status"] == "ERROR":
                break
        results: dict[str, str] = {}
        deadline = time.monotonic() + seconds

        def regex() -> None:
            n = 0
            while time.monotonic() < deadline:
                r = c.get("/compute/v2.1/servers/detail", params={"name": "(a+)+$"})
                n += r.status_code == 200
            results["regex"] = f"{n} catastrophic ?name= lists"

        def upload() -> None:
            n = 0
            while time.monotonic() < deadline:
                r = c.post("/image/v2/images", json={"name": "big", "disk_format": "raw",
                                                      "container_format": "bare"})  # fmt: skip
                iid = r.json()["id"]

                def body() -> Iterator[bytes]:
                    for _ in range(IMAGE_CAP // MiB - 1):
                        yield b"z" * MiB

                c.put(f"/image/v2/images/{iid}/file", content=body(),
                      headers={"Content-Type": "application/octet-stream"})  # fmt: skip
                c.delete(f"/image/v2/images/{iid}")
                n += 1
            results["upload"] = f"{n} uploads of {IMAGE_CAP // MiB - 1} MiB"

        def full_range() -> None:
            n = 0
            while time.monotonic() < deadline:
                r = c.post(
                    "/compute/v2.1/servers",
                    json={"server": {"name": "no-room", "imageRef": "host", "flavorRef": "1"}},
                )
                c.delete(f"/compute/v2.1/servers/{r.json()['server']['id']}")
                n += 1
            results["full"] = f"{n} creates on a full range"

        def over_quota() -> None:
            n = 0
            while time.monotonic() < deadline:
                r = c.post(
                    "/compute/v2.1/servers",
                    json={
                        "server": {
                            "name": "greedy",
                            "imageRef": "host",
                            "flavorRef": "4",
                            "networks": "none",
                            "min_count": 100,
                            "max_count": 100,
                        }
                    },
                )
                n += r.status_code == 403
            results["quota"] = f"{n} over-quota creates"

        ts = [threading.Thread(target=f) for f in (regex, upload, full_range, over_quota)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        c.close()
        return "; ".join(results[k] for k in ("regex", "upload", "full", "quota"))

    return work


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="per phase")
    ap.add_argument("--threads", type=int, default=8)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        region = RegionProcess(
            Path(d), fake_hosts=[{"name": "r1-fake1", "build_delay": 0.05},
                                 {"name": "r1-fake2", "build_delay": 0.05}],
            hosts={"heartbeat_interval": 0.5, "heartbeat_timeout": 10},
            network={"cidr": "198.18.0.0/26"},
            default_quota={"instances": 100, "cores": 400, "ram": 409600},
            images={"max_size": IMAGE_CAP, "project_bytes": -1},
        ).start()  # fmt: skip
        try:
            measure(region, "load", load(region, a.threads, a.seconds))
            measure(region, "hostile", hostile(region, a.seconds))
        finally:
            region.stop()
    print("goal: p99 < 100 ms for GET / and heartbeat in both phases")


if __name__ == "__main__":
    main()
