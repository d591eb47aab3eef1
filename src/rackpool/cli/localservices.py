"""Local engines for scale-out on one machine: PostgreSQL, ZooKeeper and HAProxy.

Debian's packages, started as plain child processes (stopped by their PID, never by
name), listening on loopback only. The tests use them (a session's PostgreSQL, two
controllers behind HAProxy), and so will ``rackpool up --ha``::

    pg = PostgresCluster.create(durable=False).start()   # initdb + postgres, 127.0.0.1
    url = pg.create_database("region_r1")                 # postgresql://postgres:…@…/region_r1
    lb = HAProxy(work_dir, [("127.0.0.1", 8001), ("127.0.0.1", 8002)]).start()
    lb.url                                                # http://127.0.0.1:<port>
    zk = ZooKeeperServer(work_dir / "zk").start()         # standalone, durable data dir
    zk.hosts                                              # 127.0.0.1:<port>
    lb.stop(); zk.stop(); pg.stop()                       # pg.stop removes the cluster directory

Each class starts its process with ``start()`` (waits until it serves, picks a free port)
and can start it again on the same port with ``spawn()`` (no wait): ``rackpool up``
restarts a dead engine that way.

Errors are :class:`LocalServiceError` with the child's log tail; passwords never
appear in one.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from rackpool.core.errors import TemporaryError

PG_BIN_DIRS = tuple(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
SUPERUSER = "postgres"
DB_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class LocalServiceError(TemporaryError):
    """A local engine did not start (or answer) in time; the message has its log's tail."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _tail(path: Path, size: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except FileNotFoundError:
        return ""


