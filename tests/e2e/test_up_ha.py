"""``rackpool up --ha`` with fake hosts: the same commands work, and keep working while a
controller and a launcher are dead; ``up`` restarts them and, told to stop, stops every
process it started (PostgreSQL, ZooKeeper and HAProxy included) and frees their ports.

Real PostgreSQL, ZooKeeper and HAProxy from Debian; missing ones skip (a failure under
``CI=true``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
from tests.support.region import connect
from tests.support.up import UpProcess

from rackpool.cli import up_ha
from rackpool.core.clock import wait_for

INSTANCES = ip_network("198.18.0.0/15")


@pytest.fixture
def up(tmp_path: Path) -> Iterator[UpProcess]:
    if why := up_ha.unavailable(pool=True):
        pytest.skip(why)
    handle = UpProcess(tmp_path / "state", ["--ha", "--driver", "fake", "--hosts", "1", "--no-web"])
    started: dict[int, str] = {}
    try:
        yield handle.start(timeout=150)
    finally:
        started.update(handle.children())
        handle.stop()
        handle.kill_leftovers()
        for pid in started:  # postgres runs on a bind mount: its cmdline lacks the state dir
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def request_node(state: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "rackpool.cli", "node", "request", "default", "--wait",
         "--timeout", "60", "--state-dir", str(state)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    assert result["state"] == "fulfilled", result
    (node,) = result["nodes"]
    assert ip_address(node["interface_ip"]) in INSTANCES
    return result


def create_server(up: UpProcess, name: str) -> None:
    conn = connect(up.state / "clouds.yaml", "rackpool-r1")
    try:
        server = conn.create_server(name, image="host", flavor="m1.tiny", wait=True, timeout=60)
        assert server.status == "ACTIVE"
        assert ip_address(server.access_ipv4) in INSTANCES
    finally:
        conn.close()


def child(up: UpProcess, needle: str) -> int:
    (pid,) = [pid for pid, cmd in up.children().items() if needle in cmd]
    return pid


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_up_ha_serves_through_a_dead_controller_and_launcher_and_stops_everything(
    up: UpProcess,
) -> None:
    create_server(up, "before")
    request_node(up.state)
    ha = json.loads((up.state / "ha.json").read_text())
    assert len(ha["haproxy"]["r1"]["backends"]) == 2
    assert len(ha["haproxy"]["pool"]["backends"]) == 2

    controller = child(up, "controller1.yaml")
    launcher = child(up, "pool-launcher1.yaml")
    for pid in (controller, launcher):  # processes this test's up started
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not running(controller) and not running(launcher), 10, "the kills")

    create_server(up, "during")  # through HAProxy to the surviving controller
    request_node(up.state)  # served by the surviving launcher

    def restarted() -> bool:
        pids = up.children()
        return any("controller1.yaml" in c and p != controller for p, c in pids.items()) and any(
            "pool-launcher1.yaml" in c and p != launcher for p, c in pids.items()
        )

    wait_for(restarted, 30, "up to restart the killed controller and launcher")
    said = up.text(up.mark).decode()
    assert f"(pid {controller}) was killed by SIGKILL" in said
    assert f"(pid {launcher}) was killed by SIGKILL" in said
    create_server(up, "after")

    started = up.children()
    names = " ".join(started.values())
    for engine in ("postgres", "java", "haproxy", "cloud serve", "pool serve"):
        assert engine in names, f"no {engine} among up's children: {started}"
    ports = [ha["postgres"], ha["zookeeper"]]
    for proxy in ha["haproxy"].values():
        ports += [proxy["port"], *proxy["backends"]]

    up.stop()
    wait_for(lambda: not any(running(p) for p in started), 20, "every process up started to exit")
    assert [p for p in ports if listening(p)] == []
    assert not (up.state / "pool.json").exists()
