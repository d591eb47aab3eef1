"""How the SQLite index stores documents: batches, duplicates, stored lines, schema versions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from rackpool.ops import analysis
from rackpool.ops.errors import IndexUnavailable
from rackpool.ops.index import LogDoc
from rackpool.ops.index import sqlite as sqlite_index
from rackpool.ops.index.sqlite import SCHEMA_VERSION, SqliteIndex, day_of
from rackpool.ops.ingest import doc_from_line
from rackpool.ops.query import parse

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def _doc(seq: int, word: str, source: str = "s") -> LogDoc:
    return LogDoc(T0 + seq, source, seq, {"message": f"{word} line", "n": seq})


def _ns(index: SqliteIndex, query: str = "*") -> list[int]:
    return sorted(h.fields["n"] for h in index.search(parse(query), limit=1000).hits)


def test_duplicates_within_and_across_batches(tmp_path: Path) -> None:
    ix = SqliteIndex(tmp_path / "ix")
    # within a batch the first (source, seq) counts, also out of order
    assert ix.add([_doc(3, "c"), _doc(1, "a"), _doc(3, "x"), _doc(2, "b"), _doc(1, "y")]) == 3
    assert _ns(ix) == [1, 2, 3]
    assert ix.count(parse("x OR y")) == 0
    # a batch with some lines stored already: only the new ones, and only their tokens
    assert ix.add([_doc(2, "z"), _doc(4, "d"), _doc(3, "z"), _doc(5, "e")]) == 2
    assert _ns(ix) == [1, 2, 3, 4, 5]
    assert ix.count(parse("z")) == 0
    assert ix.count(parse("line")) == 5
    # the same seq from another source is another line
    assert ix.add([_doc(1, "other", source="t")]) == 1
    assert ix.stats().documents == 6
    ix.close()


def test_batches_larger_than_one_statement(tmp_path: Path) -> None:
    ix = SqliteIndex(tmp_path / "ix", rows_per_insert=3)
    assert ix.add([_doc(i, f"w{i}") for i in range(10)]) == 10
    assert ix.add([_doc(i, f"again{i}") for i in range(5, 12)]) == 2
    assert _ns(ix) == list(range(12))
    assert _ns(ix, "again*") == [10, 11]
    assert ix.count(parse("w7")) == 1
    ix.close()


def test_submit_stores_in_order(tmp_path: Path) -> None:
    ix = SqliteIndex(tmp_path / "ix")
    futures = [ix.submit(_doc(i * 10 + j, f"b{i}") for j in range(10)) for i in range(5)]
    assert [f.result() for f in futures] == [10] * 5
    ids = [h.id for h in ix.search(parse("*"), limit=100, newest_first=False).hits]
    assert ids == sorted(ids, key=lambda i: int(i.split("-")[1]))
    ix.close()
    with pytest.raises(IndexUnavailable):
        ix.submit([_doc(99, "late")])


def test_a_line_is_stored_as_written_and_shown_with_aliases(tmp_path: Path) -> None:
    line = b'{"ts": "2023-11-14T22:13:20Z", "level": "ERROR", "logger": "a.b", "x": [1, "y"]}'
    doc = doc_from_line(line, source="s", seq=0, now=0.0)
    assert doc.stored == line
    assert doc.ts == T0
    ix = SqliteIndex(tmp_path / "ix")
    ix.add([doc])
    (hit,) = ix.search(parse("loglevel:ERROR AND module:a.b AND level:ERROR AND x:y")).hits
    assert hit.fields == {**orjson.loads(line), "loglevel": "ERROR", "module": "a.b", "message": ""}
    db = sqlite3.connect(tmp_path / "ix" / f"logs-{day_of(T0)}.db")
    assert db.execute("SELECT doc FROM docs").fetchone()[0] == line
    db.close()
    ix.close()


def test_a_line_with_secrets_or_extra_fields_is_stored_rewritten(tmp_path: Path) -> None:
    secret = doc_from_line(
        b'{"message": "login", "password": "hunter2"}', source="s", seq=0, now=T0
    )
    assert secret.stored is None
    assert secret.fields["password"] != "hunter2"
    extra = doc_from_line(b'{"message": "m"}', source="s", seq=1, now=T0, defaults={"tags": ["t"]})
    assert extra.stored is None
    assert extra.fields == {"tags": ["t"], "message": "m"}
    bad = doc_from_line(b'{"message": "bad \xff byte"}', source="s", seq=2, now=T0)
    assert bad.stored is None
    assert bad.fields == {"message": "bad \ufffd byte"}
    ix = SqliteIndex(tmp_path / "ix")
    ix.add([secret, extra, bad])
    assert ix.count(parse("hunter2")) == 0
    assert [h.fields["message"] for h in ix.search(parse("tags:t")).hits] == ["m"]
    ix.close()


def _version_0_partition(path: Path) -> None:
    """A day file as the first rackpool wrote it: unicode61 tokens, aliases stored."""
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE sources(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        CREATE TABLE docs(
            id INTEGER PRIMARY KEY, ts REAL NOT NULL, src INTEGER NOT NULL,
            seq INTEGER NOT NULL, doc BLOB NOT NULL);
        CREATE UNIQUE INDEX docs_src_seq ON docs(src, seq);
        CREATE INDEX docs_ts ON docs(ts);
        CREATE VIRTUAL TABLE fts USING fts5(
            body, kw, content='', columnsize=0, tokenize='unicode61 remove_diacritics 0');
        INSERT INTO sources VALUES (1, 'old.log');
        """
    )
    fields = {"level": "ERROR", "message": "Connection reset by peer", "loglevel": "ERROR"}
    db.execute("INSERT INTO docs VALUES (1, ?, 1, 0, ?)", (T0, orjson.dumps(fields)))
    db.execute(
        "INSERT INTO fts(rowid, body, kw) VALUES (1, ?, ?)",
        (analysis.encode_text(fields["message"]), analysis.encode_keywords(fields)),
    )
    db.commit()
    db.close()


def test_version_0_partition_is_upgraded_in_place(tmp_path: Path) -> None:
    (tmp_path / "ix").mkdir()
    path = tmp_path / "ix" / f"logs-{day_of(T0)}.db"
    _version_0_partition(path)
    ix = SqliteIndex(tmp_path / "ix")
    ix.add([LogDoc(T0 + 1, "new.log", 0, {"level": "ERROR", "message": "connection reset again"})])
    page = ix.search(parse('loglevel:ERROR AND message:"connection reset"'), newest_first=False)
    assert [h.fields for h in page.hits] == [
        {"level": "ERROR", "message": "Connection reset by peer", "loglevel": "ERROR"},
        {"level": "ERROR", "message": "connection reset again", "loglevel": "ERROR"},
    ]
    ix.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert dict(db.execute("SELECT k, v FROM fts_config WHERE k != 'version'")) == dict(
        sqlite_index._FTS_SETTINGS
    )
    db.close()


def test_a_partition_from_a_newer_rackpool_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ix").mkdir()
    path = tmp_path / "ix" / f"logs-{day_of(T0)}.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(IndexUnavailable, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        SqliteIndex(tmp_path / "ix")
