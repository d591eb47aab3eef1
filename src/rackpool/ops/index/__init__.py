"""The log index behind a narrow interface.

The embedded default is :class:`rackpool.ops.index.sqlite.SqliteIndex` (SQLite FTS5,
one database file per UTC day). A scale backend (OpenSearch, PostgreSQL full text)
implements the same :class:`LogIndex` protocol: it receives the parsed query tree
from :mod:`rackpool.ops.query` and translates it, and must pass the same test table
(``tests/unit/ops/test_index_queries.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from rackpool.ops.query import Node


@dataclass(frozen=True)
class LogDoc:
    """One log line or pushed document on its way into the index.

    ``source`` names the stream it came from (a log file, ``build_uuid/filename``)
    and ``seq`` orders it within that stream; (source, seq) is unique, so adding a
    document twice stores it once. ``stored``, when given, is ``fields`` as JSON text
    exactly (the log line they were parsed from); an index may store it as is instead
    of serialising ``fields`` again.
    """

    ts: float
    source: str
    seq: int
    fields: dict[str, Any] = field(default_factory=dict)
    stored: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Hit:
    """A stored document as a search returns it."""

    id: str
    ts: float
    source: str
    seq: int
    fields: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The stored fields plus id, source, seq and ``ts`` as epoch seconds."""
        return {**self.fields, "id": self.id, "ts": self.ts, "source": self.source, "seq": self.seq}


@dataclass(frozen=True)
class SearchPage:
    hits: tuple[Hit, ...]
    total: int


@dataclass(frozen=True)
class IndexStats:
    documents: int
    bytes_on_disk: int
    partitions: int
    oldest: float | None
    newest: float | None


class DocSink(Protocol):
    """Where a shipper sends documents: a local index, or the ops API of another host
    (:class:`rackpool.ops.remote.RemoteIndex`)."""

    def add(self, docs: Iterable[LogDoc]) -> int:
        """Store documents; returns how many were new (duplicates are ignored)."""
        ...

    def submit(self, docs: Iterable[LogDoc]) -> Future[int]:
        """:meth:`add` without waiting: the future is done when the documents are stored.

        ``docs`` is iterated once, before this returns. Submissions are stored in
        order, so a shipper can read its next batch while this one is written, and
        checkpoint a batch once its future is done.
        """
        ...


class LogIndex(DocSink, Protocol):
    def search(
        self,
        query: Node,
        *,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        offset: int = 0,
        newest_first: bool = True,
    ) -> SearchPage: ...

    def count(
        self, query: Node, *, since: float | None = None, until: float | None = None
    ) -> int: ...

    def histogram(
        self,
        query: Node,
        *,
        since: float | None = None,
        until: float | None = None,
        interval: float = 3600.0,
        by: Sequence[str] = (),
    ) -> dict[tuple[float, str], int]:
        """Matches per (``interval``-long bucket start, value): the value is the first of
        the ``by`` fields a document has (as text), "" if none."""
        ...

    def scan(
        self, query: Node, *, since: float | None = None, until: float | None = None
    ) -> Iterator[Hit]:
        """Every match, oldest first (for the classifier; no page limit)."""
        ...

    def get(self, doc_id: str) -> Hit | None: ...

    def context(self, doc_id: str, before: int = 10, after: int = 10) -> list[Hit]:
        """The document with up to ``before``/``after`` neighbours from the same source."""
        ...

    def expire(self, now: float) -> int:
        """Apply retention (age, size); returns how many partitions were dropped."""
        ...

    def stats(self) -> IndexStats: ...

    def close(self) -> None: ...
