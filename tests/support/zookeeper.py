"""Real ZooKeeper servers for tests, from Debian's ``zookeeper`` package (Java).

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

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rackpool.core.clock import Timeout, iterate_timeout

JAVA = shutil.which("java") or "/usr/bin/java"
JARS = Path("/usr/share/java")
# zookeeper.jar's manifest names its dependencies (netty, jute, slf4j-api ...);
# slf4j-simple makes its log lines plain stderr lines in the server's log file.
# The Netty server (needed for TLS) also wants codec, resolver and unix-common, which the
# manifest does not list.
CLASSPATH = ":".join(
    str(JARS / j)
    for j in ("zookeeper.jar", "slf4j-simple.jar", "netty-codec.jar", "netty-resolver.jar",
              "netty-transport-native-unix-common.jar")
)  # fmt: skip
FOUR_LETTER = "srvr,mntr,ruok,stat,conf"
TLS_PASSWORD = "test-store-pw"


def available() -> str | None:
    """Why ZooKeeper cannot run here, or None."""
    if not os.path.exists(JAVA):
        return "no java (apt install default-jre-headless)"
    if not (JARS / "zookeeper.jar").exists():
        return "no /usr/share/java/zookeeper.jar (apt install zookeeper)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def four_letter(port: int, cmd: str, timeout: float = 2.0) -> str:
    """ZooKeeper's four-letter command (``srvr``, ``mntr``, ``ruok``); '' if no answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(cmd.encode())
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


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


@dataclass
class ZooKeeper:
    """One ZooKeeper server process (standalone or one member of an ensemble)."""

    dir: Path
    port: int
    myid: int = 0
    secure_port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    extra: list[str] = field(default_factory=list)

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def secure_hosts(self) -> str:
        assert self.secure_port is not None
        return f"127.0.0.1:{self.secure_port}"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def log_path(self) -> Path:
        return self.dir / "zookeeper.log"

    def start(self) -> ZooKeeper:
        argv = [
            JAVA, "-Xmx192m", "-Xss512k", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dzookeeper.admin.enableServer=false",
            "-cp", CLASSPATH, "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            str(self.dir / "zoo.cfg"),
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir
            )
        return self

    def answers(self) -> bool:
        return self.mode() in ("standalone", "leader", "follower")

    def mode(self) -> str:
        """``standalone``, ``leader``, ``follower``; '' while not serving."""
        for line in four_letter(self.port, "srvr", 1.0).splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return ""

    def wait_serving(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"zookeeper exited {self.proc.returncode}: {self.log_tail()}")
            if self.answers():
                return
            time.sleep(0.05)
        raise TimeoutError(f"zookeeper on {self.port} not serving in {timeout}s: {self.log_tail()}")

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def kill(self) -> None:
        """kill -9 by PID."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()


def _config(
    zk: ZooKeeper, tick_ms: int, servers: list[tuple[int, int, int]] | None, tls: Tls | None
) -> str:
    lines = [
        f"tickTime={tick_ms}",
        "initLimit=20",
        "syncLimit=10",
        f"dataDir={zk.dir / 'data'}",
        f"clientPort={zk.port}",
        "clientPortAddress=127.0.0.1",
        "maxClientCnxns=0",
        "admin.enableServer=false",
        f"4lw.commands.whitelist={FOUR_LETTER}",
        # sessions from 2 ticks up to 60 s (the pool asks for its session-timeout)
        f"minSessionTimeout={2 * tick_ms}",
        "maxSessionTimeout=60000",
        "preAllocSize=4096",
        "snapCount=20000",
        "forceSync=no",  # test data: no fsync per write on a shared CI disk
    ]
    if servers:
        for sid, peer, election in servers:
            lines.append(f"server.{sid}=127.0.0.1:{peer}:{election}")
        lines.append("cnxTimeout=1000")
    if tls is not None:
        assert zk.secure_port is not None
        lines += [
            f"secureClientPort={zk.secure_port}",
            "secureClientPortAddress=127.0.0.1",
            "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
            f"ssl.keyStore.location={tls.keystore}",
            f"ssl.keyStore.password={tls.password}",
            "ssl.keyStore.type=PKCS12",
            f"ssl.trustStore.location={tls.truststore}",
            f"ssl.trustStore.password={tls.password}",
            "ssl.trustStore.type=PKCS12",
            "ssl.clientAuth=need",
        ]
    return "\n".join(lines) + "\n"


def start_server(directory: Path, tls: Tls | None = None, tick_ms: int = 200) -> ZooKeeper:
    """A standalone server in ``directory``, serving when this returns."""
    if why := available():
        pytest.skip(why)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data").mkdir(exist_ok=True)
    zk = ZooKeeper(directory, free_port(), secure_port=free_port() if tls else None)
    (directory / "zoo.cfg").write_text(_config(zk, tick_ms, None, tls))
    zk.start()
    try:
        zk.wait_serving()
    except BaseException:
        zk.stop()
        raise
    return zk


@dataclass
class Ensemble:
    servers: list[ZooKeeper]

    @property
    def hosts(self) -> str:
        return ",".join(s.hosts for s in self.servers)

    def leader(self) -> ZooKeeper:
        for s in self.servers:
            if s.mode() == "leader":
                return s
        raise LookupError("no server says it leads (srvr)")

    def modes(self) -> dict[int, str]:
        return {s.myid: s.mode() for s in self.servers}

    def wait_quorum(self, timeout: float = 60, alive: list[ZooKeeper] | None = None) -> None:
        """Until one leader and every other live server following."""
        live = alive if alive is not None else self.servers
        try:
            for _ in iterate_timeout(timeout, "a ZooKeeper quorum", 0.1):
                modes = [s.mode() for s in live]
                if modes.count("leader") == 1 and modes.count("follower") == len(live) - 1:
                    return
        except Timeout:
            raise TimeoutError(f"no quorum within {timeout}s: {self.modes()}") from None

    def stop(self) -> None:
        for s in self.servers:
            s.stop()


def start_ensemble(directory: Path, size: int = 3, tick_ms: int = 200) -> Ensemble:
    """``size`` servers on loopback forming one quorum; serving when this returns."""
    if why := available():
        pytest.skip(why)
    ports = [(free_port(), free_port(), free_port()) for _ in range(size)]
    peers = [(i + 1, p[1], p[2]) for i, p in enumerate(ports)]
    servers = []
    for i, (client, _, _) in enumerate(ports):
        d = directory / f"zk{i + 1}"
        (d / "data").mkdir(parents=True, exist_ok=True)
        (d / "data" / "myid").write_text(f"{i + 1}\n")
        zk = ZooKeeper(d, client, myid=i + 1)
        (d / "zoo.cfg").write_text(_config(zk, tick_ms, peers, None))
        servers.append(zk)
    ens = Ensemble(servers)
    try:
        for s in servers:
            s.start()
        ens.wait_quorum()
    except BaseException:
        ens.stop()
        raise
    return ens


@pytest.fixture(scope="session")
def zookeeper_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeper]:
    """One server for the session; each test uses its own chroot."""
    zk = start_server(tmp_path_factory.mktemp("zookeeper"))
    try:
        yield zk
    finally:
        zk.stop()