def _wait(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float, what: str, log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise LocalServiceError(f"{what} exited with {proc.returncode}: {_tail(log)}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise LocalServiceError(f"{what} not ready after {timeout:g}s: {_tail(log)}")
        time.sleep(0.05)


def stop_pid(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    """Send ``sig`` to this one child, then SIGKILL if it has not exited in ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _answers_tcp(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def postgres_bin(name: str) -> Path | None:
    """Debian's PostgreSQL program ``name`` (initdb, postgres), newest version first."""
    for d in PG_BIN_DIRS:
        if (d / name).is_file():
            return d / name
    return None


class PostgresCluster:
    """One PostgreSQL cluster in a private directory, listening on 127.0.0.1 only.

    Run as the ``postgres`` user when started by root (PostgreSQL refuses root), with
    password (SCRAM) authentication for TCP; its directory belongs to that user and is
    removed by :meth:`stop`. ``durable=False`` turns off fsync and friends: fine for
    tests and throwaway clusters, not for data anyone keeps.

    ``reach``: when started by root, initdb and the server run in their own mount
    namespace where ``directory`` is bind-mounted on ``reach`` (an empty directory the
    ``postgres`` user can reach, such as one under /run), so the cluster can live in a
    private (0700) state directory the ``postgres`` user could not traverse; nothing
    outside those processes sees the mount, and no directory's mode changes.
    """

    def __init__(
        self, directory: Path, port: int = 0, password: str | None = None, durable: bool = True,
        reach: Path | None = None,
    ) -> None:  # fmt: skip
        self.dir = directory
        self.reach = reach if reach is not None and os.geteuid() == 0 else None
        self.data = directory / "data"
        self.log_path = directory / "postgres.log"
        self.port = port
        self.password = password or secrets.token_urlsafe(24)
        self.durable = durable
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_postgres = os.geteuid() == 0

    @classmethod
    def create(cls, base: str | None = None, **kwargs: object) -> PostgresCluster:
        """A cluster in a new temporary directory (under ``base`` or the system's)."""
        return cls(Path(tempfile.mkdtemp(prefix="rackpool-pg-", dir=base)), **kwargs)  # type: ignore[arg-type]

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def _popen_user(self) -> dict[str, object]:
        if self._as_postgres and self.reach is None:
            return {"user": SUPERUSER, "group": SUPERUSER}
        return {}

    @property
    def _seen(self) -> Path:
        """The cluster directory as initdb and the server see it."""
        return self.reach if self.reach is not None else self.dir

    def _argv(self, argv: list[str]) -> list[str]:
        """``argv`` as the postgres user, in a mount namespace when ``reach`` is set."""
        if self.reach is None:
            return argv
        self.reach.mkdir(parents=True, exist_ok=True)
        self.reach.chmod(0o755)
        script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
        setpriv = ["setpriv", f"--reuid={SUPERUSER}", f"--regid={SUPERUSER}", "--init-groups"]
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script,
                "rackpool-postgres", str(self.dir), str(self.reach), *setpriv, "--", *argv]  # fmt: skip

    def _chown(self, path: Path) -> None:
        if self._as_postgres:
            shutil.chown(path, SUPERUSER, SUPERUSER)

    def _initdb(self) -> None:
        initdb = postgres_bin("initdb")
        if initdb is None:
            raise LocalServiceError("PostgreSQL's initdb not found (apt install postgresql)")
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._chown(self.dir)
        pwfile = self.dir / "pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.password + "\n")
        self._chown(pwfile)
        seen = self._seen
        try:
            with open(self.log_path, "ab") as log:
                done = subprocess.run(
                    self._argv([str(initdb), "-D", str(seen / "data"), "-U", SUPERUSER,
                                "-A", "scram-sha-256", f"--pwfile={seen / 'pw'}", "-E", "UTF8",
                                "--locale=C", "--no-sync"]),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    timeout=120, check=False, **self._popen_user(),  # type: ignore[call-overload]
                )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise LocalServiceError(f"initdb failed ({done.returncode}): {_tail(self.log_path)}")
        self._chown(self.log_path)

    def start(self, timeout: float = 60) -> PostgresCluster:
        """initdb (first time) and start the server; wait until it accepts a login."""
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        for attempt in range(3):  # a free port can be taken between picking and binding
            port = self.port or free_port()
            self._spawn(port)
            assert self.proc is not None
            try:
                _wait(self.proc, partial(self._answers, port), timeout, "postgres", self.log_path)
            except LocalServiceError:
                if self.port or attempt == 2 or "could not bind" not in _tail(self.log_path):
                    self.stop(remove=False)
                    raise
                continue
            self.port = port
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the server again on its port (after :meth:`start`), without waiting."""
        return self._spawn(self.port)

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        postgres = postgres_bin("postgres")
        if postgres is None:
            raise LocalServiceError("PostgreSQL's server not found (apt install postgresql)")
        sockets = self.dir / "sock"
        sockets.mkdir(mode=0o700, exist_ok=True)
        self._chown(sockets)
        argv = [str(postgres), "-D", str(self._seen / "data"), "-h", "127.0.0.1", "-p", str(port),
                "-k", str(self._seen / "sock"), "-c", "max_connections=400",
                "-c", "shared_buffers=64MB", "-c", "log_min_messages=warning"]  # fmt: skip
        if not self.durable:
            argv += ["-c", "fsync=off", "-c", "synchronous_commit=off",
                     "-c", "full_page_writes=off"]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self._argv(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, **self._popen_user(),  # type: ignore[call-overload]
            )  # fmt: skip
        return self.proc

    def _answers(self, port: int) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url("postgres", port), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def url(self, database: str = "postgres", port: int | None = None) -> str:
        """``postgresql://postgres:PASSWORD@127.0.0.1:PORT/DATABASE`` (holds a secret)."""
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{port or self.port}/{database}"

    def execute(self, sql: str) -> None:
        """Run one statement as the superuser outside a transaction (CREATE DATABASE)."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10) as c:
            c.execute(sql.encode())

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new, empty database (or a copy of ``template``); its URL."""
        for n in (name, template):
            if n is not None and not DB_NAME_RE.match(n):
                raise ValueError(f"database name {n!r}: use lower-case letters, digits and _")
        sql = f'CREATE DATABASE "{name}"'
        if template:
            sql += f' TEMPLATE "{template}"'
        self.execute(sql)
        return self.url(name)

    def ensure_database(self, name: str) -> str:
        """The database ``name``, created if it does not exist yet; its URL."""
        import psycopg

        if not DB_NAME_RE.match(name):
            raise ValueError(f"database name {name!r}: use lower-case letters, digits and _")
        with psycopg.connect(self.url("postgres"), connect_timeout=10) as c:
            found = c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return self.url(name) if found else self.create_database(name)

    def drop_database(self, name: str) -> None:
        if not DB_NAME_RE.match(name):
            raise ValueError(f"database name {name!r}: use lower-case letters, digits and _")
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self, timeout: float = 15, remove: bool = True) -> None:
        """Fast shutdown (SIGINT) of this cluster's server by PID; remove its directory."""
        stop_pid(self.proc, signal.SIGINT, timeout)
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)


