"""`rackpool up` with fake hosts: usable when it says so, keeps its daemons running, and
stops everything it started whenever it is told to, even while still starting.

No root needed (the fake driver), so this runs in the default suite.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.region import connect
from tests.support.up import UpProcess

from rackpool.core.clock import Timeout, wait_for

RACKPOOL = [sys.executable, "-m", "rackpool.cli"]
INSTANCES = ip_network("198.18.0.0/15")


def rackpool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RACKPOOL, *args], capture_output=True, text=True, timeout=120, check=False
    )


def request_node(state: Path) -> dict[str, Any]:
    out = rackpool(
        "node", "request", "default", "--wait", "--timeout", "60", "--state-dir", str(state)
    )
    assert out.returncode == 0, out.stdout + out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def gone(up: UpProcess) -> dict[int, str]:
    """Wait (bounded) for nothing naming up's state dir to run; return what still does."""
    with contextlib.suppress(Timeout):
        wait_for(lambda: not up.leftovers(), 10, "every daemon of rackpool up to exit")
    return up.leftovers()


@pytest.fixture
def make_up(tmp_path: Path) -> Iterator[Any]:
    made: list[UpProcess] = []

    def make(*args: str) -> UpProcess:
        handle = UpProcess(tmp_path / "state", ["--driver", "fake", *args])
        made.append(handle)
        return handle

    try:
        yield make
    finally:
        for handle in made:
            try:
                handle.stop()
            finally:
                handle.kill_leftovers()


def test_a_server_and_a_node_requested_right_after_up_says_so_succeed(make_up: Any) -> None:
    up = make_up("--regions", "2", "--hosts", "1").start()

    conn = connect(up.state / "clouds.yaml", "rackpool-r2")
    server = conn.create_server(
        "first", image="host", flavor="m1.small", key_name="default", wait=True, timeout=30
    )
    assert server.status == "ACTIVE"
    assert ip_address(server.access_ipv4) in INSTANCES

    result = request_node(up.state)
    assert result["state"] == "fulfilled"
    (node,) = result["nodes"]
    assert ip_address(node["interface_ip"]) in INSTANCES


def restarted_pool(up: UpProcess, old_pid: int) -> dict[str, Any]:
    """Wait until pool.json names a new pool, a child of up, whose API answers."""
    discovery = up.state / "pool.json"

    def serving() -> dict[str, Any] | None:
        try:
            now: dict[str, Any] = json.loads(discovery.read_text())
        except (OSError, ValueError):
            return None
        if now["pid"] == old_pid or now["pid"] not in up.children():
            return None
        with_token = {"Authorization": f"Bearer {now['token']}"}
        try:
            ok = httpx.get(f"{now['url']}/api/providers", headers=with_token, timeout=2)
        except httpx.HTTPError:
            return None
        return now if ok.status_code == 200 else None

    found = wait_for(serving, 30, "up to restart the pool")
    assert isinstance(found, dict)
    return found


def test_a_killed_pool_is_restarted_at_the_same_url_with_backoff(make_up: Any) -> None:
    up = make_up("--hosts", "1", "--no-ops").start()
    first = json.loads((up.state / "pool.json").read_text())
    assert first["pid"] in up.children()

    os.kill(first["pid"], signal.SIGKILL)  # the pool daemon this test's up started
    second = restarted_pool(up, first["pid"])
    assert (second["url"], second["token"]) == (first["url"], first["token"])
    assert request_node(up.state)["state"] == "fulfilled"  # the restarted pool serves

    os.kill(second["pid"], signal.SIGKILL)  # dies again soon: up waits longer
    third = restarted_pool(up, second["pid"])
    assert third["url"] == first["url"]

    said = up.text(up.mark).decode()
    assert f"pool (pid {first['pid']}) was killed by SIGKILL" in said
    assert f"pool restarted (pid {second['pid']}, restart 1)" in said
    assert "restarting in 0.5s" in said and "restarting in 1.0s" in said
    logged = [
        json.loads(line) for line in (up.state / "logs" / "up.jsonl").read_text().splitlines()
    ]
    restarts = [e["pid"] for e in logged if e.get("event") == "daemon_restarted"]
    assert restarts == [second["pid"], third["pid"]]

    up.stop()
    assert gone(up) == {}, "a restarted pool outlived up"
    assert not (up.state / "pool.json").exists()


@pytest.mark.parametrize(
    ("started", "sig"),
    [
        ("cloud serve", signal.SIGTERM),
        ("ops serve", signal.SIGINT),
        ("pool serve", signal.SIGTERM),
    ],
)
def test_a_stop_while_up_is_starting_stops_everything_it_started(
    make_up: Any, started: str, sig: signal.Signals
) -> None:
    up = make_up("--regions", "2", "--hosts", "1").launch()

    def daemon_running() -> bool:
        assert up.proc is not None and up.proc.poll() is None, up.text()
        return any(started in cmd for cmd in up.children().values())

    wait_for(daemon_running, 60, f"rackpool up to start '{started}'", interval=0.02)
    assert b"rackpool is up" not in up.text()
    seen = up.leftovers()
    assert seen, "no daemon of up was found running"

    assert up.proc is not None
    up.proc.send_signal(sig)
    assert up.proc.wait(60) == 0, up.text()

    assert gone(up) == {}
    assert not (up.state / "up.json").exists()
