"""The embedded log index: SQLite FTS5, one database file per UTC day.

Each day file holds ``docs`` (id, ts, source, seq, the document as JSON), a
contentless FTS5 table over the analysed message (``body``) and keyword tokens
(``kw``), an index on ``ts`` for time-bounded scans and a unique (source, seq) index
that makes adding idempotent and serves context lookups. Retention drops whole day
files, the way log indices are usually rolled. One lock serialises access: the
daemon is the only process that opens the files.

Adding is split in two. The caller's thread analyses the documents (tokens, JSON);
one writer thread owned by the index stores them, a batch per transaction, with a
few multi-row ``INSERT`` statements. SQLite runs each statement without holding the
GIL, so the next batch is analysed while this one is written (:meth:`SqliteIndex.submit`).

Schema versions (``PRAGMA user_version``): 0 — the first layout; 2 — the same tables,
documents stored as the line was written where possible and without the
``loglevel``/``module`` aliases (:func:`analysis.shown_fields` adds them when read),
FTS5 tuned for bulk loading, and new files tokenised with FTS5's ``ascii`` tokenizer
(our tokens are already split and folded; it only has to find the spaces). A
version-0 file is upgraded in place when opened and keeps its ``unicode61``
tokenizer, which splits our tokens the same way. A file from a newer rackpool is
refused, naming the file.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from rackpool.core.clock import Clock, SystemClock
from rackpool.ops import analysis
from rackpool.ops.errors import IndexUnavailable, QueryTooCostly
from rackpool.ops.index import Hit, IndexStats, LogDoc, SearchPage
from rackpool.ops.index.compile import DocSet, compile_query, has_wildcards
from rackpool.ops.query import Node, Wildcard

DAY = 86400.0
SCHEMA_VERSION = 2
# FTS5 settings for bulk loading: a transaction's tokens are flushed as one segment
# (hashsize, undocumented: skipped if an SQLite does not know it), and segments are
# merged 8 at a time instead of 4 (automerge).
_FTS_SETTINGS = (("hashsize", 64 * 1024 * 1024), ("automerge", 8))
# Rows per INSERT statement. SQLite compiles a multi-row VALUES in time linear in its
# rows only while every value is a plain ``?``, so ids and source are parameters too.
ROWS_PER_INSERT = 16384
_WRITERS = 2  # partitions that keep a writer connection (and its page cache) open
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS docs(
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, src INTEGER NOT NULL, seq INTEGER NOT NULL,
    doc BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS docs_src_seq ON docs(src, seq);
CREATE INDEX IF NOT EXISTS docs_ts ON docs(ts);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    body, kw, content='', columnsize=0, tokenize='ascii');
"""
# Bounds on a wildcard's cost, per day file: the terms it may expand to (Lucene's
# default max_clause_count) and the index terms read to find them.
MAX_WILDCARD_TERMS = 1024
MAX_WILDCARD_SCAN = 1_000_000
_SELECT = "SELECT d.id, d.ts, s.name, d.seq, d.doc FROM "
_INSERT_DOCS = "INSERT OR IGNORE INTO docs(id, ts, src, seq, doc) VALUES "
_INSERT_FTS = "INSERT INTO fts(rowid, body, kw) VALUES "


def day_of(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y%m%d")


def _day_start(day: str) -> float:
    return dt.datetime.strptime(day, "%Y%m%d").replace(tzinfo=dt.UTC).timestamp()


@dataclass
class _Batch:
    """Analysed documents of one day and source, by column, for :meth:`_Shard.write`."""

    day: str
    source: str
    ts: list[float] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)
    doc: list[bytes] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    kw: list[str] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)  # seq[:seen_upto], for out-of-order seqs
    seen_upto: int = 0

    def has(self, seq: int) -> bool:
        """Whether the batch has ``seq`` already (needed only if it is not the largest)."""
        if self.seen_upto < len(self.seq):
            self.seen.update(self.seq[self.seen_upto :])
            self.seen_upto = len(self.seq)
        return seq in self.seen


