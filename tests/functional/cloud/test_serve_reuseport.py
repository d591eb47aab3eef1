"""Port handover between two ``rackpool cloud serve`` processes (``--reuse-port``).

The upgrade of a controller starts the new version on the same port while the old one
serves, then stops the old one gracefully: a client hammering the API sees no failure.
Loopback only, in a network namespace of its own: there ``net.ipv4.tcp_migrate_req`` is
1 (as the deploy sets it on controller hosts), so connections queued on the old listener
when it closes move to the new one instead of being reset. Each request opens a new
connection (what a refused port would break).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml
from tests.support import procs
from tests.support.region import bootstrap, free_port, region_config

from rackpool.core.clock import wait_for

CLONE_NEWNET = 0x40000000


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh network namespace with loopback up and tcp_migrate_req=1."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for a network namespace")
    name = f"rp-reuseport-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=30)
        subprocess.run(
            ["ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv4.tcp_migrate_req=1"],
            check=True, timeout=30,
        )  # fmt: skip
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=30)


def _enter(netns: str) -> None:
    """Move the calling thread (only it) into ``netns``."""
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns}")
    finally:
        os.close(fd)


@dataclass
class Controller:
    proc: subprocess.Popen[bytes]
    ready: Path
    log: Path

    @property
    def pid(self) -> int:
        return int(json.loads(self.ready.read_text())["pid"])


@dataclass
class Hammer:
    """Threads sending GET / on fresh connections until stopped."""

    url: str
    netns: str
    threads: int = 4
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def _loop(self) -> None:
        _enter(self.netns)
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=10, trust_env=False, limits=limits) as http:
            while not self.stop.is_set():
                try:
                    r = http.get(self.url + "/")
                    good, why = r.status_code == 200, f"HTTP {r.status_code}"
                except httpx.HTTPError as exc:
                    good, why = False, f"{type(exc).__name__}: {exc}"
                with self._lock:
                    if good:
                        self.ok += 1
                    else:
                        self.failed.append(why)
                time.sleep(0.005)

    def __enter__(self) -> Hammer:
        for i in range(self.threads):
            t = threading.Thread(target=self._loop, name=f"hammer-{i}", daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._workers:
            t.join(15)

    def served(self) -> int:
        with self._lock:
            return self.ok


@pytest.fixture
def region_files(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    port = free_port()
    state = tmp_path / "region"
    state.mkdir()
    config = region_config(state, fake_hosts=[], listen={"host": "127.0.0.1", "port": port})
    path = state / "region.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    bootstrap(config)
    yield path, f"http://127.0.0.1:{port}"


def _start(tmp_path: Path, netns: str, config: Path, name: str, *flags: str) -> Controller:
    """``rackpool cloud serve`` in ``netns`` (``ip netns exec`` execs it: same PID)."""
    ready = tmp_path / f"{name}.ready"
    log = tmp_path / f"{name}.log"
    argv = ["ip", "netns", "exec", netns, sys.executable, "-m", "rackpool.cli", "cloud",
            "serve", "--config", str(config), "--ready-file", str(ready), *flags]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    return Controller(proc, ready, log)


def test_new_controller_takes_the_port_without_a_failed_request(
    tmp_path: Path, region_files: tuple[Path, str], netns: str
) -> None:
    config, url = region_files
    old = _start(tmp_path, netns, config, "old", "--reuse-port")
    new: Controller | None = None
    try:
        procs.wait_started(old.proc, old.ready.exists, 60, "old controller", old.log)
        with Hammer(url, netns) as hammer:
            wait_for(lambda: hammer.served() >= 20, 30, "requests to the old controller")
            new = _start(tmp_path, netns, config, "new", "--reuse-port")
            procs.wait_started(new.proc, new.ready.exists, 60, "new controller", new.log)
            assert new.pid != old.pid
            at_stop = hammer.served()
            t0 = time.monotonic()
            old.proc.terminate()
            old.proc.wait(30)
            drained = time.monotonic() - t0
            after_old = hammer.served()
            wait_for(lambda: hammer.served() >= after_old + 50, 30, "requests to the new one")
        print(
            f"handover: {hammer.ok} requests ok, {len(hammer.failed)} failed; "
            f"{after_old - at_stop} served while the old one drained ({drained:.2f}s)"
        )
        assert hammer.failed == [], hammer.failed[:5]
        # uvicorn re-raises SIGTERM after its graceful shutdown (systemd: a clean stop)
        assert old.proc.returncode in (0, -15), procs.tail(old.log)
        assert "Finished server process" in procs.tail(old.log, 600)
        assert new.proc.poll() is None, procs.tail(new.log)
    finally:
        procs.stop(old.proc)
        if new is not None:
            procs.stop(new.proc)


def test_without_reuse_port_a_second_controller_cannot_bind(
    tmp_path: Path, region_files: tuple[Path, str]
) -> None:
    config, _ = region_files
    old = procs.spawn(["cloud", "serve", "--config", str(config), "--ready-file",
                       str(tmp_path / "old.ready"), "--reuse-port"], tmp_path / "old.log")  # fmt: skip
    try:
        ready = tmp_path / "old.ready"
        procs.wait_started(old, ready.exists, 60, "old controller", tmp_path / "old.log")
        proc = subprocess.run(
            [sys.executable, "-m", "rackpool.cli", "cloud", "serve", "--config", str(config)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 2
        assert "cannot bind" in proc.stderr
        assert "Traceback" not in proc.stderr
    finally:
        procs.stop(old)
