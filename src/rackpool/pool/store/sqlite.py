"""SQLite implementation of :class:`~rackpool.pool.store.base.Store` (embedded default).

Records are JSON documents keyed by id with a version column, the same shape a
ZooKeeper znode has; the only SQL in the pool lives in this module.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from rackpool.pool.errors import StaleWrite, UnknownNode, UnknownRequest
from rackpool.pool.model import Node, NodeRequest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, version INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, version INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (kind TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS paused (provider TEXT PRIMARY KEY);
"""


class SqliteStore:
    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

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

    def _list(self, table: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(f"SELECT data FROM {table} ORDER BY id").fetchall()
        return [json.loads(r[0]) for r in rows]

    def _delete(self, table: str, rid: str) -> None:
        with self._lock:
            self._db.execute(f"DELETE FROM {table} WHERE id=?", (rid,))

    # -- nodes -----------------------------------------------------------------------
    def create_node(self, node: Node) -> Node:
        d = node.to_dict()
        self._create("nodes", node.id, d)
        return node.evolve(version=1)

    def update_node(self, node: Node) -> Node:
        return node.evolve(version=self._update("nodes", node.id, node.to_dict()))

    def delete_node(self, node_id: str) -> None:
        self._delete("nodes", node_id)

    def get_node(self, node_id: str) -> Node:
        d = self._get("nodes", node_id)
        if d is None:
            raise UnknownNode(f"node {node_id} not found")
        return Node.from_dict(d)

    def list_nodes(self) -> list[Node]:
        return [Node.from_dict(d) for d in self._list("nodes")]

    # -- requests --------------------------------------------------------------------
    def create_request(self, request: NodeRequest) -> NodeRequest:
        self._create("requests", request.id, request.to_dict())
        return request.evolve(version=1)

    def update_request(self, request: NodeRequest) -> NodeRequest:
        return request.evolve(version=self._update("requests", request.id, request.to_dict()))

    def delete_request(self, request_id: str) -> None:
        self._delete("requests", request_id)

    def get_request(self, request_id: str) -> NodeRequest:
        d = self._get("requests", request_id)
        if d is None:
            raise UnknownRequest(f"request {request_id} not found")
        return NodeRequest.from_dict(d)

    def list_requests(self) -> list[NodeRequest]:
        return [NodeRequest.from_dict(d) for d in self._list("requests")]

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