def _insert(db: sqlite3.Connection, head: str, width: int, values: list[Any], rows: int) -> int:
    """Run ``head`` + multi-row VALUES over ``values`` (``width`` per row, at most ``rows``
    rows per statement); returns the rows changed."""
    variables = db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    step = min(rows, variables // width) * width
    changed = 0
    for at in range(0, len(values), step):
        chunk = values[at : at + step]
        sql = head + ",".join(["(" + ",".join("?" * width) + ")"] * (len(chunk) // width))
        changed += db.execute(sql, chunk).rowcount
    return changed


class _Shard:
    def __init__(self, path: Path, day: str) -> None:
        self.path = path
        self.day = day
        self.start = _day_start(day)
        self.end = self.start + DAY
        self._writer: sqlite3.Connection | None = None
        try:
            self.db = self._connect(writer=False)
            self._migrate()
        except sqlite3.Error as exc:
            raise IndexUnavailable(f"cannot open index partition {path}: {exc}") from exc
        self.sources: dict[str, int] = dict(self.db.execute("SELECT name, id FROM sources"))
        self.next_id = self._max_id() + 1
        self._vocab = False

    def _connect(self, *, writer: bool) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path,
            check_same_thread=False,
            isolation_level=None,
            # The writer keeps a few statements: the full-size INSERTs stay compiled,
            # each batch's last, partial ones replace the previous batch's.
            cached_statements=8 if writer else 128,
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        # Nothing is deleted row by row (retention unlinks whole files), so there is
        # nothing to scrub when FTS5 merges segments.
        db.execute("PRAGMA secure_delete=OFF")
        if writer:
            db.execute("PRAGMA cache_size=-32768")
        return db

    @property
    def writer(self) -> sqlite3.Connection:
        """The connection that writes: its own, so big INSERTs leave the query cache alone."""
        if self._writer is None:
            self._writer = self._connect(writer=True)
        return self._writer

    def close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise IndexUnavailable(
                f"index partition {self.path} has schema version {version}, newer than "
                f"this rackpool's {SCHEMA_VERSION}: upgrade rackpool, or move the file away "
                "(its lines are then no longer searchable)"
            )
        if version == SCHEMA_VERSION:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            for name, value in _FTS_SETTINGS:
                try:
                    self.db.execute("INSERT INTO fts(fts, rank) VALUES (?, ?)", (name, value))
                except sqlite3.OperationalError:  # tuning only: works without it, more slowly
                    continue
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _max_id(self) -> int:
        return int(self.db.execute("SELECT max(id) FROM docs").fetchone()[0] or 0)

    def write(self, batch: _Batch, rows_per_insert: int) -> int:
        """Store a batch in one transaction; returns how many documents were new.

        Rows get ids ``next_id``, ``next_id + 1``, … A (source, seq) already stored is
        skipped by the unique index (``OR IGNORE``), and then so are its tokens.
        """
        db = self.writer
        base = self.next_id
        size = len(batch.seq)
        ids = range(base, base + size)
        db.execute("BEGIN IMMEDIATE")
        try:
            sid = self.sources.get(batch.source)
            if sid is None:
                cur = db.execute("INSERT INTO sources(name) VALUES (?)", (batch.source,))
                sid = int(cur.lastrowid or 0)
            docs = zip(ids, batch.ts, itertools.repeat(sid), batch.seq, batch.doc, strict=False)
            values = list(itertools.chain.from_iterable(docs))
            added = _insert(db, _INSERT_DOCS, 5, values, rows_per_insert)
            fts: Iterable[tuple[int, str, str]] = zip(ids, batch.body, batch.kw, strict=True)
            if added < size:  # duplicates: index only the rows that were stored
                stored = {i for (i,) in db.execute("SELECT id FROM docs WHERE id >= ?", (base,))}
                fts = (row for row in fts if row[0] in stored)
            values = list(itertools.chain.from_iterable(fts))
            _insert(db, _INSERT_FTS, 3, values, rows_per_insert)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self.next_id = self._max_id() + 1
            raise
        self.sources[batch.source] = sid
        self.next_id = base + size
        return added

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

    def expand(self, column: str, start: str, node: Wildcard) -> list[str]:
        """The index terms of ``column`` from ``start`` on that ``node``'s pattern matches."""
        if not self._vocab:
            self.db.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, fts, col)"
            )
            self._vocab = True
        match = analysis.wildcard_matcher(node.pattern)
        terms: list[str] = []
        rows = self.db.execute(
            "SELECT term FROM temp.vocab WHERE col = ? AND term >= ? AND term < ?",
            (column, start, start + "\U0010ffff"),
        )
        for scanned, (term,) in enumerate(rows):
            if scanned >= MAX_WILDCARD_SCAN:
                raise QueryTooCostly(
                    f"wildcard {node.field}:{node.pattern} reads more than {MAX_WILDCARD_SCAN:,} "
                    "index terms: put more literal characters before its first * or ?"
                )
            if match(analysis.decode_token(term)):
                if len(terms) >= MAX_WILDCARD_TERMS:
                    raise QueryTooCostly(
                        f"wildcard {node.field}:{node.pattern} matches more than "
                        f"{MAX_WILDCARD_TERMS} terms: make it narrower"
                    )
                terms.append(term)
        return terms

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

    def histogram(
        self,
        docset: DocSet,
        since: float | None,
        until: float | None,
        interval: float,
        by: Sequence[str],
    ) -> list[tuple[float, str, int]]:
        """(bucket start, first of the ``by`` fields present or "", count) per bucket."""
        frm, where, args = self._where(docset, since, until)
        paths = [f'$."{f}"' for f in by]
        extract = ["json_extract(CAST(d.doc AS TEXT), ?)"] * len(paths)
        value = "coalesce(" + ", ".join([*extract, "''"]) + ")" if paths else "''"
        sql = (
            f"SELECT CAST(d.ts / ? AS INTEGER) AS b, {value} AS v, count(*) "
            f"FROM {frm}{where} GROUP BY b, v"
        )
        rows = self.db.execute(sql, [interval, *paths, *args]).fetchall()
        return [(b * interval, str(v), int(n)) for b, v, n in rows]

    def hit(self, row: tuple[int, float, str, int, bytes]) -> Hit:
        rowid, ts, source, seq, doc = row
        return Hit(f"{self.day}-{rowid}", ts, source, seq, analysis.shown_fields(orjson.loads(doc)))

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
        self.close_writer()
        self.db.close()


def _compiler(query: Node) -> Callable[[_Shard], DocSet]:
    """The query's documents in a partition: compiled once, or per partition for wildcards."""
    if has_wildcards(query):
        return lambda shard: compile_query(query, shard.expand)
    docset = compile_query(query)
    return lambda shard: docset


class SqliteIndex:
    """:class:`rackpool.ops.index.LogIndex` on SQLite FTS5 files under ``path``."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_age_days: float | None = None,
        max_bytes: int | None = None,
        clock: Clock | None = None,
        rows_per_insert: int = ROWS_PER_INSERT,
    ) -> None:
        self.path = Path(path)
        self.rows_per_insert = rows_per_insert
        self.path.mkdir(parents=True, exist_ok=True)
        self.max_age_days = max_age_days
        self.max_bytes = max_bytes
        self.clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._shards: dict[str, _Shard] = {}
        self._keywords = analysis.KeywordEncoder()
        self._prepare_lock = threading.Lock()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="ops-index-writer")
        self._writing: list[str] = []  # days with a writer connection open, oldest first
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

    def add(self, docs: Iterable[LogDoc]) -> int:
        return self.submit(docs).result()

    def submit(self, docs: Iterable[LogDoc]) -> Future[int]:
        """Analyse ``docs`` here and now; store them on the writer thread, in order."""
        batches = self._prepare(docs)
        try:
            return self._writer.submit(self._write, batches)
        except RuntimeError as exc:  # shut down
            raise IndexUnavailable("the log index is closed") from exc

    def _prepare(self, docs: Iterable[LogDoc]) -> list[_Batch]:
        cutoff = self._cutoff()
        batches: dict[tuple[str, str], _Batch] = {}
        encode_text, dumps = analysis.encode_text, orjson.dumps
        batch = _Batch("", "")
        seqs = batch.seq
        start = end = 0.0
        with self._prepare_lock:
            encode_keywords = self._keywords.encode
            for d in docs:
                ts = d.ts
                if cutoff is not None and ts < cutoff:
                    continue
                if not start <= ts < end or d.source != batch.source:
                    day = day_of(ts)
                    start = _day_start(day)
                    end = start + DAY
                    key = (day, d.source)
                    if key not in batches:
                        batches[key] = _Batch(day, d.source)
                    batch = batches[key]
                    seqs = batch.seq
                seq = d.seq
                if seqs and seq <= seqs[-1] and batch.has(seq):
                    continue  # the first of a (source, seq) counts
                f = d.fields
                body = f.get("message", "")
                if type(body) is not str:
                    body = str(body)
                if f.get("exception"):
                    body += "\n" + str(f["exception"])
                batch.ts.append(ts)
                seqs.append(seq)
                batch.doc.append(d.stored if d.stored is not None else dumps(f, default=str))
                batch.body.append(encode_text(body))
                batch.kw.append(encode_keywords(f))
        return list(batches.values())

    def _write(self, batches: list[_Batch]) -> int:
        added = 0
        with self._lock:
            for batch in batches:
                try:
                    added += self._shard(batch.day).write(batch, self.rows_per_insert)
                except sqlite3.Error as exc:
                    raise IndexUnavailable(f"cannot write to the log index: {exc}") from exc
                if batch.day in self._writing:
                    self._writing.remove(batch.day)
                self._writing.append(batch.day)
            while len(self._writing) > _WRITERS:  # lines mostly go to today (and yesterday)
                shard = self._shards.get(self._writing.pop(0))
                if shard is not None:
                    shard.close_writer()
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
        compiled = _compiler(query)
        hits: list[Hit] = []
        total = 0
        with self._lock:
            for shard in self._in_range(since, until, newest_first):
                docset = compiled(shard)
                if docset.is_empty:
                    continue
                n = shard.count(docset, since, until)
                total += n
                want = offset + limit - len(hits)
                if n and want > 0:
                    hits += shard.search(docset, since, until, want, newest_first)
        return SearchPage(tuple(hits[offset : offset + limit]), total)

    def count(self, query: Node, *, since: float | None = None, until: float | None = None) -> int:
        compiled = _compiler(query)
        with self._lock:
            return sum(
                shard.count(docset, since, until)
                for shard in self._in_range(since, until, False)
                if not (docset := compiled(shard)).is_empty
            )

    def histogram(
        self,
        query: Node,
        *,
        since: float | None = None,
        until: float | None = None,
        interval: float = 3600.0,
        by: Sequence[str] = (),
    ) -> dict[tuple[float, str], int]:
        compiled = _compiler(query)
        out: dict[tuple[float, str], int] = {}
        with self._lock:
            for shard in self._in_range(since, until, False):
                docset = compiled(shard)
                if docset.is_empty:
                    continue
                for start, value, n in shard.histogram(docset, since, until, interval, by):
                    out[(start, value)] = out.get((start, value), 0) + n
        return out

    def scan(
        self, query: Node, *, since: float | None = None, until: float | None = None
    ) -> Iterator[Hit]:
        compiled = _compiler(query)
        for shard in self._in_range(since, until, False):
            with self._lock:
                docset = compiled(shard)
                hits = [] if docset.is_empty else shard.search(docset, since, until, -1, False)
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
        if day in self._writing:
            self._writing.remove(day)
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
        self._writer.shutdown(wait=True)
        with self._lock:
            for s in self._shards.values():
                s.close()
            self._shards.clear()
