"""Benchmark the dashboard: each page's render time at 1M log lines and 10,000 nodes,
and the search page's time for the 20 signature queries; prints p50/p95.

    .venv/bin/python bench/web.py [--lines 1000000] [--nodes 10000] [--repeat 10]

Three processes, each serving on loopback, as in production:

- a stub pool API (``/api/providers``, ``/node-list.json``, ``/api/nodes``,
  ``/request-list.json``, ``/label-list.json``, ``/metrics``) over ``--nodes`` nodes;
- the ops API (``rackpool.ops.api``) over an index of ``--lines`` lines made and
  shipped as ``bench/logs.py`` does, with the 5 builtin signatures plus 15 of
  bench/logs.py's queries as signatures (20) and the failures classified;
- ``rackpool web serve``'s app, its history filled with 10 days of samples (every 15 s
  for 6 h, then one per 5 minutes), the sampler off.

Each page is fetched ``--repeat`` times after one warm-up; the time is the dashboard's
whole answer over loopback (it fetches its sources over HTTP, then renders). Building
is bounded: generation and ingest are linear in ``--lines`` (~1 min at 1M), the
classifier looks at the last 6 hours only, and every wait has a deadline.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from rackpool.pool.model import PoolCap, ProviderQuota, Resources

sys.path.insert(0, str(Path(__file__).resolve().parent))

PROVIDERS = ("rack1", "rack2", "cloud-a", "cloud-b")
STATES = ("ready", "in-use", "building", "used", "deleting", "hold", "failed")
CLASSIFY_WINDOW = 6 * 3600.0  # failures of the last 6 hours are classified (bounded)
BUILD_TIMEOUT = 1800.0  # building 1M lines on a loaded 2-core machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(app: Any, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- the stub pool -----------------------------------------------------------------------
def _metrics(nodes: list[dict[str, Any]]) -> str:
    from collections import Counter

    out = ["# TYPE rackpool_pool_nodes gauge"]
    for (p, s), n in sorted(Counter((n["provider"], n["state"]) for n in nodes).items()):
        out.append(f'rackpool_pool_nodes{{provider="{p}",state="{s}"}} {n}')
    out.append("# TYPE rackpool_pool_launch_errors counter")
    for i, p in enumerate(PROVIDERS):
        for kind in ("quota", "timeout", "error"):
            out.append(f'rackpool_pool_launch_errors_total{{kind="{kind}",provider="{p}"}} {i * 7}')
    out.append("# TYPE rackpool_pool_launch_seconds histogram")
    for p in PROVIDERS:
        c = 0
        for le in ("1.0", "5.0", "30.0", "+Inf"):
            c += 100
            labels = f'label="small",le="{le}",provider="{p}",result="ready"'
            out.append(f"rackpool_pool_launch_seconds_bucket{{{labels}}} {c}")
    return "\n".join(out) + "\n"


def _quota(nodes: int, now: float) -> dict[str, Any]:
    """A provider's quota as the pool publishes it (``ProviderQuota``): its nodes of 1
    vCPU / 1 GiB each plus a few servers that are not the pool's."""
    limits = Resources(nodes * 2, nodes * 4, nodes * 4096)
    quota = ProviderQuota.of(limits, Resources(nodes, nodes, nodes * 1024),
                             Resources(3, 6, 6144), now - 30, now - 10)  # fmt: skip
    return dataclasses.asdict(quota)


def _cap(nodes: int) -> dict[str, Any]:
    cap = PoolCap("main", nodes * 2, None, None, nodes, nodes, nodes * 1024)
    return dataclasses.asdict(cap)


