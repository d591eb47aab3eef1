"""The engines of ``rackpool up --ha``: PostgreSQL, ZooKeeper and one HAProxy per service.

Layout under the state directory (``ha/``)::

    ha/postgres/            one durable cluster, one database per region (region_r1 ...)
    ha/zookeeper/           a standalone server; the pool's store under /rackpool-up
    ha/haproxy-r1/          the region's address, in front of its two controllers
    ha/haproxy-pool/        the pool's address, in front of its two launchers
    ha.json                 ports (no secrets) of everything above, for operators and tests

The PostgreSQL password is in ``secrets.json`` and in the controllers' configs (0600).
Each engine is supervised like the daemons (restarted on the same port when it dies)
and stopped after them.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import signal
from pathlib import Path
from typing import Any

from rackpool.cli.localservices import (
    HAProxy,
    LocalServiceError,
    PostgresCluster,
    ZooKeeperServer,
    postgres_bin,
    zookeeper_unavailable,
)
from rackpool.cli.supervise import Supervisor
from rackpool.core.errors import ConfigError
from rackpool.core.files import write_private

CONTROLLERS = 2
LAUNCHERS = 2
ZK_CHROOT = "/rackpool-up"
RUN_DIR = Path("/run/rackpool-up")


def unavailable(pool: bool) -> str | None:
    """Why ``--ha`` cannot run here, or None."""
    from shutil import which

    if postgres_bin("initdb") is None or postgres_bin("postgres") is None:
        return "PostgreSQL's server is not installed (apt install postgresql)"
    if which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        return "haproxy is not installed (apt install haproxy)"
    if pool and (why := zookeeper_unavailable()):
        return why
    return None


class Engines:
    """The engines one ``up --ha`` runs, started in order and handed to the supervisor."""

    def __init__(self, state: Path, sup: Supervisor) -> None:
        self.state = state
        self.dir = state / "ha"
        self.sup = sup
        self.postgres: PostgresCluster | None = None
        self.zookeeper: ZooKeeperServer | None = None
        self.proxies: dict[str, HAProxy] = {}

    def _password(self) -> str:
        """The cluster's superuser password, kept in secrets.json (0600) across runs."""
        path = self.state / "secrets.json"
        saved: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        password = saved.get("_postgres")
        if not isinstance(password, str):
            password = secrets.token_urlsafe(24)
            saved["_postgres"] = password
            write_private(path, json.dumps(saved, indent=2))
        return password

    def start_postgres(self) -> PostgresCluster:
        self.dir.mkdir(mode=0o700, exist_ok=True)
        key = hashlib.sha256(str(self.state).encode()).hexdigest()[:16]
        pg = PostgresCluster(
            self.dir / "postgres", password=self._password(), durable=True, reach=RUN_DIR / key
        )
        pg.start()
        self.postgres = pg
        assert pg.proc is not None
        self.sup.adopt("postgres", pg.proc, pg.log_path, pg.spawn, signal.SIGINT)
        return pg

    def database(self, region: str) -> str:
        """The region's database URL (holds the password: only for 0600 configs)."""
        assert self.postgres is not None
        return self.postgres.ensure_database(f"region_{region}")

    def start_zookeeper(self) -> ZooKeeperServer:
        zk = ZooKeeperServer(self.dir / "zookeeper").start()
        self.zookeeper = zk
        assert zk.proc is not None
        self.sup.adopt("zookeeper", zk.proc, zk.log_path, zk.spawn)
        return zk

    def start_proxy(self, name: str, ports: list[int], port: int, check: str) -> HAProxy:
        """HAProxy ``name`` on ``port`` in front of ``ports``, health-checking ``check``."""
        lb = HAProxy(
            self.dir / f"haproxy-{name}", [("127.0.0.1", p) for p in ports], port=port,
            check_path=check,
        )  # fmt: skip
        try:
            lb.start()
        except LocalServiceError as exc:
            raise ConfigError(f"HAProxy for {name} did not start: {exc}") from None
        self.proxies[name] = lb
        assert lb.proc is not None
        self.sup.adopt(f"haproxy-{name}", lb.proc, lb.log_path, lb.spawn)
        return lb

    def pool_store(self) -> dict[str, Any]:
        assert self.zookeeper is not None
        return {"zookeeper": {"hosts": self.zookeeper.hosts, "chroot": ZK_CHROOT}}

    def write_summary(self, backends: dict[str, list[int]]) -> Path:
        """``ha.json``: every engine's port and each proxy's backends (no secrets)."""
        info = {
            "postgres": self.postgres.port if self.postgres else None,
            "zookeeper": self.zookeeper.port if self.zookeeper else None,
            "haproxy": {
                name: {"port": lb.port, "backends": backends.get(name, [])}
                for name, lb in self.proxies.items()
            },
        }
        return write_private(self.state / "ha.json", json.dumps(info, indent=2))
