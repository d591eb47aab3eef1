"""Cold start of ``rackpool pool serve`` on container hosts, its delete path, and the floor.

Run through ``bench/pool.py --only coldstart`` (root, runc, sshd). In one region with 2
container hosts, each round measures, in this order:

floor   the bare container start: the container driver itself (overlay, netns, OCI
        bundle, ``runc run``) booting 2 containers at once, one per host bridge, until
        sshd answers on both (its SSH banner read from this host). No controller, no
        agent, no pool: what a cold start can never beat.
cold    ``rackpool pool serve`` exec'd as an operator runs it (``python -m rackpool.cli``,
        min-ready 2, host-key-checking on, ``poll-interval`` as ``rackpool up`` sets it):
        exec -> API answering (``GET /ready`` gives any HTTP answer), and exec -> 2 nodes
        ready (each with its SSH host keys scanned; the instant its log says so), and
        the daemon's CPU time by then (less noisy than wall time on a shared machine).
delete  one of those nodes requested, then released as used: release -> the region
        answers 404 for its server (the pool's delete call landed), -> its container gone
        from the host, -> its server record purged (the agent reported it destroyed;
        the address and quota are free again). "Server gone" is the last one.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

TOKEN = "bench-token-123"
CIDR = "198.19.227.0/24"
FLOOR_ADDRESSES = ("198.19.227.250", "198.19.227.251")  # above what the region hands out


def _until(pred: Callable[[], object], timeout: float, interval: float = 0.005) -> float:
    """Poll ``pred`` until true; the perf_counter() instant it first held."""
    deadline = time.perf_counter() + timeout
    while True:
        if pred():
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"not within {timeout} s: {getattr(pred, '__name__', pred)}")
        time.sleep(interval)


def _banner(address: str) -> bool:
    """sshd answers: a TCP connect gets its SSH identification line."""
    try:
        with socket.create_connection((address, 22), timeout=0.5) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


class Floor:
    """Container drivers on the rack's host bridges, outside any agent."""

    def __init__(self, rack: Any, work: Path, public_key: str) -> None:
        from rackpool.agent.virt.container import ContainerConfig, ContainerDriver

        self.public_key = public_key
        self.gateway = str(rack.region.config.network.gateway)
        self.drivers = [
            ContainerDriver(ContainerConfig(), work / f"floor-{n}", f"floor{n}", bridge)
            for n, bridge in enumerate(sorted(rack.bridges.values()))
        ]
        self._seq = 0

    def _spec(self, n: int) -> Any:
        from rackpool.core.instance import FlavorSpec, ImageSpec, InstanceSpec, NetworkSpec

        self._seq += 1
        return InstanceSpec(
            id=f"floor-{n}-{self._seq}",
            name=f"floor{n}",
            hostname=f"floor{n}",
            image=ImageSpec(id="host", name="host", builtin="host"),
            flavor=FlavorSpec(
                "1", "m1.tiny", 1, 256, 1
            ),  # the region's m1.tiny, as the pool's label
            network=NetworkSpec(FLOOR_ADDRESSES[n], 24, self.gateway, f"fa:16:3e:ff:00:{n:02x}"),
            keys=(self.public_key,),
        )

    def start_pair(self) -> float:
        """Seconds from the first spawn call to sshd answering in both containers."""
        from rackpool.agent.virt.base import LocalImage

        specs = [self._spec(n) for n in range(len(self.drivers))]
        image = LocalImage("host", "host")

        def boot(n: int) -> float:
            s = specs[n]
            self.drivers[n].spawn(s, image, s.flavor, s.network, s.keys, None)
            return _until(lambda: _banner(s.network.address), 10)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(specs)) as ex:
            done = max(ex.map(boot, range(len(specs))))
        for d, s in zip(self.drivers, specs, strict=True):
            d.destroy(s.id)  # not timed
        return done - t0

    def close(self) -> None:
        for d in self.drivers:
            for inst in d.list():
                d.destroy(inst.id)


