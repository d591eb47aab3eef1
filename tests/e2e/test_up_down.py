"""`rackpool up` with container hosts, stopped and started again, then `rackpool down`.

Stopping `up` keeps instances running (the next `up` adopts them, as an agent restart
does); `rackpool down` removes every trace. Needs root, runc and sshd.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.functional.agent.helpers import known_hosts, ssh
from tests.support.region import connect

from rackpool.agent.hostnet import link_exists
from rackpool.cli.up import container_unavailable
from rackpool.core.clock import wait_for

pytestmark = pytest.mark.root

RACKPOOL = [sys.executable, "-m", "rackpool.cli"]
BRIDGES = ("rpb-r1-h1", "rps-r1")


class Up:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.out = state.parent / f"{state.name}.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Up:
        mark = self.out.stat().st_size if self.out.exists() else 0
        with open(self.out, "ab") as out:
            self.proc = subprocess.Popen(
                [*RACKPOOL, "up", "--state-dir", str(self.state), "--driver", "container",
                 "--regions", "1", "--hosts", "1", "--no-pool", "--no-ops"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        wait_for(
            lambda: self.proc.poll() is not None or b"rackpool is up" in self.text(mark),  # type: ignore[union-attr]
            60,
            "rackpool up to start",
        )
        assert self.proc.poll() is None, self.text(mark)
        return self

    def text(self, mark: int = 0) -> bytes:
        return self.out.read_bytes()[mark:]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            assert self.proc.wait(60) == 0, self.text()
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)


def rackpool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RACKPOOL, *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    why = container_unavailable()
    if why:
        pytest.skip(why)
    if any(link_exists(b) for b in BRIDGES):
        pytest.skip("another rackpool up owns this machine's r1 bridges")
    state = tmp_path / "state"
    handle = Up(state)
    try:
        yield handle
    finally:
        handle.stop()
        if state.exists():
            rackpool("down", "--state-dir", str(state))


def test_instances_outlive_up_are_adopted_and_down_removes_everything(up: Up) -> None:
    up.start()
    conn = connect(up.state / "clouds.yaml", "rackpool-r1")
    server = conn.create_server(
        "kept", image="host", flavor="m1.tiny", key_name="default", wait=True, timeout=60
    )
    console = conn.compute.get_server_console_output(server)["output"]
    block = console.split("-----BEGIN SSH HOST KEY KEYS-----")[1].split("-----END")[0]
    known = known_hosts(
        up.state.parent / "known", server.access_ipv4,
        [" ".join(line.split()[:2]) for line in block.strip().splitlines()],
    )  # fmt: skip
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
