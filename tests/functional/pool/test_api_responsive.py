"""The pool API answers while a store call is stuck: store (SQLite) calls run in the
daemon's worker threads, never on its event loop. The daemon runs as a user starts it;
the store is held by a real second writer on its database file, not a mock."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rackpool.core.clock import wait_for

from .daemon import PoolProcess

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[PoolProcess]:
    pool_def = {"name": "main", "labels": [{"name": "small", "cores": 1, "ram": 512}]}
    cfg = {
        "state-dir": str(tmp_path / "state"),
        "api": {"port": 0, "token": TOKEN},
        "timing": {"tick-interval": 0.05},
        "labels": [{"name": "small", "min-ready": 0}],
        "providers": [{"name": "f1", "driver": "fake", "pools": [pool_def]}],
    }
    p = PoolProcess(tmp_path, cfg).start()
    try:
        yield p
    finally:
        p.stop()


def test_the_api_answers_while_a_request_waits_for_a_locked_store(pool: PoolProcess) -> None:
    url = pool.url
    wait_for(lambda: httpx.get(f"{url}/ready", timeout=5).status_code == 200, 20, "first tick")
    db = sqlite3.connect(pool.state_dir / "pool.sqlite", isolation_level=None)
    created: list[httpx.Response] = []
    try:
        db.execute("BEGIN IMMEDIATE")  # another writer holds the store
        submit = threading.Thread(
            target=lambda: created.append(
                httpx.post(f"{url}/api/requests", json={"labels": ["small"]}, headers=AUTH,
                           timeout=30)
            )
        )  # fmt: skip
        submit.start()
        # while the submit waits for the store, the daemon keeps answering
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            assert httpx.get(f"{url}/ready", timeout=1).status_code == 200
            assert httpx.get(f"{url}/label-list.json", timeout=1).json() == [{"label": "small"}]
        assert submit.is_alive()  # it really was waiting for the store all along
        db.execute("ROLLBACK")
    finally:
        db.close()
    submit.join(30)
    # the waiting request then completed: nothing was lost
    assert created and created[0].status_code == 201, created
    rid = created[0].json()["id"]
    assert httpx.get(f"{url}/api/requests/{rid}", headers=AUTH, timeout=10).status_code == 200