class ServePool:
    """``rackpool pool serve`` as a child process on a fixed loopback port."""

    def __init__(self, work: Path, provider: dict[str, Any], port: int) -> None:
        self.dir = work
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = work / "pool.yaml"
        self.config.write_text(yaml.safe_dump({
            "state-dir": str(work / "state"),
            "labels": [{"name": "small", "min-ready": 2}],
            "providers": [provider],
            "api": {"token": TOKEN, "port": port},
        }))  # fmt: skip
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> tuple[float, float]:
        """Exec the daemon; the perf_counter() and wall-clock instants of the exec."""
        log = open(self.dir / "pool.log", "ab")  # noqa: SIM115 - the child writes it
        t0, wall = time.perf_counter(), time.time()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rackpool.cli", "pool", "serve", "--config", str(self.config)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        return t0, wall

    def ready_at(self, n: int) -> float | None:
        """Wall-clock time of the daemon's n-th ``node_ready`` log line, if written yet.

        Read from its JSON log, not asked over its API: polling the API every few ms
        would cost the daemon CPU time while it starts (2 cores here).
        """
        seen = []
        for line in (self.dir / "pool.log").read_text(errors="replace").splitlines():
            if '"node_ready"' in line:
                stamp = json.loads(line)["ts"].replace("Z", "+00:00")
                seen.append(datetime.fromisoformat(stamp).timestamp())
        return seen[n - 1] if len(seen) >= n else None

    def answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"pool exited {self.proc.returncode}: {self.log()}")
        try:
            self.http.get("/ready", timeout=0.5)
        except httpx.TransportError:
            return False
        return True

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the daemon has used so far: less noisy than wall time."""
        assert self.proc is not None
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

    def nodes(self) -> list[dict[str, Any]]:
        return list(self.http.get("/api/nodes").json())

    def ready(self) -> list[dict[str, Any]]:
        return [n for n in self.nodes() if n["state"] == "ready"]

    def log(self) -> str:
        return (self.dir / "pool.log").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        self.http.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _server_row(rack: Any, server_id: str) -> bool:
    """The region still holds a record of the server (deleted or not)."""
    from sqlalchemy import select

    from rackpool.cloud.db.schema import servers

    with rack.region.region.engine.connect() as conn:
        return (
            conn.execute(select(servers.c.id).where(servers.c.id == server_id)).first() is not None
        )


def _api_404(conn: Any, server_id: str) -> bool:
    """The project's API says the server is gone (404), as a CI user would see it."""
    import openstack.exceptions

    try:
        conn.compute.get_server(server_id)
    except openstack.exceptions.NotFoundException:
        return True
    return False


def _delete_latency(rack: Any, pool: ServePool, sample: dict[str, list[float]]) -> None:
    rid = pool.http.post("/api/requests", json={"labels": ["small"]}).json()["id"]
    req = pool.http.get(f"/api/requests/{rid}", params={"wait": 30}).json()
    if req["state"] != "fulfilled":
        raise RuntimeError(f"request not fulfilled: {req}")
    node = pool.http.get(f"/api/nodes/{req['nodes'][0]['id']}").json()
    ext = node["external_id"]
    conn = rack.region.connect()  # the ci project's view, authenticated before timing
    assert not _api_404(conn, ext) and _server_row(rack, ext)
    assert ext in {p.name for p in rack.instance_dirs()}, f"no container for {ext}"
    checks: dict[str, Callable[[], bool]] = {
        "api": lambda: _api_404(conn, ext),
        "container": lambda: ext not in {p.name for p in rack.instance_dirs()},
        "purged": lambda: not _server_row(rack, ext),
    }
    t0 = time.perf_counter()
    pool.http.post(f"/api/nodes/{node['id']}/release")
    marks: dict[str, float] = {}

    def gone() -> bool:
        for what, check in checks.items():
            if what not in marks and check():
                marks[what] = time.perf_counter()
        return len(marks) == len(checks)

    _until(gone, 30, interval=0.01)
    for k, v in marks.items():
        sample[k].append(v - t0)


