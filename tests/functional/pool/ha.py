"""Several ``rackpool pool serve`` processes on one store, bounded churn against them, and
the invariants counted from the pool's and the clouds' own records.

    pool = Launchers(tmp, store={"zookeeper": {...}}, n=3).start()
    churn = Churn(pool, cycles=300, workers=6)
    churn.run(at={100: lambda: pool.kill(0)})      # callbacks at a cycle count
    report = check(pool, churn)                     # raises AssertionError on a violation

The fake providers keep their servers in SQLite files (``cloud-file``) every launcher
shares; each file also records every create with its node id and the most servers that
ever existed at once. Used by tests/functional/pool/test_launchers_ha.py and bench/ha.py.
"""

from __future__ import annotations

import collections
import contextlib
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from rackpool.core.clock import Timeout, iterate_timeout
from rackpool.core.errors import Conflict, NotFound, TemporaryError
from rackpool.pool.client import PoolClient
from rackpool.pool.drivers.fake import SharedFakeCloud

from .daemon import PoolProcess

TOKEN = "ha-test-token-123"
# f1 offers both labels, f2 only "small": a [small, big] request can only go to f1;
# f3's "slow" label (3 s boots) is never churned: requests a test wants pending
PROVIDERS: dict[str, tuple[tuple[str, ...], int] | tuple[tuple[str, ...], int, float]] = {
    "f1": (("small", "big"), 4),
    "f2": (("small",), 3),
    "f3": (("slow",), 9, 3.0),
}  # labels, max-servers[, boot-delay]
LABEL_SETS = (["small"], ["small"], ["big"], ["small", "small"], ["small", "big"])


def fake_provider(
    name: str, cloud_file: Path, labels: tuple[str, ...], max_servers: int, **kw: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "driver": "fake",
        "cloud-file": str(cloud_file),
        "boot-delay": 0.05,
        "max-concurrency": 4,
        "pools": [
            {
                "name": "main",
                "max-servers": max_servers,
                "labels": [{"name": lab, "cores": 1, "ram": 512} for lab in labels],
            }
        ],
        **kw,
    }


class Launchers:
    """N launcher processes with the same pool config (store, providers), each with its
    own state-dir (its pool.json) and log."""

    def __init__(
        self,
        tmp: Path,
        store: dict[str, Any],
        n: int,
        min_ready: int = 1,
        boot_delay: float = 0.05,
        providers: dict[str, Any] | None = None,
        provider_options: dict[str, Any] | None = None,
    ) -> None:
        self.tmp = tmp
        self.providers = providers or PROVIDERS
        self.cloud_files = {name: tmp / f"cloud-{name}.sqlite" for name in self.providers}
        provs = [
            fake_provider(
                name, self.cloud_files[name], spec[0], spec[1],
                **{"boot-delay": spec[2] if len(spec) > 2 else boot_delay},
                **(provider_options or {}),
            )
            for name, spec in self.providers.items()
        ]  # fmt: skip
        labels = sorted({lab for spec in self.providers.values() for lab in spec[0]})
        self.procs: list[PoolProcess] = []
        for i in range(n):
            cfg = {
                "pool-name": "ha",
                "state-dir": str(tmp / f"launcher{i}" / "state"),
                "store": store,
                "api": {"listen": "127.0.0.1", "port": 0, "token": TOKEN, "workers": 16},
                "timing": {"tick-interval": 0.05, "cleanup-interval": 0.5},
                "labels": [
                    {"name": lab, "min-ready": min_ready if lab == "small" else 0} for lab in labels
                ],
                "providers": provs,
            }
            self.procs.append(PoolProcess(tmp / f"launcher{i}", cfg))
        self.dead: set[int] = set()
        self._clients: dict[int, PoolClient] = {}
        self.store = store

    def start(self) -> Launchers:
        try:
            for p in self.procs:
                p.start(timeout=30)
        except BaseException:
            self.stop()
            raise
        return self

    def live(self) -> list[int]:
        return [i for i in range(len(self.procs)) if i not in self.dead]

    def client(self, i: int) -> PoolClient:
        if i not in self._clients:
            self._clients[i] = PoolClient(self.procs[i].url, TOKEN, timeout=60)
        return self._clients[i]

    def launcher_id(self, i: int) -> str:
        return next(str(r["id"]) for r in self.client(i).launchers() if r["self"])

    def request_holders(self, ids: list[str]) -> dict[str, str]:
        """Which launcher holds each request's lock, read from ZooKeeper itself."""
        import json

        from kazoo.client import KazooClient
        from kazoo.exceptions import NoNodeError

        zk = self.store["zookeeper"]
        client = KazooClient(zk["hosts"] + zk["chroot"])
        client.start(timeout=15)
        try:
            out = {}
            for rid in ids:
                with contextlib.suppress(NoNodeError):
                    out[rid] = json.loads(client.get(f"/requests-lock/{rid}")[0])["launcher"]
            return out
        finally:
            client.stop()
            client.close()

    def kill(self, i: int) -> None:
        """kill -9 launcher ``i`` (by its PID)."""
        self.dead.add(i)
        self.procs[i].kill()

    def stop(self) -> None:
        for c in self._clients.values():
            c.close()
        for p in self.procs:
            p.stop()

    def clouds(self) -> dict[str, SharedFakeCloud]:
        return {name: SharedFakeCloud(str(path)) for name, path in self.cloud_files.items()}

    def logs(self, i: int) -> str:
        return self.procs[i].log_path.read_text(errors="replace")

    def rows(self, what: str, launcher: int | None = None) -> list[dict[str, Any]]:
        """/node-list.json or /request-list.json from ``launcher`` or any live one."""
        with contextlib.suppress(Timeout):
            for attempt in iterate_timeout(10, f"a launcher answering /{what}.json", 0.1):
                i = self.live()[attempt % len(self.live())] if launcher is None else launcher
                with contextlib.suppress(httpx.TransportError):
                    resp = httpx.get(f"{self.procs[i].url}/{what}.json", timeout=30)
                    if resp.status_code == 200:
                        return list(resp.json())
        raise AssertionError(f"no live launcher answers /{what}.json")

    def views(self) -> list[set[tuple[str, str]]]:
        """(id, state) of every request and node as each live launcher reads them."""
        return [
            {(r["id"], r["state"]) for r in self.rows("request-list", i)}
            | {(n["id"], n["state"]) for n in self.rows("node-list", i)}
            for i in self.live()
        ]


