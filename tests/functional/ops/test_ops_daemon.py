"""End to end: daemons log failures → the ops daemon ships, indexes and classifies them.

The ops daemon runs as a user starts it (``rackpool ops serve``); the failure lines are
written the way the pool writes them, through ``setup_logging`` to a log file.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.ops import OpsProcess

from rackpool.cli import main
from rackpool.core.clock import wait_for
from rackpool.core.logs import setup_logging


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[dict[str, Any]]:
    logs = tmp_path / "logs"
    logs.mkdir()
    daemon = OpsProcess(tmp_path, [f"{logs}/*.log"], log_path=logs / "ops.log")
    daemon.start()
    try:
        yield {**daemon.info, "state": str(daemon.state_dir), "logs": logs}
    finally:
        daemon.stop()
    assert not (daemon.state_dir / "ops.json").exists()


@pytest.fixture
def pool_log(ops: dict[str, Any]) -> Iterator[logging.Logger]:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    setup_logging(
        "pool",
        json=True,
        path=str(ops["logs"] / "pool.log"),
        context={"region": "rack1", "host": "launcher-1"},
    )
    yield logging.getLogger("rackpool.pool.launcher")
    for h in list(root.handlers):
        if h not in before:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)


def _failures(ops: dict[str, Any]) -> dict[str, list[str]]:
    body = httpx.get(f"{ops['url']}/api/failures").json()
    return {f["key"]: f["bugs"] for f in body["failures"]}


def test_failed_launch_is_indexed_and_classified(
    ops: dict[str, Any],
    pool_log: logging.Logger,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    ids = {"provider": "rack1", "label": "small"}
    pool_log.info("launching node", extra={"node_id": "n-1", **ids})
    pool_log.warning(
        "launch failed: Quota exceeded for cores: Requested 4, but already used 20 of 20 cores",
        extra={"node_id": "n-1", "event": "launch_failed", **ids},
    )
    pool_log.error(
        "node failed: flux capacitor melted",
        extra={"node_id": "n-2", "event": "node_failed", **ids},
    )
    pool_log.info("auth with password=hunter2 and X-Auth-Token: gAAAAsecret")

    wait_for(lambda: len(_failures(ops)) >= 2, 10, "failures to be classified")
    failures = _failures(ops)
    assert failures["node:n-1"] == ["rackpool-quota-exceeded"]
    assert failures["node:n-2"] == []
    unc = httpx.get(f"{ops['url']}/api/uncategorized").json()["failures"]
    assert [f["key"] for f in unc] == ["node:n-2"] and "flux capacitor" in unc[0]["message"]

    # the secret never reached the index
    assert (
        httpx.get(f"{ops['url']}/api/search", params={"q": "hunter2 OR gAAAAsecret"}).json()[
            "total"
        ]
        == 0
    )

    # search + context, as the public sees them
    found = httpx.get(
        f"{ops['url']}/api/search",
        params={"q": 'message:"Quota exceeded" AND node_id:n-1', "since": "1h"},
    ).json()
    assert found["total"] == 1
    hit = found["hits"][0]
    assert hit["level"] == "WARNING" and hit["region"] == "rack1" and hit["component"] == "pool"
    ctx = httpx.get(
        f"{ops['url']}/api/docs/{hit['id']}/context", params={"before": 1, "after": 1}
    ).json()
    assert [h["message"] for h in ctx["hits"]][0] == "launching node"

    bugs = {b["bug"]: b for b in httpx.get(f"{ops['url']}/api/bugs").json()["bugs"]}
    assert bugs["rackpool-quota-exceeded"]["fails"] == 1
    assert bugs["rackpool-quota-exceeded"]["fails24h"] == 1
    assert sum(c for _, c in bugs["rackpool-quota-exceeded"]["hourly"]) == 1

    # the CLI finds the daemon through --state-dir
    st = ["--state-dir", ops["state"]]
    assert main(["logs", "search", 'message:"quota exceeded" AND component:pool', *st]) == 0
    out = capsys.readouterr().out
    assert "node_id=n-1" in out and "1 of 1 matching" in out
    assert main(["bugs", "list", *st]) == 0
    assert "rackpool-quota-exceeded" in capsys.readouterr().out
    assert main(["bugs", "uncategorized", *st]) == 0
    assert "node:n-2" in capsys.readouterr().out
    sig = tmp_path / "999.yaml"
    sig.write_text('query: message:"flux capacitor"\n')
    assert main(["bugs", "check", str(sig), *st]) == 0
    assert "999: 1 matching line(s)" in capsys.readouterr().out
    assert main(["logs", "tail", "node_id:n-1", "--no-follow", "--since", "1h", *st]) == 0
    tail = capsys.readouterr().out.splitlines()
    assert len(tail) == 2 and "launching node" in tail[0]
    assert main(["logs", "search", "message:(a", *st]) == 2  # the caller must fix it
    assert "position" in capsys.readouterr().err


def test_pushed_build_log_is_classified(ops: dict[str, Any]) -> None:
    url = ops["url"]
    build = {
        "build_uuid": "b-42",
        "build_name": "tempest-full",
        "build_status": "FAILURE",
        "project": "openstack/nova",
        "node_provider": "rack1",
        "tags": ["console"],
        "filename": "job-output.txt",
    }
    lines = [
        "+ ssh-keyscan 10.0.0.9",
        "ssh-keyscan failed for 10.0.0.9",
        "Authorization: Bearer abc123",
    ]
    body = {"fields": build, "lines": lines}
    assert httpx.post(f"{url}/api/push", json=body).status_code == 401
    assert (
        httpx.post(
            f"{url}/api/push", json=body, headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )
    ok = httpx.post(
        f"{url}/api/push", json=body, headers={"Authorization": f"Bearer {ops['push_token']}"}
    )
    assert ok.status_code == 202 and ok.json()["added"] == 3
    again = httpx.post(
        f"{url}/api/push", json=body, headers={"Authorization": f"Bearer {ops['push_token']}"}
    )
    assert again.json()["added"] == 0  # a retried push is not doubled
    odd = {"fields": {**build, "build_uuid": "b-43"}, "lines": ["segfault in qemu"]}
    httpx.post(
        f"{url}/api/push", json=odd, headers={"Authorization": f"Bearer {ops['push_token']}"}
    )

    wait_for(lambda: {"build:b-42", "build:b-43"} <= set(_failures(ops)), 10, "builds classified")
    failures = _failures(ops)
    assert failures["build:b-42"] == ["rackpool-ssh-keyscan-failure"]
    assert failures["build:b-43"] == []
    hits = httpx.get(f"{url}/api/search", params={"q": "build_uuid:b-42 AND tags:console"}).json()
    assert hits["total"] == 3
    assert all("abc123" not in h["message"] for h in hits["hits"])
    bad = httpx.get(f"{url}/api/search", params={"q": "foo~2"})
    assert bad.status_code == 400 and "position 3" in bad.json()["badRequest"]["message"]


def test_logs_tail_follows_new_lines(ops: dict[str, Any], pool_log: logging.Logger) -> None:
    """`rackpool logs tail QUERY` prints lines indexed after it started, once each."""
    pool_log.info("before the tail: tailmark 0")
    wait_for(
        # (not searching for "tailmark": this process logs its own requests into pool.log)
        lambda: httpx.get(f"{ops['url']}/api/search", params={"q": "before"}).json()["total"],
        10, "the first line indexed",
    )  # fmt: skip
    tail = subprocess.Popen(
        [sys.executable, "-m", "rackpool.cli", "logs", "tail", "message:tailmark", "--count", "3",
         "--interval", "0.1", "--state-dir", ops["state"]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert tail.stdout is not None
        first = tail.stdout.readline()  # the line from before, within --since 5m
        assert "tailmark 0" in first
        pool_log.info("new line: tailmark 1")
        pool_log.info("new line: tailmark 2")
        out, err = tail.communicate(timeout=30)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.communicate()
    assert tail.returncode == 0, err
    lines = [first, *out.splitlines()]
    assert [ln.split("tailmark ")[1].strip() for ln in lines] == ["0", "1", "2"], lines
