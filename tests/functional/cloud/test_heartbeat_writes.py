"""A heartbeat never waits for the database's write lock, and a host whose heartbeats
are not written yet is never marked down (cloud/heartbeats.py). Over HTTP, as an agent
speaks it; the region's database is held by a real second writer, not a mock."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from tests.support.postgres import NewDatabase
from tests.support.region import AGENT_TOKEN, RegionHandle, running_region

from rackpool.core.clock import wait_for

HOST = "beat-h1"


def _enroll(url: str) -> dict[str, str]:
    body = {"name": HOST, "driver": "wire", "vcpus": 8, "ram_mb": 16384, "disk_gb": 100}
    r = httpx.post(f"{url}/agent/v1/hosts", json=body, headers={"X-Agent-Token": AGENT_TOKEN})
    assert r.status_code == 200, r.text
    return {"X-Agent-Token": r.json()["credential"]}


def _beat_past(url: str, cred: dict[str, str], seconds: float) -> tuple[float, httpx.Response]:
    """Heartbeat, one after the other, until ``seconds`` have passed; the wall time just
    before the last one and its answer (every answer must be 200)."""
    end = time.monotonic() + seconds
    while True:
        sent = time.time()
        r = httpx.post(
            f"{url}/agent/v1/hosts/{HOST}/heartbeat", json={"instances": []}, headers=cred,
            timeout=5,
        )  # fmt: skip
        assert r.status_code == 200, r.text
        if time.monotonic() > end:
            return sent, r


def _stored_heartbeat(region: RegionHandle) -> float:
    engine = create_engine(region.config.database_url(), poolclass=NullPool)
    try:
        with engine.connect() as db:
            row = db.execute(
                text("SELECT last_heartbeat FROM hosts WHERE name = :h"), {"h": HOST}
            ).one()
    finally:
        engine.dispose()
    return float(row[0])


@contextmanager
def _write_lock_held(region: RegionHandle) -> Iterator[None]:
    """Another writer holds the region database's write lock (SQLite) or a lock on the
    hosts table that lets readers in but no writer (PostgreSQL) until the block ends."""
    url = region.config.database_url()
    if url.startswith("sqlite"):
        db = sqlite3.connect(region.state_dir / "region.db", isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            yield
            db.execute("ROLLBACK")
        finally:
            db.close()
        return
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("LOCK TABLE hosts IN EXCLUSIVE MODE"))
            yield
            conn.rollback()
    finally:
        engine.dispose()


def test_heartbeats_answer_and_keep_the_host_up_while_another_writer_holds_the_db(
    tmp_path: Path, new_db: NewDatabase
) -> None:
    hosts = {"heartbeat_interval": 0.2, "heartbeat_timeout": 1.0, "check_interval": 0.1}
    with running_region(tmp_path, "beat", fake_hosts=[], hosts=hosts, database=new_db()) as region:
        cred = _enroll(region.url)
        with _write_lock_held(region):
            # longer than the heartbeat timeout: the host is still up at the end
            sent, last = _beat_past(region.url, cred, 1.5)
            assert last.json() == {"enabled": True, "state": "up", "unknown": []}
        # once the writer is gone, the heartbeats reach the database
        wait_for(lambda: _stored_heartbeat(region) >= sent, 10, "heartbeats written")


def test_unwritten_heartbeats_keep_a_host_up_and_are_written_at_shutdown(
    tmp_path: Path, new_db: NewDatabase
) -> None:
    # a flush every 30 s: between start and stop, heartbeats live only in memory
    hosts = {"heartbeat_interval": 60.0, "heartbeat_timeout": 1.0, "check_interval": 0.1}
    with running_region(tmp_path, "beat", fake_hosts=[], hosts=hosts, database=new_db()) as region:
        cred = _enroll(region.url)
        registered = _stored_heartbeat(region)
        sent, last = _beat_past(region.url, cred, 1.5)
        assert last.json()["state"] == "up"
        assert _stored_heartbeat(region) == registered  # not written yet
    assert _stored_heartbeat(region) >= sent  # written when the region stopped
