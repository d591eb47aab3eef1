"""Benchmark the embedded log index: ingest 1,000,000 realistic lines, then query.

    .venv/bin/python bench/logs.py [--lines 1000000] [--dir /tmp/rackpool-bench]

Lines go the way production lines go: JSON lines written to log files, read by the
shipper (parse, redact, analyse) into the SQLite FTS5 index. Then some queries must
find exactly the lines the generated documents say they must (the lines are really
searchable), and 20 signature queries run (count + first page, as the REST API does)
and p50/p95 are printed.

Absolute lines/s move with the machine's load, so the same run also measures a floor:
the same files read and their lines inserted as they are into a plain FTS5 table (no
parsing, redaction or analysis; 20,000 lines per transaction, the shipper's batch), and
prints ingest as a ratio to it (goal: within 2x).
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from rackpool.ops.index.sqlite import SqliteIndex
from rackpool.ops.query import parse
from rackpool.ops.shipper import CheckpointFile, Shipper
from rackpool.ops.signatures import builtin_dir, load_signatures

QUERIES = [
    'message:"Connection reset by peer" AND tags:"console"',
    'message:"Timed out waiting for a reply to message ID" AND tags:"screen-n-cpu.txt"',
    'message:"No valid host was found" AND loglevel:ERROR',
    '(message:"Lock wait timeout exceeded" OR message:"Deadlock found") AND module:"nova.db.api"',
    'message:"Failed to fetch image" AND NOT build_status:SUCCESS',
    'build_status:FAILURE AND message:"Killed" AND tags:console',
    'message:"tempest.lib.exceptions.TimeoutException" AND build_name:tempest-*',
    'node_provider:rack2 AND message:"ssh-keyscan failed"',
    'message:"Quota exceeded for cores" AND provider:rack1',
    'loglevel:ERROR AND module:rackpool.agent* AND message:"checksum mismatch"',
    'message:"Instance failed to spawn" AND -tags:"screen-n-api.txt"',
    'message:"HTTP 503" OR message:"Service Unavailable"',
    "message:kernel* AND message:panic",
    'message:"Timeout waiting for instance boot" AND event:launch_failed',
    'tags:"console" AND build_status:"FAILURE" AND message:"ERROR:"',
]
WORDS = [
    "instance",
    "volume",
    "network",
    "port",
    "image",
    "host",
    "scheduler",
    "request",
    "compute",
    "allocation",
    "quota",
    "lease",
    "flavor",
    "keypair",
    "server",
    "snapshot",
    "agent",
    "libvirt",
    "domain",
    "tap",
    "bridge",
]
FAULTS = [
    "Connection reset by peer",
    "Timed out waiting for a reply to message ID 4f2a",
    "No valid host was found. There are not enough hosts available.",
    "Quota exceeded for cores: Requested 4, but already used 20 of 20 cores",
    "Timeout waiting for instance boot",
    "ssh-keyscan failed for 10.1.2.3",
    "Failed to fetch image cirros-0.6: HTTP 503 Service Unavailable",
    "Lock wait timeout exceeded; try restarting transaction",
    "Killed",
    "image 7f1 checksum mismatch",
    "Instance failed to spawn",
]
MODULES = [
    "nova.compute.manager",
    "nova.db.api",
    "rackpool.cloud.api",
    "rackpool.agent.virt",
    "rackpool.pool.launcher",
    "rackpool.agent.images",
]


def make_lines(n: int, start: float, span: float, rng: random.Random) -> list[bytes]:
    out = []
    for i in range(n):
        ts = start + span * i / n
        fault = rng.random() < 0.02
        msg = (
            rng.choice(FAULTS)
            if fault
            else " ".join(rng.choices(WORDS, k=rng.randint(6, 16)))
            + f" id={rng.getrandbits(32):08x}"
        )
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
            + f".{int(ts * 1e6) % 1000000:06d}Z",
            "level": "ERROR" if fault else rng.choice(("INFO", "INFO", "INFO", "DEBUG", "WARNING")),
            "component": rng.choice(("cloud", "agent", "pool")),
            "logger": rng.choice(MODULES),
            "message": msg,
            "region": rng.choice(("rack1", "rack2")),
            "host": f"compute-{rng.randint(1, 40)}",
            "request_id": f"req-{rng.getrandbits(64):016x}",
            "instance_id": f"{rng.getrandbits(128):032x}",
        }
        if rng.random() < 0.3:
            doc.update(
                node_id=f"n-{rng.randint(1, 50000)}",
                provider=rng.choice(("rack1", "rack2")),
                label="small",
                node_provider=rng.choice(("rack1", "rack2")),
            )
            if fault:
                doc["event"] = "launch_failed"
        if rng.random() < 0.2:
            doc.update(
                build_uuid=f"{rng.getrandbits(64):016x}",
                build_name=rng.choice(("tempest-full", "tempest-slow", "grenade", "unit-py311")),
                build_status="FAILURE" if fault else "SUCCESS",
                tags=["console"],
                filename="job-output.txt",
                project="openstack/nova",
            )
        out.append(orjson.dumps(doc))
    return out


def expected_hits(lines: list[bytes]) -> tuple[dict[str, int], dict[str, Any]]:
    """What some queries must find, worked out from the generated documents themselves;
    and one document, to be found whole."""
    docs = [orjson.loads(line) for line in lines]

    def count(pred: Callable[[dict[str, Any]], bool]) -> int:
        return sum(1 for d in docs if pred(d))

    def adjacent(msg: str, a: str, b: str) -> bool:
        return any(x == a and y == b for x, y in itertools.pairwise(msg.split()))

    sample = docs[len(docs) // 3]
    expected = {
        "*": len(docs),
        "loglevel:ERROR": count(lambda d: d["level"] == "ERROR"),
        'message:"Connection reset by peer"': count(
            lambda d: d["message"] == "Connection reset by peer"
        ),
        'message:"Quota exceeded for cores" AND provider:rack1': count(
            lambda d: d["message"].startswith("Quota exceeded") and d.get("provider") == "rack1"
        ),
        "build_status:FAILURE AND tags:console AND NOT loglevel:INFO": count(
            lambda d: d.get("build_status") == "FAILURE" and d["level"] != "INFO"
        ),
        'message:"libvirt domain" AND module:rackpool.agent*': count(
            lambda d: (
                adjacent(d["message"], "libvirt", "domain")
                and d["logger"].startswith("rackpool.agent")
            )
        ),
        f'request_id:"{sample["request_id"]}" AND host:{sample["host"]}': 1,
    }
    return expected, sample


def verify(index: SqliteIndex, expected: dict[str, int], sample: dict[str, Any]) -> None:
    """The lines are searchable: each query finds what the documents say it must."""
    for query, want in expected.items():
        got = index.count(parse(query))
        if got != want:
            raise SystemExit(f"verify: {query!r} found {got:,} lines, expected {want:,}")
        print(f"verify: {got:>9,} hits as expected  {query}")
    (hit,) = index.search(parse(f'request_id:"{sample["request_id"]}"')).hits
    if hit.fields != {**sample, "loglevel": sample["level"], "module": sample["logger"]}:
        raise SystemExit(f"verify: the stored line differs: {hit.fields} != {sample}")


def floor(files: list[Path], db_path: Path, batch: int = 20_000) -> tuple[int, float]:
    """Lines/s of the same lines read and inserted straight into an FTS5 table."""
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE VIRTUAL TABLE raw USING fts5(line)")
    t0 = time.perf_counter()
    total = 0
    for f in files:
        with f.open("rb") as fh:
            while chunk := list(itertools.islice(fh, batch)):
                db.execute("BEGIN")
                db.executemany("INSERT INTO raw(line) VALUES (?)", ((c.decode(),) for c in chunk))
                db.execute("COMMIT")
                total += len(chunk)
    elapsed = time.perf_counter() - t0
    db.close()
    return total, elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="rackpool-bench-"))
    shutil.rmtree(base, ignore_errors=True)
    (base / "logs").mkdir(parents=True)
    rng = random.Random(42)
    now = time.time()
    print(f"generating {args.lines:,} lines ...", flush=True)
    lines = make_lines(args.lines, now - 86400, 86400, rng)
    expected, sample = expected_hits(lines)
    raw_bytes = 0
    per_file = len(lines) // 4 + 1
    for f in range(4):
        chunk = lines[f * per_file : (f + 1) * per_file]
        data = b"\n".join(chunk) + b"\n"
        raw_bytes += len(data)
        (base / "logs" / f"daemon{f}.log").write_bytes(data)
    del lines

    index = SqliteIndex(base / "index")
    shipper = Shipper(index, [str(base / "logs" / "*.log")], CheckpointFile(base / "ckpt.json"))
    t0 = time.perf_counter()
    total = 0
    while added := shipper.poll():
        total += added
    elapsed = time.perf_counter() - t0
    index.checkpoint()
    stats = index.stats()
    print(
        f"ingest: {total:,} lines in {elapsed:.1f}s = {total / elapsed:,.0f} lines/s "
        f"(shipper: read, parse, redact, analyse, index)"
    )
    print(
        f"disk:   {stats.bytes_on_disk / total:.0f} bytes/line on disk "
        f"(raw JSON lines {raw_bytes / total:.0f} bytes/line), {stats.partitions} day partitions"
    )

    files = sorted((base / "logs").glob("*.log"))
    floor_lines, floor_s = floor(files, base / "floor.db")
    print(
        f"floor:  {floor_lines:,} lines in {floor_s:.1f}s = {floor_lines / floor_s:,.0f} lines/s "
        f"(read + insert as is into FTS5); ingest takes {elapsed / floor_s:.2f}x the floor's time"
    )

    verify(index, expected, sample)

    sigs = [s.query_text for s in load_signatures([builtin_dir()])] + QUERIES
    sigs = sigs[:20]
    times: list[float] = []
    per_query = []
    for q in sigs:
        node = parse(q)
        runs = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            page = index.search(node, limit=50)
            runs.append((time.perf_counter() - t) * 1000)
        times += runs
        per_query.append((statistics.median(runs), page.total, q))
    times.sort()
    p50 = statistics.median(times)
    p95 = times[int(len(times) * 0.95) - 1]
    print(
        f"query:  {len(sigs)} signature queries x {args.repeat}: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
        "(count + newest 50 hits)"
    )
    for med, hits, q in sorted(per_query, reverse=True)[:5]:
        print(f"        {med:7.1f} ms  {hits:>7,} hits  {' '.join(q.split())[:80]}")
    shipper.close()
    index.close()
    if not args.dir:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