def run(tmp: Path, rounds: int, poll: float = 0.2) -> None:
    from tests.functional.agent.helpers import make_keypair
    from tests.support.container_region import KEY_NAME, container_region, container_unavailable
    from tests.support.region import free_port

    why = container_unavailable()
    if why is not None:
        print(f"(d) cold start on container hosts: skipped: {why}")
        return
    work = tmp / "coldstart"
    work.mkdir()
    label = {"name": "small", "cloud-image": "host", "flavor-name": "m1.tiny",
             "key-name": KEY_NAME, "username": "root"}  # fmt: skip
    times: dict[str, list[float]] = {
        k: [] for k in ("floor", "serving", "ready", "cpu", "api", "container", "purged")
    }
    with container_region(work, CIDR, hosts=2) as rack:
        provider = {
            "name": rack.name, "driver": "openstack", "cloud": f"rackpool-{rack.name}",
            "region-name": rack.name, "clouds-yaml": str(rack.clouds_yaml),
            "host-key-checking": True, "poll-interval": poll, "boot-timeout": 60,
            "pools": [{"labels": [label]}],
        }  # fmt: skip
        (work / "floor-key").mkdir()
        floor = Floor(rack, work, make_keypair(work / "floor-key")[1])
        load, failed = os.getloadavg()[0], []
        try:
            for r in range(rounds):
                try:
                    times["floor"].append(floor.start_pair())
                    _round(rack, ServePool(work / f"round-{r}", provider, free_port()), times)
                except Exception as exc:  # noqa: BLE001 - report it, measure the others
                    failed.append(f"round {r}: {exc!r}"[:300])
        finally:
            floor.close()
    _report(times, poll)
    print(f"(d) load average (1 min) before/after: {load:.1f}/{os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs; {len(failed)} of {rounds} rounds failed "
          f"{'; '.join(failed)}")  # fmt: skip


def _round(rack: Any, pool: ServePool, times: dict[str, list[float]]) -> None:
    try:
        t0, wall = pool.start()
        times["serving"].append(_until(pool.answers, 20) - t0)
        _until(lambda: pool.ready_at(2), 60, 0.01)
        times["cpu"].append(pool.cpu_seconds())  # a few ms after the second node_ready
        times["ready"].append((pool.ready_at(2) or 0.0) - wall)
        assert len(pool.ready()) >= 2, pool.nodes()
        _delete_latency(rack, pool, times)
    finally:
        pool.stop()
        _empty(rack)


def _empty(rack: Any) -> None:
    """Delete every server (not timed) so the next round starts cold."""
    for s in rack.servers():
        rack.admin.compute.delete_server(s)
    _until(lambda: not rack.servers() and not rack.instance_dirs(), 60, 0.05)


def _report(t: dict[str, list[float]], poll: float) -> None:
    def med(k: str) -> float:
        return statistics.median(t[k]) if t[k] else float("nan")

    def ms(k: str) -> str:
        if not t[k]:
            return "no sample"
        return (
            f"p50 {med(k) * 1000:.0f} ms (min {min(t[k]) * 1000:.0f}, max {max(t[k]) * 1000:.0f})"
        )

    n, floor = len(t["ready"]), med("floor")
    print(f"(d) floor: bare container start, 2 at once (driver + runc run -> sshd answers), "
          f"n={len(t['floor'])}: {ms('floor')}")  # fmt: skip
    print(f"(d) cold start: rackpool pool serve exec -> API answering, n={n}: {ms('serving')}  "
          f"= {med('serving') / floor:.2f} x floor   [target < 0.5 s]")  # fmt: skip
    print(f"(d) cold start: exec -> 2 ready nodes (container hosts, host keys scanned, "
          f"poll-interval {poll} s), n={n}: {ms('ready')}  = {med('ready') / floor:.2f} x floor   "
          f"[target < 1.5 s]; the daemon's CPU time by then: {ms('cpu')}")  # fmt: skip
    print(f"(e) release -> region API 404: {ms('api')};  -> container gone from its host: "
          f"{ms('container')};  -> server record purged (server gone): {ms('purged')}   "
          f"[target < 1 s]")  # fmt: skip