class HAProxy:
    """HAProxy in front of HTTP servers, on a loopback port, health-checking ``/``.

    Round robin; a server failing two checks (0.5 s apart) is left out until it answers
    again; a request whose connection is refused goes to another server. A request in
    flight on a server that dies fails (502): the client decides whether to retry.
    """

    def __init__(
        self,
        directory: Path,
        backends: Sequence[tuple[str, int]],
        port: int = 0,
        check_path: str = "/",
        check_interval: float = 0.5,
    ) -> None:
        self.dir = directory
        self.backends = list(backends)
        self.port = port
        self.check_path = check_path
        self.check_interval = check_interval
        self.config_path = directory / "haproxy.cfg"
        self.log_path = directory / "haproxy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def config(self) -> str:
        inter = f"{int(self.check_interval * 1000)}ms"
        servers = "\n".join(
            f"    server c{i} {h}:{p} check inter {inter} fall 2 rise 1"
            for i, (h, p) in enumerate(self.backends, 1)
        )
        return f"""global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout http-keep-alive 30s
    option redispatch
    retries 3
    retry-on conn-failure

frontend api
    bind 127.0.0.1:{self.port}
    default_backend controllers

backend controllers
    balance roundrobin
    option httpchk GET {self.check_path}
    http-check expect status 200
{servers}
"""

    def start(self, timeout: float = 20) -> HAProxy:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.config_path.write_text(self.config())
        self.spawn()
        assert self.proc is not None
        try:
            _wait(
                self.proc, lambda: _answers_tcp("127.0.0.1", self.port), timeout, "haproxy",
                self.log_path,
            )  # fmt: skip
        except LocalServiceError:
            self.stop()
            raise
        return self

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start HAProxy on its config (written by :meth:`start`), without waiting."""
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).is_file():
            raise LocalServiceError("haproxy not found (apt install haproxy)")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [binary, "-db", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self.proc

    def stop(self, timeout: float = 10) -> None:
        """Stop this HAProxy by PID (SIGUSR1 is its soft stop; SIGTERM here: now)."""
        stop_pid(self.proc, signal.SIGTERM, timeout)


JAVA = "/usr/bin/java"
ZK_JARS = Path("/usr/share/java")
# zookeeper.jar's manifest names its dependencies (netty, jute, slf4j-api ...);
# slf4j-simple turns its log into plain lines on stderr (the log file). The Netty server
# (needed for TLS) also wants codec, resolver and unix-common, which the manifest does
# not list.
ZK_CLASSPATH = ("zookeeper.jar", "slf4j-simple.jar")
ZK_NETTY_JARS = ("netty-codec.jar", "netty-resolver.jar", "netty-transport-native-unix-common.jar")
ZK_FOUR_LETTER = "srvr,mntr,ruok,stat,conf"


def zookeeper_unavailable() -> str | None:
    """Why Debian's ZooKeeper cannot run here, or None."""
    if not Path(shutil.which("java") or JAVA).exists():
        return "no java (apt install default-jre-headless)"
    if not (ZK_JARS / "zookeeper.jar").exists():
        return "no /usr/share/java/zookeeper.jar (apt install zookeeper)"
    return None


