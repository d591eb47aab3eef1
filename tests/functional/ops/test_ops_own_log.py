"""The ops daemon's own log lines reach its own index, without feeding themselves.

``rackpool ops serve`` runs as a user starts it (a real process, HTTP on loopback), with
its log file outside ``shipper.files`` (as ``rackpool up`` and the deploy configure it:
``ops.log`` beside ``*.jsonl``): its start, and every refused request with the reason,
are searchable; reads and accepted ingests add no line, and indexing its own lines adds
none either (no feedback loop).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.functional.ops.test_remote_shipper import SECRET, Ops

from rackpool.core.clock import wait_for
from rackpool.ops.tokens import mint

OWN = "component:ops"


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[Ops]:
    daemon = Ops(tmp_path / "ops").start()
    try:
        yield daemon
    finally:
        daemon.stop()


def _lines(ops: Ops) -> list[dict[str, Any]]:
    path = ops.dir / "ops.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _caught_up(ops: Ops) -> bool:
    """The daemon's shipper has committed its own log up to the end of the file."""
    try:
        saved = json.loads((ops.dir / "index" / "shipper.json").read_text())
    except FileNotFoundError:
        return False
    log = ops.dir / "ops.log"
    return saved.get(str(log), {}).get("offset") == log.stat().st_size


def _ingest(ops: Ops, token: str, host: str, seq: int = 0) -> httpx.Response:
    body = {
        "host": host,
        "source": "/var/log/rackpool/agent.jsonl#1-ab",
        "documents": [{"seq": seq, "ts": 1.7e9, "fields": {"message": f"line {seq}"}}],
    }
    return httpx.post(
        f"{ops.url}/api/ingest", json=body, headers={"Authorization": f"Bearer {token}"}
    )


def test_refused_requests_are_in_the_index_and_indexing_adds_no_lines(ops: Ops) -> None:
    wait_for(lambda: ops.total(f"{OWN} AND event:ops_started") == 1, 30, "ops' start indexed")
    # a forged ingest: host A's token sending host B's lines
    a_token = mint(SECRET, "host-a")
    assert _ingest(ops, a_token, "host-b").status_code == 403
    q = f'{OWN} AND event:api_request AND path:"/api/ingest" AND level:WARNING'
    wait_for(lambda: ops.total(q) == 1, 30, "the refusal indexed")
    (hit,) = ops.search(q)["hits"]
    assert hit["status"] == 403 and hit["ingest_host"] == "host-a"
    assert "'host-a'" in hit["message"] and "'host-b'" in hit["message"]
    assert a_token not in json.dumps(hit) and a_token not in (ops.dir / "ops.log").read_text()

    # the daemon caught up with its own log: nothing new comes of indexing it
    wait_for(lambda: _caught_up(ops), 30, "ops' shipper caught up with ops.log")
    before = len(_lines(ops))
    indexed = ops.total(OWN)
    for _ in range(30):  # searches, as a dashboard or `rackpool logs tail` makes them
        ops.search(OWN, size=10)
    for seq in range(5):  # accepted ingests, as every host's shipper makes them
        assert _ingest(ops, a_token, "host-a", seq).status_code == 200
    # a marker: one refusal; once it is indexed, every line before it was too
    assert httpx.post(f"{ops.url}/api/ingest", json={}).status_code == 401
    wait_for(lambda: ops.total(OWN) == indexed + 1, 30, "the marker indexed")
    wait_for(lambda: _caught_up(ops), 30, "ops' shipper caught up again")
    lines = _lines(ops)
    assert len(lines) == before + 1, lines[before:]  # only the marker: reads log nothing
    assert lines[-1]["status"] == 401
    # and indexing the marker wrote no line: a second marker is the next line
    assert httpx.post(f"{ops.url}/api/ingest", json={}).status_code == 401
    wait_for(lambda: ops.total(OWN) == indexed + 2, 30, "the second marker indexed")
    wait_for(lambda: _caught_up(ops), 30, "ops' shipper caught up once more")
    assert len(_lines(ops)) == before + 2
    assert ops.total(OWN) == indexed + 2
