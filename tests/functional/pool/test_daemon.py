"""``rackpool pool serve`` as a user starts it, driven by the ``rackpool`` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import Sshd
from .daemon import PoolProcess


def rackpool(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rackpool.cli", *argv],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.fixture
def static_pool(tmp_path: Path, sshd: Sshd) -> Iterator[Path]:
    state = tmp_path / "state"
    cfg = {
        "state-dir": str(state),
        "api": {"port": 0, "token": "test-token-123"},
        "timing": {"tick-interval": 0.05},
        "labels": [{"name": "default", "min-ready": 1}],
        "providers": [
            {
                "name": "static1",
                "driver": "static",
                "pools": [{"nodes": [{"name": sshd.host, "connection-port": sshd.port,
                                      "labels": ["default"], "username": "root"}]}],
            }
        ],
    }  # fmt: skip
    pool = PoolProcess(tmp_path, cfg)
    try:
        pool.start()
        yield state
    finally:
        pool.stop()


def test_static_node_with_scanned_host_keys_via_cli(static_pool: Path, sshd: Sshd) -> None:
    state = str(static_pool)
    out = rackpool("node", "request", "default", "--wait", "--timeout", "30", "--state-dir", state)
    assert out.returncode == 0, out.stderr
    facts = json.loads(out.stdout)
    node = facts["nodes"][0]
    assert (node["interface_ip"], node["port"], node["username"]) == (sshd.host, sshd.port, "root")
    assert sshd.host_key in node["host_keys"]
    assert node["provider"] == "static1" and node["label"] == "default"

    # One job at a time per host: a second request waits while the host is in use.
    second = rackpool("node", "request", "default", "--state-dir", state)
    second_id = json.loads(second.stdout)["id"]
    listing = rackpool("node", "list", "--json", env={"RACKPOOL_STATE_DIR": state})
    assert [n["state"] for n in json.loads(listing.stdout)] == ["in-use"]

    assert rackpool("node", "release", node["id"], "--state-dir", state).returncode == 0
    info = json.loads((static_pool / "pool.json").read_text())
    client = httpx.Client(
        base_url=info["url"], headers={"Authorization": f"Bearer {info['token']}"}
    )
    done = client.get(f"/api/requests/{second_id}", params={"wait": 20}).json()
    assert done["state"] == "fulfilled" and done["nodes"][0]["interface_ip"] == sshd.host

    rows = httpx.get(info["url"] + "/node-list", headers={"Accept": "application/json"}).json()
    assert rows[0]["connection_port"] == sshd.port and rows[0]["state"] == "in-use"
    providers = rackpool("provider", "list", "--state-dir", state)
    assert "static1" in providers.stdout and "in service" in providers.stdout


def test_wrong_token_is_refused(static_pool: Path) -> None:
    info = json.loads((static_pool / "pool.json").read_text())
    out = rackpool("node", "list", "--url", info["url"], "--token", "wrong-token")
    assert out.returncode == 2 and "token" in out.stderr  # the caller must fix it


def test_pause_resume_and_hold_from_the_cli(static_pool: Path, sshd: Sshd) -> None:
    state = str(static_pool)
    info = json.loads((static_pool / "pool.json").read_text())
    client = httpx.Client(
        base_url=info["url"], headers={"Authorization": f"Bearer {info['token']}"}, timeout=30
    )
    paused = rackpool("provider", "pause", "static1", "--state-dir", state)
    assert paused.returncode == 0, paused.stderr
    listed = rackpool("provider", "list", "--json", "--state-dir", state)
    row = next(p for p in json.loads(listed.stdout) if p["name"] == "static1")
    assert row["paused"] is True, row

    # the only provider is paused: the request waits (bounded check), it does not fail
    req = json.loads(rackpool("node", "request", "default", "--state-dir", state).stdout)
    waited = client.get(f"/api/requests/{req['id']}", params={"wait": 1}).json()
    assert waited["state"] in ("requested", "pending"), waited

    assert rackpool("provider", "resume", "static1", "--state-dir", state).returncode == 0
    done = client.get(f"/api/requests/{req['id']}", params={"wait": 20}).json()
    assert done["state"] == "fulfilled", done
    node_id = done["nodes"][0]["id"]

    held = rackpool("node", "hold", node_id, "--comment", "debug job 42", "--state-dir", state)
    assert held.returncode == 0, held.stderr
    nodes = json.loads(rackpool("node", "list", "--json", "--state-dir", state).stdout)
    assert [(n["id"], n["state"]) for n in nodes] == [(node_id, "hold")]
    assert rackpool("node", "release", node_id, "--state-dir", state).returncode == 0
    # a static host is not deleted: it comes back for the next job once released
    again = json.loads(
        rackpool(
            "node", "request", "default", "--wait", "--timeout", "30", "--state-dir", state
        ).stdout
    )
    assert again["state"] == "fulfilled" and again["nodes"][0]["interface_ip"] == sshd.host
    client.close()
