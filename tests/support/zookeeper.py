"""Real ZooKeeper servers for tests, from Debian's ``zookeeper`` package (Java): a thin
test-facing wrapper over :mod:`rackpool.cli.localservices` (which ``rackpool up --ha``
uses too), adding the test CA and pytest's skip/fixture.

    zk = start_server(tmp_path)                  # one standalone server on a free loopback port
    zk.hosts                                     # "127.0.0.1:PORT" for kazoo / pool.yaml
    zk.stop()                                    # SIGTERM then SIGKILL, by its PID

    tls = make_tls(tmp_path / "tls")             # a CA, server keystore/truststore, client cert
    zk = start_server(tmp_path, tls=tls)         # plus a TLS listener: zk.secure_hosts

    ens = start_ensemble(tmp_path, 3)            # a 3-node quorum; ens.leader() asks each (srvr)
    ens.leader().kill()                          # kill -9 the leader

Each server runs in its own directory (zoo.cfg, myid, data, log) and is stopped by the
PID of the process the test started, even when the test fails (fixtures stop them in
``finally``). ``zookeeper_server`` is a session-scoped fixture for one shared server:
tests keep apart by using their own chroot (``unique_chroot()``).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rackpool.cli.localservices import (
    LocalServiceError,
    ZooKeeperEnsemble,
    ZooKeeperServer,
    ZooKeeperTls,
    free_port,
    zk_four_letter,
    zookeeper_unavailable,
)

# test data: no fsync per write on a shared CI disk (durable=False), a smaller heap
HEAP_MB = 192
TLS_PASSWORD = "test-store-pw"

ZooKeeper = ZooKeeperServer
Ensemble = ZooKeeperEnsemble
four_letter = zk_four_letter
available = zookeeper_unavailable

__all__ = [
    "Ensemble",
    "LocalServiceError",
    "Tls",
    "ZooKeeper",
    "available",
    "four_letter",
    "free_port",
    "make_tls",
    "start_ensemble",
    "start_server",
    "unique_chroot",
    "zookeeper_server",
]


def unique_chroot(prefix: str = "/rackpool-test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class Tls:
    """Files made by :func:`make_tls`: PEM for kazoo, PKCS12 stores for ZooKeeper."""

    dir: Path
    ca: Path
    client_cert: Path
    client_key: Path
    keystore: Path
    truststore: Path
    password: str = TLS_PASSWORD


def _run(argv: list[str], cwd: Path) -> None:
    out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {out.stderr[-1500:]}")


def make_tls(directory: Path) -> Tls:
    """A test CA; a server certificate for 127.0.0.1/localhost in a PKCS12 keystore; a
    truststore with the CA (keytool); a client certificate signed by the same CA."""
    d = directory
    d.mkdir(parents=True, exist_ok=True)
    openssl = ["openssl"]
    _run([*openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
          "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=rackpool test CA"], d)  # fmt: skip
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        _run([*openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key",
              "-out", f"{who}.csr", "-subj", f"/CN=rackpool test {who}"], d)  # fmt: skip
        _run([*openssl, "x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey",
              "ca.key", "-CAcreateserial", "-days", "2", "-out", f"{who}.pem",
              "-extfile", f"{who}.ext"], d)  # fmt: skip
    _run([*openssl, "pkcs12", "-export", "-in", "server.pem", "-inkey", "server.key",
          "-certfile", "ca.pem", "-name", "server", "-out", "keystore.p12",
          "-passout", f"pass:{TLS_PASSWORD}"], d)  # fmt: skip
    keytool = shutil.which("keytool") or "/usr/bin/keytool"
    (d / "truststore.p12").unlink(missing_ok=True)  # keytool adds to an existing store
    _run([keytool, "-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem",
          "-keystore", "truststore.p12", "-storetype", "PKCS12",
          "-storepass", TLS_PASSWORD], d)  # fmt: skip
    return Tls(d, d / "ca.pem", d / "client.pem", d / "client.key",
               d / "keystore.p12", d / "truststore.p12")  # fmt: skip


def _skip_unless_available() -> None:
    if why := zookeeper_unavailable():
        pytest.skip(why)  # a failure under CI=true (tests/conftest.py)


def start_server(directory: Path, tls: Tls | None = None, tick_ms: int = 200) -> ZooKeeper:
    """A standalone server in ``directory``, serving when this returns."""
    _skip_unless_available()
    server_tls = None
    if tls is not None:
        server_tls = ZooKeeperTls(tls.keystore, tls.truststore, tls.password, "need")
    zk = ZooKeeper(directory, 0, tick_ms, tls=server_tls, durable=False, heap_mb=HEAP_MB)
    return zk.start()


def start_ensemble(directory: Path, size: int = 3, tick_ms: int = 200) -> Ensemble:
    """``size`` servers on loopback forming one quorum; serving when this returns."""
    _skip_unless_available()
    return Ensemble(directory, size, tick_ms, durable=False, heap_mb=HEAP_MB).start()


@pytest.fixture(scope="session")
def zookeeper_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeper]:
    """One server for the session; each test uses its own chroot."""
    zk = start_server(tmp_path_factory.mktemp("zookeeper"))
    try:
        yield zk
    finally:
        zk.stop()
