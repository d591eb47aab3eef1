"""Benchmark shipping another host's logs: ``rackpool ops ship`` -> ``rackpool ops serve``.

    .venv/bin/python bench/ship.py [--lines 200000] [--dir /tmp/rackpool-bench-ship]

Both daemons run as a deploy runs them, as separate processes talking HTTP on
loopback. The shipper starts on files already written (a host's backlog, e.g. after
the ops host was down); the time is from its start until the ops API counts every line
(searching ``*``). The same files are then ingested locally (``bench/logs.py``'s way:
the shipper in-process into the SQLite index, no HTTP), and the remote figure is
printed also as a ratio to that floor. Every wait has a deadline; the daemons are
stopped by PID, even on failure.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from logs import make_lines  # noqa: E402
from tests.support import procs  # noqa: E402
from tests.support.region import free_port  # noqa: E402

from rackpool.ops.index.sqlite import SqliteIndex  # noqa: E402
from rackpool.ops.shipper import CheckpointFile, Shipper  # noqa: E402
from rackpool.ops.tokens import mint  # noqa: E402

TOKEN = "bench-push-token-0123456789abcdef"
SECRET = "bench-ingest-secret-0123456789abcdef"
DEADLINE = 1800.0


def _total(url: str) -> int:
    resp = httpx.get(
        f"{url}/api/search",
        params={"q": "NOT component:ops AND NOT component:shipper", "size": 1},
        timeout=30,
    )
    resp.raise_for_status()
    return int(resp.json()["total"])


def remote(base: Path, logs: Path, lines: int) -> float:
    """Seconds from the shipper's start until the ops API counts ``lines`` lines."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (base / "ops").mkdir()
    ops_yaml = base / "ops" / "ops.yaml"
    ops_yaml.write_text(yaml.safe_dump({
        "index": {"path": str(base / "ops" / "index")},
        "api": {"listen": "127.0.0.1", "port": port, "push_token": TOKEN,
                "ingest_secret": SECRET},
        "log": {"json": True, "path": str(base / "ops" / "ops.log")},
    }))  # fmt: skip
    ship_yaml = base / "shipper.yaml"
    ship_yaml.write_text(yaml.safe_dump({
        "ops": {"url": url, "token": mint(SECRET, "bench-host")},
        "host": "bench-host",
        "shipper": {"files": [f"{logs}/*.log"]},
        "state_dir": str(base / "ship-state"),
        "log": {"json": True, "path": str(base / "shipper.jsonl")},
    }))  # fmt: skip
    ops = shipper = None
    try:
        state = base / "ops" / "state"
        ops = procs.spawn(["ops", "serve", "--config", str(ops_yaml), "--state-dir", str(state)],
                          base / "ops.out")  # fmt: skip
        procs.wait_started(ops, (state / "ops.json").exists, 60, "ops serve to listen",
                           base / "ops.out")  # fmt: skip
        t0 = time.perf_counter()
        shipper = procs.spawn(["ops", "ship", "--config", str(ship_yaml)], base / "ship.out")
        procs.wait_started(shipper, lambda: _total(url) >= lines, DEADLINE,
                           f"{lines:,} lines searchable", base / "ship.out")  # fmt: skip
        elapsed = time.perf_counter() - t0
        got = _total(url)
        if got != lines:
            raise SystemExit(f"the index holds {got:,} lines, {lines:,} were shipped")
        return elapsed
    finally:
        procs.stop(shipper, timeout=30)
        procs.stop(ops, timeout=30)


def local(base: Path, logs: Path) -> tuple[int, float]:
    """The floor: the same files shipped in-process into a local index (no HTTP)."""
    index = SqliteIndex(base / "local-index")
    shipper = Shipper(index, [f"{logs}/*.log"], CheckpointFile(base / "local-ckpt.json"))
    t0 = time.perf_counter()
    total = 0
    while added := shipper.poll():
        total += added
    shipper.close()
    elapsed = time.perf_counter() - t0
    index.close()
    return total, elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    if not 1 <= args.lines <= 5_000_000:
        ap.error("--lines: give 1 to 5,000,000")
    base = Path(args.dir or tempfile.mkdtemp(prefix="rackpool-bench-ship-"))
    shutil.rmtree(base, ignore_errors=True)
    logs = base / "logs"
    logs.mkdir(parents=True)
    print(f"generating {args.lines:,} lines ...", flush=True)
    lines = make_lines(args.lines, time.time() - 3600, 3600, random.Random(7))
    per_file = len(lines) // 4 + 1
    for f in range(4):
        chunk = lines[f * per_file : (f + 1) * per_file]
        if chunk:
            (logs / f"daemon{f}.log").write_bytes(b"\n".join(chunk) + b"\n")
    del lines

    shipped = remote(base, logs, args.lines)
    total, floor_s = local(base, logs)
    assert total == args.lines, (total, args.lines)
    print(
        f"remote: {args.lines:,} lines in {shipped:.1f}s = {args.lines / shipped:,.0f} lines/s "
        "(ops ship -> HTTP -> ops serve, until the API counts them all)"
    )
    print(
        f"local:  {total:,} lines in {floor_s:.1f}s = {total / floor_s:,.0f} lines/s "
        f"(in-process shipper into the index); remote takes {shipped / floor_s:.2f}x local"
    )
    if not args.dir:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
