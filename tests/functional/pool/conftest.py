"""Pool tests against real rackpool region controllers on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rackpool.pool.config import PoolConfig


def openstack_provider(name: str, clouds_yaml: Path, region: str, **kw: Any) -> dict[str, Any]:
    return {
        "name": name,
        "driver": "openstack",
        "cloud": f"rackpool-{region}",
        "region-name": region,
        "clouds-yaml": str(clouds_yaml),
        "host-key-checking": False,  # fake hosts run no sshd
        "poll-interval": 0.05,
        "boot-timeout": 30,
        "pools": [
            {
                "name": "main",
                "labels": [
                    {"name": "default", "cloud-image": "host", "flavor-name": "m1.tiny"},
                ],
            }
        ],
        **kw,
    }


def pool_config(providers: list[dict[str, Any]], min_ready: int = 0, **kw: Any) -> PoolConfig:
    data: dict[str, Any] = {
        "labels": [{"name": "default", "min-ready": min_ready}],
        "providers": providers,
        "api": {"token": "secret-token"},
        "timing": {"cleanup-interval": 0.5, "tick-interval": 0.05},
        **kw,
    }
    return PoolConfig.model_validate(data)


# -- a real sshd on loopback, for host-key scanning ---------------------------------
import os  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import pytest  # noqa: E402

from rackpool.core.clock import wait_for  # noqa: E402


@dataclass
class Sshd:
    host: str
    port: int
    host_key: str  # "<type> <base64>" of its public host key


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(binary):
        pytest.skip("openssh-server not installed")
    d = tmp_path / "sshd"
    d.mkdir()
    key = d / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    host, port = "127.0.0.1", _free_port("127.0.0.1")
    cfg = d / "sshd_config"
    cfg.write_text(
        f"Port {port}\nListenAddress {host}\nHostKey {key}\nPidFile {d}/sshd.pid\n"
        "UsePAM no\nPasswordAuthentication no\nStrictModes no\n"
    )
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen([binary, "-D", "-e", "-f", str(cfg)], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers(host, port) or proc.poll() is not None, 10, "sshd")
        if proc.poll() is not None:
            pytest.skip("sshd would not start here")
        pub = (d / "ssh_host_ed25519_key.pub").read_text().split()
        yield Sshd(host, port, f"{pub[0]} {pub[1]}")
    finally:
        proc.terminate()
        proc.wait(10)


# -- the pool's stores: SQLite and a real ZooKeeper ------------------------------------
from tests.support.zookeeper import ZooKeeper, unique_chroot, zookeeper_server  # noqa: E402, F401

from rackpool.pool.store import SqliteStore  # noqa: E402
from rackpool.pool.store.base import Store  # noqa: E402


class Stores:
    """Makes stores of one kind on one shared backing (an SQLite file, or a ZooKeeper
    chroot of its own): each ``open()`` is another process's view; closes them all."""

    def __init__(self, kind: str, tmp: Path, zk: ZooKeeper | None) -> None:
        self.kind, self.tmp, self.zk = kind, tmp, zk
        self.chroot = unique_chroot()
        self.made: list[Store] = []

    def open(self, session_timeout: float = 4.0) -> Store:
        store: Store
        if self.kind == "sqlite":
            store = SqliteStore(self.tmp / "pool.sqlite")
        else:
            from rackpool.pool.store.zookeeper import ZooKeeperStore

            assert self.zk is not None
            store = ZooKeeperStore(self.zk.hosts, self.chroot, session_timeout=session_timeout)
        self.made.append(store)
        return store

    def close(self) -> None:
        for s in self.made:
            s.close()


@pytest.fixture(params=["sqlite", "zookeeper"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    zk = request.getfixturevalue("zookeeper_server") if request.param == "zookeeper" else None
    s = Stores(request.param, tmp_path, zk)
    try:
        yield s
    finally:
        s.close()