def zk_four_letter(port: int, cmd: str, timeout: float = 2.0) -> str:
    """ZooKeeper's four-letter command (``srvr``, ``mntr``, ``ruok``) on 127.0.0.1:port;
    '' if no answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(cmd.encode())
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


@dataclass(frozen=True)
class ZooKeeperTls:
    """The server side of ZooKeeper's TLS listener (``secureClientPort``): PKCS12 key and
    trust stores; ``client_auth``: ``need`` (client certificates required) or ``none``."""

    keystore: Path
    truststore: Path
    password: str
    client_auth: str = "need"


class ZooKeeperServer:
    """One ZooKeeper server (Debian's ``zookeeper`` package, Java) in ``directory``:
    zoo.cfg, myid, its data and log, 127.0.0.1 only. Standalone by default; a member of
    an ensemble with ``myid`` and ``peers`` (see :class:`ZooKeeperEnsemble`); a TLS
    listener beside the plain one with ``tls``. ``durable=False`` (tests, benchmarks):
    no fsync per write and small preallocation, for throwaway data on a shared disk."""

    def __init__(
        self,
        directory: Path,
        port: int = 0,
        tick_ms: int = 500,
        *,
        myid: int = 0,
        peers: Sequence[tuple[int, int, int]] = (),
        tls: ZooKeeperTls | None = None,
        secure_port: int = 0,
        durable: bool = True,
        heap_mb: int = 256,
    ) -> None:
        self.dir = directory
        self.port = port
        self.tick_ms = tick_ms
        self.myid = myid
        self.peers = tuple(peers)  # (myid, peer port, election port) of every member
        self.tls = tls
        self.secure_port = secure_port
        self.durable = durable
        self.heap_mb = heap_mb
        self.config_path = directory / "zoo.cfg"
        self.log_path = directory / "zookeeper.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def secure_hosts(self) -> str:
        """host:port of the TLS listener."""
        if not self.secure_port:
            raise LocalServiceError("this ZooKeeper has no TLS listener")
        return f"127.0.0.1:{self.secure_port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def config(self) -> str:
        lines = [
            f"tickTime={self.tick_ms}", "initLimit=20", "syncLimit=10",
            f"dataDir={self.dir / 'data'}", f"clientPort={self.port}",
            "clientPortAddress=127.0.0.1", "maxClientCnxns=0", "admin.enableServer=false",
            f"4lw.commands.whitelist={ZK_FOUR_LETTER}",
            # sessions of 2 ticks up to 60 s: the pool asks for its session-timeout
            f"minSessionTimeout={2 * self.tick_ms}", "maxSessionTimeout=60000",
        ]  # fmt: skip
        if self.durable:
            lines += ["autopurge.snapRetainCount=3", "autopurge.purgeInterval=1"]
        else:
            lines += ["preAllocSize=4096", "snapCount=20000", "forceSync=no"]
        for sid, peer, election in self.peers:
            lines.append(f"server.{sid}=127.0.0.1:{peer}:{election}")
        if self.peers:
            lines.append("cnxTimeout=1000")
        if self.tls is not None:
            t = self.tls
            lines += [
                f"secureClientPort={self.secure_port}", "secureClientPortAddress=127.0.0.1",
                "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
                f"ssl.keyStore.location={t.keystore}", f"ssl.keyStore.password={t.password}",
                "ssl.keyStore.type=PKCS12", f"ssl.trustStore.location={t.truststore}",
                f"ssl.trustStore.password={t.password}", "ssl.trustStore.type=PKCS12",
                f"ssl.clientAuth={t.client_auth}",
            ]  # fmt: skip
        return "\n".join(lines) + "\n"

    def prepare(self) -> None:
        """Ports (free ones if 0), data directory, myid and zoo.cfg (0600: TLS store
        passwords), without starting anything."""
        if why := zookeeper_unavailable():
            raise LocalServiceError(f"ZooKeeper cannot run: {why}")
        self.port = self.port or free_port()
        if self.tls is not None:
            self.secure_port = self.secure_port or free_port()
        (self.dir / "data").mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.myid:
            (self.dir / "data" / "myid").write_text(f"{self.myid}\n")
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.config())

    def start(self, timeout: float = 60) -> ZooKeeperServer:
        """Start a standalone server and wait until it serves (picks another free port
        if the one picked was taken meanwhile)."""
        for attempt in range(3):  # a free port can be taken between picking and binding
            port, secure = self.port, self.secure_port
            self.prepare()
            proc = self.spawn()
            try:
                _wait(proc, self.serving, timeout, "zookeeper", self.log_path)
            except LocalServiceError:
                self.stop()
                taken = "Address already in use" in _tail(self.log_path)
                if port or secure or attempt == 2 or not taken:
                    raise
                self.port, self.secure_port = 0, 0
                continue
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the server on its config (written by :meth:`prepare`), without waiting."""
        jars = [ZK_JARS / j for j in ZK_CLASSPATH]
        jars += [ZK_JARS / j for j in ZK_NETTY_JARS if (ZK_JARS / j).exists()]
        argv = [
            shutil.which("java") or JAVA, f"-Xmx{self.heap_mb}m", "-Xss512k",
            "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-Dorg.slf4j.simpleLogger.showDateTime=true", "-Dzookeeper.admin.enableServer=false",
            "-cp", ":".join(str(j) for j in jars),
            "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(self.config_path),
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.dir, start_new_session=True,
            )  # fmt: skip
        return self.proc

    def mode(self) -> str:
        """``standalone``, ``leader``, ``follower`` (``srvr``); '' while not serving."""
        for line in zk_four_letter(self.port, "srvr", 1.0).splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return ""

    def serving(self) -> bool:
        """The server answers as a standalone server or a member of a quorum."""
        return self.mode() in ("standalone", "leader", "follower")

    def log_tail(self, size: int = 3000) -> str:
        return _tail(self.log_path, size)

    def kill(self) -> None:
        """kill -9 this server (by its PID)."""
        stop_pid(self.proc, signal.SIGKILL, 10)

    def stop(self, timeout: float = 15) -> None:
        stop_pid(self.proc, signal.SIGTERM, timeout)


class ZooKeeperEnsemble:
    """``size`` ZooKeeper servers on loopback forming one quorum, each in
    ``directory/zkN``; :meth:`start` returns once one leads and the others follow."""

    def __init__(self, directory: Path, size: int = 3, tick_ms: int = 500, **kw: Any) -> None:
        peers = [(i + 1, free_port(), free_port()) for i in range(size)]
        self.servers = [
            ZooKeeperServer(directory / f"zk{i + 1}", 0, tick_ms, myid=i + 1, peers=peers, **kw)
            for i in range(size)
        ]

    @property
    def hosts(self) -> str:
        return ",".join(s.hosts for s in self.servers)

    def leader(self) -> ZooKeeperServer:
        for s in self.servers:
            if s.mode() == "leader":
                return s
        raise LookupError("no ZooKeeper server says it leads (srvr)")

    def modes(self) -> dict[int, str]:
        return {s.myid: s.mode() for s in self.servers}

    def wait_quorum(
        self, timeout: float = 60, alive: Sequence[ZooKeeperServer] | None = None
    ) -> None:
        """Until one leader and every other live server following."""
        live = list(alive) if alive is not None else self.servers
        deadline = time.monotonic() + timeout
        while True:
            modes = [s.mode() for s in live]
            if modes.count("leader") == 1 and modes.count("follower") == len(live) - 1:
                return
            for s in live:
                if s.proc is not None and s.proc.poll() is not None:
                    raise LocalServiceError(f"zookeeper {s.myid} exited: {s.log_tail(1500)}")
            if time.monotonic() > deadline:
                raise LocalServiceError(f"no ZooKeeper quorum within {timeout:g}s: {self.modes()}")
            time.sleep(0.1)

    def start(self, timeout: float = 60) -> ZooKeeperEnsemble:
        try:
            for s in self.servers:
                s.prepare()
                s.spawn()
            self.wait_quorum(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for s in self.servers:
            s.stop()