class Churn:
    """``workers`` threads each looping request → wait → hold briefly → release, against
    the live launchers in turn, until ``cycles`` requests were made; a launcher that
    does not answer (killed) or answers 503 (store unreachable) is retried elsewhere."""

    def __init__(
        self,
        pool: Launchers,
        cycles: int,
        workers: int = 6,
        label_sets: tuple[list[str], ...] = LABEL_SETS,
        deadline: float = 120.0,
        seed: int = 7,
    ) -> None:
        self.pool = pool
        self.cycles = cycles
        self.workers = workers
        self.label_sets = label_sets
        self.deadline = deadline
        self.rng = random.Random(seed)
        self.submitted: list[str] = []  # ids the API returned
        self.fulfilled: dict[str, list[str]] = {}  # request id -> node ids, as the API said
        self.unfinished: list[str] = []  # not fulfilled within the deadline
        self.failed: dict[str, str] = {}
        self.retries = collections.Counter[str]()
        self.started = self.finished = 0.0
        self._count = 0
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []

    def _next_cycle(self) -> int | None:
        with self._lock:
            if self._count >= self.cycles:
                return None
            self._count += 1
            return self._count

    def _any(self, what: str, fn: Callable[[PoolClient], Any], until: float) -> Any:
        attempt = 0
        while True:
            live = self.pool.live()
            i = live[(attempt + threading.get_ident()) % len(live)]
            try:
                return fn(self.pool.client(i))
            except TemporaryError:
                with self._lock:
                    self.retries[what] += 1
                if time.monotonic() > until:
                    raise
                attempt += 1
                time.sleep(0.05)

    def _worker(self, rng: random.Random, at: dict[int, Callable[[], None]]) -> None:
        try:
            while (k := self._next_cycle()) is not None:
                if k in at:
                    at[k]()
                until = self.started + self.deadline
                labels = rng.choice(self.label_sets)
                req = self._any(
                    "submit", lambda c, labels=labels: c.request(labels, requestor="churn"), until
                )
                rid = req["id"]
                with self._lock:
                    self.submitted.append(rid)
                done = self.wait(rid, until)
                if done is None:
                    with self._lock:
                        self.unfinished.append(rid)
                    continue
                if done["state"] != "fulfilled":
                    with self._lock:
                        self.failed[rid] = done.get("reason", "")
                    continue
                with self._lock:
                    self.fulfilled[rid] = list(done["node_ids"])
                time.sleep(rng.uniform(0, 0.02))  # the "job"
                for nid in done["node_ids"]:
                    self.release(nid, until)
        except BaseException as exc:  # noqa: BLE001 - reported by run()
            self._errors.append(exc)

    def wait(self, rid: str, until: float) -> dict[str, Any] | None:
        while time.monotonic() < until:
            req = self._any("wait", lambda c: c.get_request(rid, wait=5), until)
            if req["state"] in ("fulfilled", "failed"):
                return dict(req)
        return None

    def release(self, nid: str, until: float) -> None:
        def call(c: PoolClient) -> None:
            # Conflict/NotFound: released already (an answer lost to a killed launcher)
            with contextlib.suppress(Conflict, NotFound):
                c.release(nid)

        self._any("release", call, until)

    def run(self, at: dict[int, Callable[[], None]] | None = None) -> Churn:
        """Run to completion; ``at[k]`` runs (in the worker making it) before cycle k."""
        self.started = time.monotonic()
        threads = [
            threading.Thread(target=self._worker, args=(random.Random(self.rng.random()), at or {}))
            for _ in range(self.workers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(self.deadline + 60)
        self.finished = time.monotonic()
        if self._errors:
            raise self._errors[0]
        return self

    @property
    def seconds(self) -> float:
        return self.finished - self.started


def check(
    pool: Launchers, churn: Churn | None = None, settle: float = 60.0, extra: list[str] = ()
) -> dict[str, Any]:
    """The invariants, from the pool's records (any live launcher's read endpoints) and
    the clouds' records; returns the counts (all the bad ones are asserted zero)."""
    deadline = time.monotonic() + settle
    # every request the pool knows is finished: none stuck, none lost
    while True:
        reqs = pool.rows("request-list")
        if all(r["state"] in ("fulfilled", "failed") for r in reqs):
            break
        assert time.monotonic() < deadline, [r for r in reqs if r["state"] not in ("fulfilled",)]
        time.sleep(0.2)
    by_id = {r["id"]: r for r in reqs}
    failed = [r for r in reqs if r["state"] != "fulfilled"]
    submitted = [*(churn.submitted if churn else []), *extra]
    lost = [rid for rid in submitted if by_id.get(rid, {}).get("state") != "fulfilled"]
    # a node handed to two requests
    owners = collections.defaultdict(list)
    for r in reqs:
        if r["state"] == "fulfilled":
            for nid in r["nodes"]:
                owners[nid].append(r["id"])
    twice = {nid: rids for nid, rids in owners.items() if len(rids) > 1}
    # release what requests whose answer was lost (ambiguous submits) still hold
    for row in pool.rows("node-list"):
        if row["state"] in ("in-use", "hold"):
            client = pool.client(pool.live()[0])
            with contextlib.suppress(Conflict, NotFound):
                client.release(row["id"])
    # settle: no node in flight; every server in a cloud is a node record's, and back
    clouds = pool.clouds()
    try:
        while True:
            nodes = pool.rows("node-list")
            busy = [n for n in nodes if n["state"] not in ("ready",)]
            held = {n["server_id"] for n in nodes if n["server_id"]}
            servers = {sid for c in clouds.values() for sid in c.servers}
            if not busy and held == servers:
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not settled: busy nodes {busy}, servers without a node "
                    f"{sorted(servers - held)}, nodes without a server {sorted(held - servers)}"
                )
            time.sleep(0.2)
        # any launcher serves the API: all read the same state (their mirrors caught up)
        while len({frozenset(v) for v in pool.views()}) > 1:
            if time.monotonic() > deadline:
                views = pool.views()
                raise AssertionError(f"launchers disagree: {[sorted(v - views[0]) for v in views]}")
            time.sleep(0.2)
        creates = {
            name: collections.Counter(n for _, n in c.creates()) for name, c in clouds.items()
        }
        twice_created = {
            name: {n: k for n, k in cnt.items() if k > 1} for name, cnt in creates.items()
        }
        peak = {name: c.max_servers() for name, c in clouds.items()}
        quota_errors = {name: int(c.stat("quota_errors")) for name, c in clouds.items()}
    finally:
        for c in clouds.values():
            c.close()
    report = {
        "requests": len(reqs),
        "failed": len(failed),
        "lost": len(lost),
        "nodes_assigned_twice": len(twice),
        "launched_twice": sum(len(v) for v in twice_created.values()),
        "leaked": 0,  # asserted by the settle loop: servers == node records' servers
        "servers_created": sum(sum(c.values()) for c in creates.values()),
        "peak_servers": peak,
        "quota_errors": quota_errors,
    }
    assert not failed, failed[:5]
    assert not lost, lost[:10]
    assert not twice, twice
    assert not any(twice_created.values()), twice_created
    for name, spec in pool.providers.items():
        cap = spec[1]
        assert peak[name] <= cap, f"{name}: {peak[name]} servers at once, max-servers {cap}"
    if churn is not None:
        assert not churn.unfinished and not churn.failed, (churn.unfinished, churn.failed)
    return report
