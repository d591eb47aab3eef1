"""The ``fake`` provider: an in-memory cloud for the framework's tests and benchmarks.

:class:`FakeCloud` behaves like a small Nova (servers BUILD → ACTIVE, ERROR with a
fault, quota errors, an API that can go down or hang); tests hold it to break things.
:class:`SharedFakeCloud` (``cloud-file: PATH``) keeps the servers in an SQLite file so
several launcher processes use one fake cloud; it also records every create (with the
node id it was for) and the most servers that ever existed at once, so a test counts
from the cloud's own records (a second create for one node, max-servers exceeded).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from rackpool.core.clock import Clock, SystemClock
from rackpool.pool.drivers.fake.config import FakeProvider
from rackpool.pool.drivers.interface import Adapter, Instance, LabelInfo, LaunchSpec, StateMachine
from rackpool.pool.drivers.machines import ServerCreate, ServerDelete
from rackpool.pool.errors import ProviderUnavailable, QuotaError
from rackpool.pool.model import Resources


@dataclass
class _Server:
    id: str
    name: str
    metadata: dict[str, str]
    resources: Resources
    ip: str
    created: float
    error: str = ""


@dataclass
class FakeCloud:
    """State of one fake cloud. Thread-safe; every knob may be turned while running."""

    boot_delay: float = 0.0
    quota: Resources = field(default_factory=Resources.unlimited)
    clock: Clock = field(default_factory=SystemClock)
    down: bool = False
    fail_next: int = 0
    hang: threading.Event = field(default_factory=threading.Event)
    servers: dict[str, _Server] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    quota_errors: int = 0
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _enter(self, what: str) -> None:
        with self._lock:
            self.calls[what] = self.calls.get(what, 0) + 1
        if self.hang.is_set():
            # An API that accepted the connection and never answers (bounded).
            deadline = self.clock.monotonic() + 30
            while self.hang.is_set() and self.clock.monotonic() < deadline:
                threading.Event().wait(0.05)
        if self.down:
            raise ProviderUnavailable("fake cloud: connection refused")

    def used(self) -> Resources:
        total = Resources()
        for s in self.servers.values():
            total = total + s.resources
        return total

    def create(self, name: str, metadata: Mapping[str, str], need: Resources) -> _Server:
        self._enter("create")
        with self._lock:
            if not (self.quota - self.used()).fits(need):
                self.quota_errors += 1
                raise QuotaError("Quota exceeded for instances/cores/ram")
            n = next(self._ids)
            srv = _Server(
                id=f"fake-{n:06d}",
                name=name,
                metadata=dict(metadata),
                resources=need,
                ip=f"198.18.{(n >> 8) & 255}.{n & 255}",
                created=self.clock.monotonic(),
            )
            if self.fail_next > 0:
                self.fail_next -= 1
                srv.error = "fake cloud: injected boot failure"
            self.servers[srv.id] = srv
        return srv

    def add_foreign(
        self, metadata: Mapping[str, str], need: Resources = Resources(1, 1, 512)
    ) -> str:
        """A server made behind the pool's back (leaks, other users' usage)."""
        with self._lock:
            n = next(self._ids)
            sid = f"foreign-{n:06d}"
            self.servers[sid] = _Server(sid, sid, dict(metadata), need, "", self.clock.monotonic())
        return sid

    def status(self, srv: _Server) -> str:
        if srv.error:
            return "error"
        return "active" if self.clock.monotonic() - srv.created >= self.boot_delay else "building"

    def delete(self, sid: str) -> None:
        self._enter("delete")
        with self._lock:
            self.servers.pop(sid, None)

    def get(self, sid: str) -> _Server | None:
        self._enter("get")
        return self.servers.get(sid)

    def snapshot(self) -> list[_Server]:
        self._enter("list")
        with self._lock:
            return list(self.servers.values())


class FakeAdapter(Adapter):
    provider: FakeProvider

    def __init__(
        self,
        provider: FakeProvider,
        executor: Executor,
        clock: Clock,
        cloud: FakeCloud | None = None,
    ) -> None:
        super().__init__(provider, executor, clock)
        q = provider.quota
        quota = Resources(
            q.instances if q.instances >= 0 else float("inf"),
            q.cores if q.cores >= 0 else float("inf"),
            q.ram if q.ram >= 0 else float("inf"),
        )
        if cloud is None and provider.cloud_file:
            cloud = SharedFakeCloud(
                provider.cloud_file, boot_delay=provider.boot_delay, quota=quota
            )
        self.cloud = cloud or FakeCloud(boot_delay=provider.boot_delay, quota=quota)
        self._labels = {lab.name: lab for pool in provider.pools for lab in pool.labels}

    def _instance(self, srv: Any) -> Instance:
        return Instance(
            external_id=srv.id,
            name=srv.name,
            status=self.cloud.status(srv),
            metadata=dict(srv.metadata),
            interface_ip=srv.ip,
            public_ipv4=srv.ip,
            private_ipv4=srv.ip,
            az="nova",
            resources=srv.resources,
            fault=srv.error,
        )

    def _create(self, spec: LaunchSpec) -> Instance:
        need = self.label_resources(spec.label)
        if self.provider.create_delay > 0:
            # a slow API: the request is on its way (auth, lookups) before the cloud acts
            time.sleep(self.provider.create_delay)
            if spec.fence is not None:
                spec.fence.check()  # right at the wire, as a real driver does
        return self._instance(self.cloud.create(spec.hostname, spec.metadata, need))

    def _get(self, sid: str) -> Instance | None:
        srv = self.cloud.get(sid)
        return None if srv is None else self._instance(srv)

    def _find(self, node_id: str) -> Instance | None:
        return next(
            (i for i in self.list_instances() if i.metadata.get("rackpool_node_id") == node_id),
            None,
        )

    def create_machine(self, spec: LaunchSpec, saved: Mapping[str, Any] | None) -> StateMachine:
        poll = min(0.05, max(self.provider.boot_delay / 4, 0.005))
        return ServerCreate(
            self, spec, saved, self._create, self._get, self._find, poll, self.cloud.delete
        )

    def delete_machine(self, external_id: str, saved: Mapping[str, Any] | None) -> StateMachine:
        return ServerDelete(self, external_id, saved, self.cloud.delete, self._get, 0.02)

    def list_instances(self) -> list[Instance]:
        return [self._instance(s) for s in self.cloud.snapshot()]

    def quota_limits(self) -> Resources:
        self.cloud._enter("limits")
        return self.cloud.quota

    def label_resources(self, label: str) -> Resources:
        lab = self._labels[label]
        return Resources(1, lab.cores, lab.ram)

    def label_info(self, label: str) -> LabelInfo:
        return LabelInfo(username=self._labels[label].username)


_SHARED_SCHEMA = """
CREATE TABLE IF NOT EXISTS servers (n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE,
    name TEXT, metadata TEXT, instances REAL, cores REAL, ram REAL, ip TEXT, created REAL,
    error TEXT NOT NULL DEFAULT '', deleted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS creates (server TEXT, node TEXT, at REAL);
CREATE TABLE IF NOT EXISTS stats (key TEXT PRIMARY KEY, value REAL NOT NULL);
"""


class SharedFakeCloud(FakeCloud):
    """A fake cloud in an SQLite file that several processes use at once.

    Servers are rows (a deleted one is marked, not removed, so its id is never reused);
    a create checks quota and inserts in one transaction, so two launchers cannot both
    take the last slot. ``creates()`` and ``max_servers()`` are the cloud's own records."""

    def __init__(self, path: str, boot_delay: float = 0.0, quota: Resources | None = None) -> None:
        super().__init__(boot_delay=boot_delay, quota=quota or Resources.unlimited())
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SHARED_SCHEMA)

    def _tx(self, fn: Any) -> Any:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return out

    @staticmethod
    def _row(r: Any) -> _Server:
        return _Server(r[0], r[1], json.loads(r[2]), Resources(r[3], r[4], r[5]), r[6], r[7], r[8])

    _COLS = "id, name, metadata, instances, cores, ram, ip, created, error"

    def _live(self, db: sqlite3.Connection) -> list[_Server]:
        rows = db.execute(f"SELECT {self._COLS} FROM servers WHERE deleted=0 ORDER BY n")
        return [self._row(r) for r in rows.fetchall()]

    @property  # type: ignore[override]
    def servers(self) -> dict[str, _Server]:
        with self._lock:
            return {s.id: s for s in self._live(self._db)}

    @servers.setter
    def servers(self, value: dict[str, _Server]) -> None:
        pass  # the dataclass field's default; the rows are the servers

    def status(self, srv: _Server) -> str:
        if srv.error:
            return "error"
        return "active" if time.time() - srv.created >= self.boot_delay else "building"

    def create(self, name: str, metadata: Mapping[str, str], need: Resources) -> _Server:
        self._enter("create")

        def tx(db: sqlite3.Connection) -> _Server:
            live = self._live(db)
            used = Resources()
            for s in live:
                used = used + s.resources
            if not (self.quota - used).fits(need):
                db.execute(
                    "INSERT INTO stats VALUES ('quota_errors', 1) "
                    "ON CONFLICT(key) DO UPDATE SET value = value + 1"
                )
                return None  # type: ignore[return-value]
            cur = db.execute(
                "INSERT INTO servers(name, metadata, instances, cores, ram, ip, created) "
                "VALUES (?, ?, ?, ?, ?, '', ?)",
                (
                    name,
                    json.dumps(dict(metadata)),
                    need.instances,
                    need.cores,
                    need.ram,
                    time.time(),
                ),
            )
            n = int(cur.lastrowid or 0)
            sid, ip = f"fake-{n:06d}", f"198.18.{(n >> 8) & 255}.{n & 255}"
            error = ""
            if self.fail_next > 0:
                self.fail_next -= 1
                error = "fake cloud: injected boot failure"
            db.execute("UPDATE servers SET id=?, ip=?, error=? WHERE n=?", (sid, ip, error, n))
            db.execute(
                "INSERT INTO creates VALUES (?, ?, ?)",
                (sid, metadata.get("rackpool_node_id", ""), time.time()),
            )
            db.execute(
                "INSERT INTO stats VALUES ('max_servers', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                (len(live) + 1,),
            )
            return _Server(sid, name, dict(metadata), need, ip, time.time(), error)

        srv = self._tx(tx)
        if srv is None:
            raise QuotaError("Quota exceeded for instances/cores/ram")
        return srv

    def add_foreign(
        self, metadata: Mapping[str, str], need: Resources = Resources(1, 1, 512)
    ) -> str:
        def tx(db: sqlite3.Connection) -> str:
            cur = db.execute(
                "INSERT INTO servers(name, metadata, instances, cores, ram, ip, created) "
                "VALUES ('', ?, ?, ?, ?, '', ?)",
                (json.dumps(dict(metadata)), need.instances, need.cores, need.ram, time.time()),
            )
            sid = f"foreign-{int(cur.lastrowid or 0):06d}"
            db.execute("UPDATE servers SET id=?, name=? WHERE n=?", (sid, sid, cur.lastrowid))
            return sid

        return str(self._tx(tx))

    def delete(self, sid: str) -> None:
        self._enter("delete")
        self._tx(lambda db: db.execute("UPDATE servers SET deleted=1 WHERE id=?", (sid,)))

    def get(self, sid: str) -> _Server | None:
        self._enter("get")
        with self._lock:
            r = self._db.execute(
                f"SELECT {self._COLS} FROM servers WHERE id=? AND deleted=0", (sid,)
            ).fetchone()
        return None if r is None else self._row(r)

    def snapshot(self) -> list[_Server]:
        self._enter("list")
        with self._lock:
            return self._live(self._db)

    # -- the cloud's own records, for tests and benchmarks ------------------------------
    def creates(self) -> list[tuple[str, str]]:
        """(server id, node id) of every create that made a server, in order."""
        with self._lock:
            return [(r[0], r[1]) for r in self._db.execute("SELECT server, node FROM creates")]

    def stat(self, key: str) -> float:
        with self._lock:
            r = self._db.execute("SELECT value FROM stats WHERE key=?", (key,)).fetchone()
        return 0.0 if r is None else float(r[0])

    def max_servers(self) -> int:
        """The most servers that existed at once."""
        return int(self.stat("max_servers"))

    def close(self) -> None:
        with self._lock:
            self._db.close()
