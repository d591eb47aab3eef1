"""SQLite implementation of :class:`~rackpool.pool.store.base.Store` (embedded default).

Records are JSON documents keyed by id with a version column, the same shape a
ZooKeeper znode has; the only SQL in the pool lives in this module.

One launcher process per SQLite file: locks live in this process (every lock is free
for it; the file lock below is its "session", held for the process's life, so a lock
held here is owned until this process unlocks it or exits), and :meth:`SqliteStore.register_launcher` takes a lock on ``FILE.launcher``
so a second ``rackpool pool serve`` on the same file refuses to start instead of
launching beside the first (several launchers share a ZooKeeper store).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rackpool.core.errors import ConfigError
from rackpool.pool.errors import LockLost, StaleWrite, UnknownNode, UnknownRequest
from rackpool.pool.model import Node, NodeRequest
from rackpool.pool.store.base import LockKind

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, version INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, version INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (kind TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS paused (provider TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, data TEXT NOT NULL);
"""


class SqliteStore:
    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._held: set[tuple[str, str]] = set()
        self._exclusive: dict[str, threading.Lock] = {}
        self._launchers: dict[str, dict[str, Any]] = {}
        self._launcher_fd: int | None = None
        self._decoded: dict[str, dict[str, tuple[int, Any]]] = {}  # table -> id -> decoded
        self._closed = False
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()
            if self._launcher_fd is not None:
                os.close(self._launcher_fd)
                self._launcher_fd = None

    def next_id(self, kind: str) -> int:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO counters(kind, value) VALUES (?, 1) "
                    "ON CONFLICT(kind) DO UPDATE SET value = value + 1",
                    (kind,),
                )
                row = self._db.execute(
                    "SELECT value FROM counters WHERE kind=?", (kind,)
                ).fetchone()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(row[0])

    # -- generic record helpers ------------------------------------------------------
    def _create(self, table: str, rid: str, data: dict[str, Any]) -> None:
        data["version"] = 1
        with self._lock:
            try:
                self._db.execute(
                    f"INSERT INTO {table}(id, version, data) VALUES (?, 1, ?)",
                    (rid, json.dumps(data)),
                )
            except sqlite3.IntegrityError as exc:
                raise StaleWrite(f"{table} record {rid} already exists") from exc

    def _update(self, table: str, rid: str, data: dict[str, Any]) -> int:
        old = int(data["version"])
        data["version"] = old + 1
        with self._lock:
            cur = self._db.execute(
                f"UPDATE {table} SET version=?, data=? WHERE id=? AND version=?",
                (old + 1, json.dumps(data), rid, old),
            )
        if cur.rowcount != 1:
            raise StaleWrite(f"{table} record {rid} changed since version {old}")
        return old + 1

    def _get(self, table: str, rid: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(f"SELECT data FROM {table} WHERE id=?", (rid,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def _list(self, table: str, decode: Callable[[dict[str, Any]], Any]) -> list[Any]:
        """Every record, decoded; a record whose version was decoded before is reused
        (the launcher lists every pass: JSON and dataclasses only for what changed)."""
        cache = self._decoded.setdefault(table, {})
        with self._lock:
            sql = f"SELECT id, version, data FROM {table} ORDER BY id"
            rows = self._db.execute(sql).fetchall()
        out = []
        fresh: dict[str, tuple[int, Any]] = {}
        for rid, version, data in rows:
            hit = cache.get(rid)
            if hit is None or hit[0] != version:
                hit = (version, decode(json.loads(data)))
            fresh[rid] = hit
            out.append(hit[1])
        self._decoded[table] = fresh
        return out

    def _delete(self, table: str, rid: str, version: int | None) -> None:
        with self._lock:
            if version is None:
                self._db.execute(f"DELETE FROM {table} WHERE id=?", (rid,))
                return
            cur = self._db.execute(f"DELETE FROM {table} WHERE id=? AND version=?", (rid, version))
            if cur.rowcount == 1:
                return
            exists = self._db.execute(f"SELECT 1 FROM {table} WHERE id=?", (rid,)).fetchone()
        if exists:
            raise StaleWrite(f"{table} record {rid} changed since version {version}")

    # -- nodes -----------------------------------------------------------------------
    def create_node(self, node: Node, lock: bool = False) -> Node:
        d = node.to_dict()
        self._create("nodes", node.id, d)
        if lock:
            self._held.add(("node", node.id))
        return node.evolve(version=1)

    def _fenced(self, kind: LockKind, key: str, locked: bool) -> None:
        if locked and not self.owns(kind, key):
            raise LockLost(f"{kind} {key}: this launcher does not hold its lock")

    def update_node(self, node: Node, locked: bool = False) -> Node:
        self._fenced("node", node.id, locked)
        return node.evolve(version=self._update("nodes", node.id, node.to_dict()))

    def delete_node(self, node_id: str, version: int | None = None, locked: bool = False) -> None:
        self._fenced("node", node_id, locked)
        self._delete("nodes", node_id, version)
        self._held.discard(("node", node_id))

    def get_node(self, node_id: str) -> Node:
        d = self._get("nodes", node_id)
        if d is None:
            raise UnknownNode(f"node {node_id} not found")
        return Node.from_dict(d)

    def list_nodes(self, fresh: bool = False) -> list[Node]:
        return list(self._list("nodes", Node.from_dict))

    # -- requests --------------------------------------------------------------------
    def create_request(self, request: NodeRequest) -> NodeRequest:
        self._create("requests", request.id, request.to_dict())
        return request.evolve(version=1)

    def update_request(self, request: NodeRequest, locked: bool = False) -> NodeRequest:
        self._fenced("request", request.id, locked)
        return request.evolve(version=self._update("requests", request.id, request.to_dict()))

    def delete_request(self, request_id: str, version: int | None = None) -> None:
        self._delete("requests", request_id, version)
        self._held.discard(("request", request_id))

    def get_request(self, request_id: str, cached: bool = False) -> NodeRequest:
        d = self._get("requests", request_id)
        if d is None:
            raise UnknownRequest(f"request {request_id} not found")
        return NodeRequest.from_dict(d)

    def list_requests(self) -> list[NodeRequest]:
        return list(self._list("requests", NodeRequest.from_dict))

    # -- provider flags --------------------------------------------------------------
    def set_paused(self, provider: str, paused: bool) -> None:
        with self._lock:
            if paused:
                self._db.execute("INSERT OR IGNORE INTO paused(provider) VALUES (?)", (provider,))
            else:
                self._db.execute("DELETE FROM paused WHERE provider=?", (provider,))

    def paused_providers(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT provider FROM paused").fetchall()}

    def get_meta(self, key: str) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT data FROM meta WHERE key=?", (key,)).fetchone()
        return {} if row is None else dict(json.loads(row[0]))

    def put_meta(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO meta(key, data) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET data=excluded.data",
                (key, json.dumps(value)),
            )

    # -- one launcher ----------------------------------------------------------------
    def register_launcher(self, launcher_id: str, info: dict[str, Any]) -> None:
        if self.path != ":memory:" and self._launcher_fd is None:
            lock_path = self.path + ".launcher"
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise ConfigError(
                    f"store: another launcher (pid {other}) uses the SQLite store {self.path}; "
                    "one process per SQLite file (several launchers share a ZooKeeper store: "
                    "store: {zookeeper: {hosts: ...}})"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            self._launcher_fd = fd
        self._launchers = {launcher_id: dict(info)}

    def launchers(self) -> dict[str, dict[str, Any]]:
        return dict(self._launchers)

    def lock(self, kind: LockKind, key: str) -> bool:
        self._held.add((kind, key))
        return True

    def unlock(self, kind: LockKind, key: str) -> None:
        self._held.discard((kind, key))

    def held(self, kind: LockKind, key: str) -> bool:
        return (kind, key) in self._held

    def owns(self, kind: LockKind, key: str, wait: float = 0.0) -> bool:
        """One process per file: a lock held here is ours while the store is open."""
        return (kind, key) in self._held and not self._closed

    def locked_elsewhere(self, kind: LockKind, key: str) -> bool:
        return False

    @contextlib.contextmanager
    def exclusive(self, name: str, timeout: float) -> Iterator[bool]:
        with self._lock:
            lock = self._exclusive.setdefault(name, threading.Lock())
        got = lock.acquire(timeout=timeout)
        try:
            yield got
        finally:
            if got:
                lock.release()

    @property
    def session(self) -> int:
        return 0

    @property
    def connected(self) -> bool:
        return True

    def watch(self, callback: Callable[[], None]) -> None:
        """One process: nobody else writes (its API calls the launcher directly)."""
