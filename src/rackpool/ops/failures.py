"""Classified failures, persisted in SQLite behind a narrow interface.

A failure is one failed pool node or one failed pushed build, identified by ``key``
(``node:<node_id>`` or ``build:<build_uuid>``). It carries the bugs it matched; no bugs
means uncategorized.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson


@dataclass(frozen=True)
class Failure:
    key: str
    kind: str  # "node" | "build"
    ts: float  # first failure line seen
    doc_id: str  # that line, for its context
    summary: dict[str, Any] = field(default_factory=dict)
    bugs: tuple[str, ...] = ()
    lines: int = 0  # failure lines seen when classified
    last_ts: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "ts": self.ts,
            "doc_id": self.doc_id,
            "bugs": list(self.bugs),
            **self.summary,
        }


_SCHEMA = """
CREATE TABLE IF NOT EXISTS failures(
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, ts REAL NOT NULL, doc_id TEXT NOT NULL,
    summary BLOB NOT NULL, bugs BLOB NOT NULL, lines INTEGER NOT NULL, last_ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS failures_ts ON failures(ts);
CREATE TABLE IF NOT EXISTS failure_bugs(key TEXT NOT NULL, bug TEXT NOT NULL, ts REAL NOT NULL,
    PRIMARY KEY(bug, ts, key));
"""


class FailureStore:
    """Failures and the bugs they matched, in ``path`` (SQLite)."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def get(self, key: str) -> Failure | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM failures WHERE key = ?", (key,)).fetchone()
        return _failure(row) if row else None

    def put(self, f: Failure) -> None:
        with self._lock:
            db = self._db
            db.execute("BEGIN")
            db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?,?,?,?,?,?,?,?)",
                (
                    f.key,
                    f.kind,
                    f.ts,
                    f.doc_id,
                    orjson.dumps(f.summary),
                    orjson.dumps(list(f.bugs)),
                    f.lines,
                    f.last_ts,
                ),
            )
            db.execute("DELETE FROM failure_bugs WHERE key = ?", (f.key,))
            db.executemany(
                "INSERT INTO failure_bugs VALUES (?,?,?)", [(f.key, b, f.ts) for b in f.bugs]
            )
            db.execute("COMMIT")

    def recent(
        self, *, uncategorized: bool = False, since: float | None = None, limit: int = 100
    ) -> list[Failure]:
        sql = "SELECT * FROM failures WHERE ts >= ?"
        if uncategorized:
            sql += " AND bugs = ?"
        sql += " ORDER BY ts DESC LIMIT ?"
        args: list[Any] = [since if since is not None else 0.0]
        if uncategorized:
            args.append(b"[]")
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_failure(r) for r in rows]

    def bug_times(self, since: float) -> dict[str, list[float]]:
        """Failure times per bug since ``since``."""
        out: dict[str, list[float]] = {}
        with self._lock:
            rows = self._db.execute(
                "SELECT bug, ts FROM failure_bugs WHERE ts >= ? ORDER BY ts", (since,)
            ).fetchall()
        for bug, ts in rows:
            out.setdefault(bug, []).append(ts)
        return out

    def prune(self, before: float) -> None:
        with self._lock:
            self._db.execute("DELETE FROM failures WHERE ts < ?", (before,))
            self._db.execute("DELETE FROM failure_bugs WHERE ts < ?", (before,))

    def close(self) -> None:
        self._db.close()


def _failure(row: tuple[Any, ...]) -> Failure:
    key, kind, ts, doc_id, summary, bugs, lines, last_ts = row
    return Failure(
        key, kind, ts, doc_id, orjson.loads(summary), tuple(orjson.loads(bugs)), lines, last_ts
    )