def pool_stub(port: int, n_nodes: int) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    rng = random.Random(7)
    now = time.time()
    nodes, full = [], []
    for i in range(n_nodes):
        p = PROVIDERS[i % len(PROVIDERS)]
        state = rng.choice(STATES)
        nid = f"{i:010d}"
        nodes.append({
            "id": nid, "provider": p, "label": ["small"], "server_id": f"{rng.getrandbits(128):032x}",
            "public_ipv4": f"198.18.{i // 250 % 250}.{i % 250 + 1}", "ipv6": None, "state": state,
            "age": int(now - rng.uniform(0, 86400)), "locked": "unlocked", "pool": "main",
            "hostname": f"small-{p}-{nid}", "private_ipv4": None, "AZ": "nova",
            "connection_port": 22, "launcher": "bench-launcher",
            "allocated_to": f"100-{i:010d}" if state == "in-use" else None,
            "hold_job": None, "comment": None,
        })  # fmt: skip
        full.append({"id": nid, "global_request_id": f"req-{rng.getrandbits(128):032x}"})
    requests = [
        {"id": f"100-{i:010d}", "relative_priority": 100, "state": "fulfilled",
         "requestor": "zuul", "node_types": ["small"], "nodes": [f"{i:010d}"], "declined_by": []}
        for i in range(n_nodes // 5)
    ]  # fmt: skip
    providers = [
        {"name": p, "driver": "openstack", "region": p, "paused": False, "in_service": i != 3,
         "reason": "" if i != 3 else "3 consecutive errors, last: HTTP 503", "consecutive_errors": 0,
         "nodes": n_nodes // 4, "priority": 100, "quota_known": True,
         "quota": _quota(n_nodes // 4, now), "caps": [_cap(n_nodes // 4)]}
        for i, p in enumerate(PROVIDERS)
    ]  # fmt: skip
    metrics = _metrics(nodes)

    def js(data: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            return JSONResponse(data)

        return endpoint

    async def prom(request: Request) -> Response:
        return PlainTextResponse(metrics)

    app = Starlette(
        routes=[
            Route("/api/providers", js(providers)),
            Route("/node-list.json", js(nodes)),
            Route("/api/nodes", js(full)),
            Route("/request-list.json", js(requests)),
            Route("/label-list.json", js([{"label": "small"}])),
            Route("/metrics", prom),
        ]
    )
    _serve(app, port)


# -- the ops API over 1M lines ------------------------------------------------------------
def ops_api(port: int, base: str, n_lines: int) -> None:
    import logs as benchlogs  # bench/logs.py

    from rackpool.core.clock import SystemClock
    from rackpool.ops.api import ApiDeps, build_app
    from rackpool.ops.classify import Classifier
    from rackpool.ops.failures import FailureStore
    from rackpool.ops.index.sqlite import SqliteIndex
    from rackpool.ops.shipper import CheckpointFile, Shipper
    from rackpool.ops.signatures import builtin_dir, load_signatures

    root = Path(base)
    (root / "logs").mkdir(parents=True)
    (root / "sigs").mkdir()
    t0 = time.perf_counter()
    lines = benchlogs.make_lines(n_lines, time.time() - 86400, 86400, random.Random(42))
    per = len(lines) // 4 + 1
    for f in range(4):
        data = b"\n".join(lines[f * per : (f + 1) * per]) + b"\n"
        (root / "logs" / f"daemon{f}.log").write_bytes(data)
    del lines
    print(f"ops:    {n_lines:,} lines made in {time.perf_counter() - t0:.0f}s", flush=True)
    for i, q in enumerate(benchlogs.QUERIES[:15]):
        (root / "sigs" / f"bench-{i:02d}.yaml").write_text(f"query: >-\n  {q}\n")
    index = SqliteIndex(root / "index")
    shipper = Shipper(index, [str(root / "logs" / "*.log")], CheckpointFile(root / "ckpt.json"))
    while shipper.poll():
        pass
    shipper.close()
    t1 = time.perf_counter()
    sigs = load_signatures([builtin_dir(), root / "sigs"])
    store = FailureStore(root / "failures.db")
    classifier = Classifier(index, store, sigs, clock=SystemClock(), window=CLASSIFY_WINDOW)
    classified = len(classifier.run_once())
    print(
        f"ops:    {n_lines:,} lines made and indexed in {t1 - t0:.0f}s; {len(sigs)} signatures; "
        f"{classified:,} failures (last 6 h) classified in {time.perf_counter() - t1:.0f}s",
        flush=True,
    )
    _serve(build_app(ApiDeps(index, store, classifier, "bench-token", SystemClock())), port)


# -- the dashboard ------------------------------------------------------------------------
def filled_history() -> Any:
    from rackpool.web.history import History, Reading

    h = History(None, interval=15, raw_hours=6, coarse=300, keep_days=10)
    rng = random.Random(3)
    now = time.time()
    times = [now - 10 * 86400 + i * 300 for i in range(int((10 * 86400 - 6 * 3600) / 300))]
    times += [now - 6 * 3600 + i * 15 for i in range(6 * 240)]
    errors: dict[str, float] = {}
    launch = dict.fromkeys(("1.0", "5.0", "30.0", "+Inf"), 0.0)
    prev = times[0]
    for t in times:
        step = t - prev
        prev = t
        nodes = {f"{p}|{s}": float(rng.randint(0, 800)) for p in PROVIDERS for s in STATES[:3]}
        for p in PROVIDERS:
            k = f"{p}|{rng.choice(('quota', 'timeout', 'error'))}"
            errors[k] = errors.get(k, 0.0) + rng.randint(0, 3)
        c = 0.0
        for le in launch:
            c += rng.randint(0, int(step))
            launch[le] += c
        h.interval = 300 if step > 60 else 15
        h.record(Reading(nodes, dict(errors), dict(launch), dict(launch)), t)
    h.interval = 15
    return h


def web_app(port: int, pool_port: int, ops_port: int) -> None:
    from rackpool.web.app import build_app
    from rackpool.web.config import WebConfig
    from rackpool.web.sources import Sources

    config = WebConfig.model_validate(
        {
            "pool": {"url": f"http://127.0.0.1:{pool_port}", "token": "bench"},
            "ops": {"url": f"http://127.0.0.1:{ops_port}"},
            "history": {"interval": 0},
            "timeout": 120,
        }  # fmt: skip
    )
    history = filled_history()
    print(f"web:    history of {len(history):,} samples over 10 days", flush=True)
    _serve(build_app(config, Sources(config, history=history)), port)


# -- the client ---------------------------------------------------------------------------
def _wait(url: str, proc: multiprocessing.Process, what: str) -> None:
    deadline = time.monotonic() + BUILD_TIMEOUT
    while time.monotonic() < deadline:
        if not proc.is_alive():
            raise SystemExit(f"{what} exited ({proc.exitcode})")
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{what} did not answer within {BUILD_TIMEOUT:.0f}s")


def _timed(client: httpx.Client, path: str, repeat: int) -> list[float]:
    r = client.get(path)  # warm-up (and a check)
    if r.status_code != 200:
        raise SystemExit(f"{path}: HTTP {r.status_code}: {r.text[:300]}")
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.get(path)
        out.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"{path}: HTTP {r.status_code}")
    return out


def _p(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[max(0, int(len(xs) * 0.95 + 0.5) - 1)]
    return f"p50 {statistics.median(xs):8.1f} ms  p95 {p95:8.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    import logs as benchlogs  # bench/logs.py

    from rackpool.ops.signatures import builtin_dir, load_signatures

    base = Path(tempfile.mkdtemp(prefix="rackpool-bench-web-"))
    ports = {k: _free_port() for k in ("pool", "ops", "web")}
    ctx = multiprocessing.get_context("spawn")
    procs = {
        "pool": ctx.Process(target=pool_stub, args=(ports["pool"], args.nodes)),
        "ops": ctx.Process(target=ops_api, args=(ports["ops"], str(base / "ops"), args.lines)),
        "web": ctx.Process(target=web_app, args=(ports["web"], ports["pool"], ports["ops"])),
    }
    try:
        for p in procs.values():
            p.start()
        _wait(f"http://127.0.0.1:{ports['pool']}/metrics", procs["pool"], "the pool stub")
        _wait(f"http://127.0.0.1:{ports['ops']}/api/health", procs["ops"], "the ops API")
        _wait(f"http://127.0.0.1:{ports['web']}/health", procs["web"], "the dashboard")
        ops = httpx.get(f"http://127.0.0.1:{ports['ops']}/api/health").json()
        print(f"ready:  {ops['documents']:,} lines indexed, {args.nodes:,} nodes", flush=True)
        client = httpx.Client(base_url=f"http://127.0.0.1:{ports['web']}", timeout=300)
        hit = client.get("/search?q=*&since=30d&size=20").text
        doc = hit.split('href="/context/', 1)[1].split('"', 1)[0]
        pages = ["/?range=6h", "/?range=10d", "/capacity?period=24h", "/capacity?period=10d",
                 "/nodes", "/nodes?provider=rack1&state=ready", "/requests", "/labels",
                 "/search?q=*&since=30d", f"/context/{doc}", "/bugs"]  # fmt: skip
        print(f"pages:  {args.repeat} renders each after a warm-up (server side, over loopback)")
        for path in pages:
            times = _timed(client, path, args.repeat)
            size = len(client.get(path).content)
            print(f"  {path:<36} {_p(times)}  {size / 1024:7.0f} KiB", flush=True)
        sigs = [s.query_text for s in load_signatures([builtin_dir()])] + benchlogs.QUERIES
        all_times: list[float] = []
        per_query = []
        for q in sigs[:20]:
            times = _timed(client, str(httpx.URL("/search", params={"q": q, "since": "30d"})), 3)
            all_times += times
            per_query.append((statistics.median(times), q))
        print(f"search: 20 signature queries x 3 (page of 50 hits, since 30d): {_p(all_times)}")
        for med, q in sorted(per_query, reverse=True)[:5]:
            print(f"        {med:7.1f} ms  {' '.join(q.split())[:80]}")
        client.close()
    finally:
        for p in procs.values():
            if p.is_alive():
                p.terminate()
            p.join(10)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
