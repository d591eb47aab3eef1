"""The embedded log index: SQLite FTS5, one database file per UTC day.

Each day file holds ``docs`` (id, ts, source, seq, the document as JSON), a
contentless FTS5 table over the analysed message (``body``) and keyword tokens
(``kw``), an index on ``ts`` for time-bounded scans and a unique (source, seq) index
that makes adding idempotent and serves context lookups. Retention drops whole day
files, the way log indices are usually rolled. One lock serialises access: the
daemon is the only process that opens the files.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from rackpool.core.clock import Clock, SystemClock
from rackpool.ops import analysis
from rackpool.ops.errors import IndexUnavailable
from rackpool.ops.index import Hit, IndexStats, LogDoc, SearchPage
from rackpool.ops.index.compile import DocSet, compile_query
from rackpool.ops.query import Node

DAY = 86400.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS docs(
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, src INTEGER NOT NULL, seq INTEGER NOT NULL,
    doc BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS docs_src_seq ON docs(src, seq);
CREATE INDEX IF NOT EXISTS docs_ts ON docs(ts);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    body, kw, content='', columnsize=0, tokenize='unicode61 remove_diacritics 0');
"""
_SELECT = "SELECT d.id, d.ts, s.name, d.seq, d.doc FROM "


def day_of(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y%m%d")


def _day_start(day: str) -> float:
    return dt.datetime.strptime(day, "%Y%m%d").replace(tzinfo=dt.UTC).timestamp()


class _Shard:
    def __init__(self, path: Path, day: str) -> None:
        self.path = path
        self.day = day
        self.start = _day_start(day)
        self.end = self.start + DAY
        try:
            self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise IndexUnavailable(f"cannot open index partition {path}: {exc}") from exc
        self.sources: dict[str, int] = dict(self.db.execute("SELECT name, id FROM sources"))
        self.next_id = (self.db.execute("SELECT max(id) FROM docs").fetchone()[0] or 0) + 1

    def source_id(self, name: str) -> int:
        sid = self.sources.get(name)
        if sid is None:
            cur = self.db.execute("INSERT INTO sources(name) VALUES (?)", (name,))
            sid = self.sources[name] = int(cur.lastrowid or 0)
        return sid

    def add(self, docs: list[LogDoc]) -> int:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            rows, fts = [], []
            seen: set[tuple[int, int]] = set()
            by_src: dict[int, list[int]] = {}
            for d in docs:
                by_src.setdefault(self.source_id(d.source), []).append(d.seq)
            for sid, seqs in by_src.items():
                cur = db.execute(
                    "SELECT seq FROM docs WHERE src=? AND seq BETWEEN ? AND ?",
                    (sid, min(seqs), max(seqs)),
                )
                seen.update((sid, s) for (s,) in cur)
            for d in docs:
                sid = self.sources[d.source]
                if (sid, d.seq) in seen:
                    continue
                seen.add((sid, d.seq))
                rowid = self.next_id
                self.next_id += 1
                f = d.fields
                body = str(f.get("message", ""))
                if f.get("exception"):
                    body += "\n" + str(f["exception"])
                rows.append((rowid, d.ts, sid, d.seq, orjson.dumps(f, default=str)))
                fts.append((rowid, analysis.encode_text(body), analysis.encode_keywords(f)))
            db.executemany("INSERT INTO docs(id, ts, src, seq, doc) VALUES (?,?,?,?,?)", rows)
            db.executemany("INSERT INTO fts(rowid, body, kw) VALUES (?,?,?)", fts)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self.next_id = (db.execute("SELECT max(id) FROM docs").fetchone()[0] or 0) + 1
            raise
        return len(rows)

    def _where(
        self, docset: DocSet, since: float | None, until: float | None
    ) -> tuple[str, str, list[Any]]:
        """FROM-clause and WHERE-clause for the documents of ``docset`` in a time range."""
        args: list[Any] = []
        conds = []
        if docset.negated:
            frm = "docs d"
            if docset.expr is not None:
                conds.append("d.id NOT IN (SELECT rowid FROM fts WHERE fts MATCH ?)")
                args.append(docset.expr)
        else:
            frm = "fts CROSS JOIN docs d ON d.id = fts.rowid"
            conds.append("fts MATCH ?")
            args.append(docset.expr)
        if since is not None and since > self.start:
            conds.append("d.ts >= ?")
            args.append(since)
        if until is not None and until < self.end:
            conds.append("d.ts < ?")
            args.append(until)
        return frm, (" WHERE " + " AND ".join(conds)) if conds else "", args

    def search(
        self, docset: DocSet, since: float | None, until: float | None, limit: int, desc: bool
    ) -> list[Hit]:
        frm, where, args = self._where(docset, since, until)
        order = "DESC" if desc else "ASC"
        sql = (
            f"{_SELECT}{frm} JOIN sources s ON s.id = d.src{where} "
            f"ORDER BY d.ts {order}, d.id {order} LIMIT ?"
        )
        return [self.hit(r) for r in self.db.execute(sql, [*args, limit])]

    def count(self, docset: DocSet, since: float | None, until: float | None) -> int:
        frm, where, args = self._where(docset, since, until)
        if not docset.negated and "d.ts" not in where:
            return int(
                self.db.execute("SELECT count(*) FROM fts WHERE fts MATCH ?", args).fetchone()[0]
            )
        return int(self.db.execute(f"SELECT count(*) FROM {frm}{where}", args).fetchone()[0])

    def hit(self, row: tuple[int, float, str, int, bytes]) -> Hit:
        rowid, ts, source, seq, doc = row
        return Hit(f"{self.day}-{rowid}", ts, source, seq, orjson.loads(doc))

    def around(self, source: str, seq: int, before: int, after: int) -> list[Hit]:
        sid = self.sources.get(source)
        if sid is None:
            return []
        base = f"{_SELECT}docs d JOIN sources s ON s.id = d.src WHERE d.src = ? AND d.seq"
        rows = list(self.db.execute(f"{base} < ? ORDER BY d.seq DESC LIMIT ?", (sid, seq, before)))[
            ::-1
        ]
        rows += self.db.execute(f"{base} >= ? ORDER BY d.seq LIMIT ?", (sid, seq, after + 1))
        return [self.hit(r) for r in rows]

    def size(self) -> int:
        return sum(
            p.stat().st_size
            for p in (self.path, self.path.with_name(self.path.name + "-wal"))
            if p.exists()
        )

    def close(self) -> None:
        self.db.close()


class SqliteIndex:
    """:class:`rackpool.ops.index.LogIndex` on SQLite FTS5 files under ``path``."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_age_days: float | None = None,
        max_bytes: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.max_age_days = max_age_days
        self.max_bytes = max_bytes
        self.clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._shards: dict[str, _Shard] = {}
        for p in sorted(self.path.glob("logs-*.db")):
            day = p.stem.removeprefix("logs-")
            self._shards[day] = _Shard(p, day)

    def _shard(self, day: str) -> _Shard:
        shard = self._shards.get(day)
        if shard is None:
            shard = self._shards[day] = _Shard(self.path / f"logs-{day}.db", day)
        return shard

    def _in_range(self, since: float | None, until: float | None, desc: bool) -> list[_Shard]:
        shards = [
            s
            for day, s in sorted(self._shards.items(), reverse=desc)
            if (since is None or s.end > since) and (until is None or s.start < until)
        ]
        return shards

    def _cutoff(self) -> float | None:
        if self.max_age_days is None:
            return None
        return self.clock.now() - self.max_age_days * DAY

    def add(self, docs: Sequence[LogDoc]) -> int:
        cutoff = self._cutoff()
        by_day: dict[str, list[LogDoc]] = {}
        for d in docs:
            if cutoff is None or d.ts >= cutoff:
                by_day.setdefault(day_of(d.ts), []).append(d)
        added = 0
        with self._lock:
            for day, batch in by_day.items():
                try:
                    added += self._shard(day).add(batch)
                except sqlite3.Error as exc:
                    raise IndexUnavailable(f"cannot write to the log index: {exc}") from exc
        return added

    def search(
        self,
        query: Node,
        *,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        offset: int = 0,
        newest_first: bool = True,
    ) -> SearchPage:
        docset = compile_query(query)
        if docset.is_empty:
            return SearchPage((), 0)
        hits: list[Hit] = []
        total = 0
        with self._lock:
            for shard in self._in_range(since, until, newest_first):
                n = shard.count(docset, since, until)
                total += n
                want = offset + limit - len(hits)
                if n and want > 0:
                    hits += shard.search(docset, since, until, want, newest_first)
        return SearchPage(tuple(hits[offset : offset + limit]), total)

    def count(self, query: Node, *, since: float | None = None, until: float | None = None) -> int:
        docset = compile_query(query)
        if docset.is_empty:
            return 0
        with self._lock:
            return sum(s.count(docset, since, until) for s in self._in_range(since, until, False))

    def scan(
        self, query: Node, *, since: float | None = None, until: float | None = None
    ) -> Iterator[Hit]:
        docset = compile_query(query)
        if docset.is_empty:
            return
        for shard in self._in_range(since, until, False):
            with self._lock:
                hits = shard.search(docset, since, until, -1, False)
            yield from hits

    def get(self, doc_id: str) -> Hit | None:
        found = self._locate(doc_id)
        if found is None:
            return None
        shard, rowid = found
        with self._lock:
            row = shard.db.execute(
                f"{_SELECT}docs d JOIN sources s ON s.id = d.src WHERE d.id = ?", (rowid,)
            ).fetchone()
        return shard.hit(row) if row else None

    def _locate(self, doc_id: str) -> tuple[_Shard, int] | None:
        day, _, rowid = doc_id.partition("-")
        if not rowid.isdigit() or day not in self._shards:
            return None
        return self._shards[day], int(rowid)

    def context(self, doc_id: str, before: int = 10, after: int = 10) -> list[Hit]:
        hit = self.get(doc_id)
        if hit is None:
            return []
        out: list[Hit] = []
        with self._lock:
            for shard in self._in_range(hit.ts - DAY, hit.ts + DAY, False):
                out += shard.around(hit.source, hit.seq, before, after)
        out.sort(key=lambda h: h.seq)
        i = next(i for i, h in enumerate(out) if h.seq == hit.seq)
        return out[max(0, i - before) : i + after + 1]

    def expire(self, now: float | None = None) -> int:
        now = self.clock.now() if now is None else now
        dropped = 0
        with self._lock:
            days = sorted(self._shards)
            if self.max_age_days is not None:
                cutoff = now - self.max_age_days * DAY
                for day in [d for d in days if self._shards[d].end <= cutoff]:
                    self._drop(day)
                    dropped += 1
            if self.max_bytes is not None:
                while len(self._shards) > 1 and self._bytes() > self.max_bytes:
                    self._drop(min(self._shards))
                    dropped += 1
        return dropped

    def _drop(self, day: str) -> None:
        shard = self._shards.pop(day)
        shard.close()
        for suffix in ("", "-wal", "-shm"):
            shard.path.with_name(shard.path.name + suffix).unlink(missing_ok=True)

    def _bytes(self) -> int:
        return sum(s.size() for s in self._shards.values())

    def stats(self) -> IndexStats:
        with self._lock:
            docs = sum(
                s.db.execute("SELECT count(*) FROM docs").fetchone()[0]
                for s in self._shards.values()
            )
            spans = [
                s.db.execute("SELECT min(ts), max(ts) FROM docs").fetchone()
                for s in self._shards.values()
            ]
            lows = [lo for lo, _ in spans if lo is not None]
            highs = [hi for _, hi in spans if hi is not None]
            return IndexStats(
                docs,
                self._bytes(),
                len(self._shards),
                min(lows, default=None),
                max(highs, default=None),
            )

    def checkpoint(self) -> None:
        """Fold write-ahead logs into the day files (so their size is what is on disk)."""
        with self._lock:
            for s in self._shards.values():
                s.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            for s in self._shards.values():
                s.close()
            self._shards.clear()
