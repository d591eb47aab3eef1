"""`rackpool up` with container hosts, stopped and started again, then `rackpool down`.

Stopping `up` keeps instances running (the next `up` adopts them, as an agent restart
does); `rackpool down` removes every trace. Needs root, runc and sshd.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.functional.agent.helpers import known_hosts, ssh
from tests.support.region import connect
from tests.support.up import UpProcess

from rackpool.agent.hostnet import link_exists
from rackpool.agent.virt.container.boot import parse_host_keys
from rackpool.cli.up import container_unavailable

pytestmark = pytest.mark.root

RACKPOOL = [sys.executable, "-m", "rackpool.cli"]
BRIDGES = ("rpb-r1-h1", "rps-r1")
UP_ARGS = ["--driver", "container", "--regions", "1", "--hosts", "1", "--no-pool", "--no-ops"]


def rackpool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RACKPOOL, *args], capture_output=True, text=True, timeout=120, check=False
    )


def _up(tmp_path: Path, args: list[str]) -> Iterator[UpProcess]:
    why = container_unavailable()
    if why:
        pytest.skip(why)
    if any(link_exists(b) for b in BRIDGES):
        pytest.skip("another rackpool up owns this machine's r1 bridges")
    state = tmp_path / "state"
    handle = UpProcess(state, args)
    try:
        yield handle
    finally:
        handle.stop()
        if state.exists():
            rackpool("down", "--state-dir", str(state))


@pytest.fixture
def up(tmp_path: Path) -> Iterator[UpProcess]:
    yield from _up(tmp_path, UP_ARGS)


@pytest.fixture
def up_with_pool(tmp_path: Path) -> Iterator[UpProcess]:
    yield from _up(tmp_path, ["--driver", "container", "--hosts", "2", "--no-ops"])


def test_a_server_and_a_node_right_after_up_succeed_on_container_hosts(
    up_with_pool: UpProcess,
) -> None:
    up = up_with_pool.start()
    key = up.state / "id_ed25519"

    conn = connect(up.state / "clouds.yaml", "rackpool-r1")
    server = conn.create_server(
        "first", image="host", flavor="m1.tiny", key_name="default", wait=True, timeout=60
    )
    assert server.status == "ACTIVE"

    out = rackpool("node", "request", "default", "--wait", "--timeout", "120",
                   "--state-dir", str(up.state))  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    (node,) = json.loads(out.stdout)["nodes"]
    known = known_hosts(up.state.parent / "known-node", node["interface_ip"], node["host_keys"])
    login = ssh(node["interface_ip"], key, known, "true")
    assert login.returncode == 0, login.stderr


def test_instances_outlive_up_are_adopted_and_down_removes_everything(up: UpProcess) -> None:
    up.start()
    conn = connect(up.state / "clouds.yaml", "rackpool-r1")
    server = conn.create_server(
        "kept", image="host", flavor="m1.tiny", key_name="default", wait=True, timeout=60
    )
    console = conn.compute.get_server_console_output(server)["output"]
    known = known_hosts(up.state.parent / "known", server.access_ipv4, parse_host_keys(console))
    key = up.state / "id_ed25519"

    def login() -> str:
        out = ssh(server.access_ipv4, key, known, "hostname")
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert login() == "kept"
    refused = rackpool("down", "--state-dir", str(up.state))
    assert refused.returncode != 0 and "still running" in refused.stderr
    assert "Traceback" not in refused.stderr

    up.stop()
    assert login() == "kept"  # the instance outlived every daemon

    up.start()  # the agent adopts it; the controller still shows it ACTIVE
    conn = connect(up.state / "clouds.yaml", "rackpool-r1")
    assert conn.get_server(server.id).status == "ACTIVE"
    assert login() == "kept"
    up.stop()

    netns = f"/run/netns/rp-{server.id}"
    assert Path(netns).exists()
    done = rackpool("down", "--state-dir", str(up.state))
    assert done.returncode == 0, done.stderr
    assert "removed 1 instance" in done.stdout
    assert not Path(netns).exists()
    assert not any(link_exists(b) for b in BRIDGES)
    assert str(up.state) not in Path("/proc/self/mounts").read_text()
