"""Feed the index from daemons' log files, following rotation, resuming after restart.

Each file is read from a byte offset; a line's offset is its ``seq`` and the file's
identity (inode plus a checksum of its first line) is part of its ``source``, so the
index stores a line at most once even if it is read twice. The offsets are saved
(:class:`CheckpointFile`) only after the index has committed the lines, so after a
crash or restart reading resumes at or before the last committed line: none lost,
none doubled.

Reading is pipelined: while the index stores one batch of lines (on its writer
thread, :meth:`LogIndex.submit`), the next is read and parsed; a batch's offset is
checkpointed when its batch is stored, in order. If storing fails, nothing after the
last stored batch is checkpointed and every file is read again from its checkpoint.

Rotation: when the path names a new file, the old one is read to its end through the
handle still open on it (or, after a restart, found again by inode among its
siblings, e.g. ``pool.log.1``) before the new one is read from the start. A file that
shrinks was truncated (copytruncate) and is read again from the start.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from rackpool.core.clock import Clock, SystemClock
from rackpool.core.files import write_private
from rackpool.ops.index import DocSink, LogDoc
from rackpool.ops.ingest import StreamRedactor, doc_from_line
from rackpool.ops.journal import JournalSource

log = logging.getLogger(__name__)
READ_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class Position:
    ino: int
    fingerprint: str
    offset: int


class CheckpointFile:
    """Shipper positions in a JSON file, replaced atomically, private (0600) from the start."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, Position]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return {k: Position(**v) for k, v in data.items()}

    def save(self, positions: Mapping[str, Position]) -> None:
        write_private(self.path, json.dumps({k: asdict(v) for k, v in positions.items()}, indent=1))


def _fingerprint(fh: IO[bytes]) -> str | None:
    """Checksum of the first line, or None while the file has no complete line."""
    here = fh.tell()
    fh.seek(0)
    first = fh.readline(4096)
    fh.seek(here)
    if not first.endswith(b"\n") and len(first) < 4096:
        return None
    return f"{zlib.crc32(first):08x}"


class _Tail:
    """One followed path: an open handle and the position committed for it."""

    def __init__(self, path: str, position: Position | None) -> None:
        self.path = path
        self.committed = position
        self.fh: IO[bytes] | None = None
        self.pos: Position | None = None  # position of self.fh after the last read
        self.stream = StreamRedactor()  # remembers a PEM key block across lines and reads


class _Lines:
    """The complete lines of a chunk read at ``offset``, parsed as they are iterated.

    The index analyses each document as it comes (:meth:`LogIndex.submit` iterates in
    the caller's thread), so no list of parsed lines piles up for the garbage collector
    to traverse again and again. Afterwards ``offset`` is where the next read starts
    and ``count`` how many documents there were (blank lines are skipped).
    """

    def __init__(self, data: bytes, offset: int, max_docs: int) -> None:
        self.data = data
        self.offset = offset
        self.count = 0
        self.max_docs = max_docs

    def docs(
        self, source: str, now: float, defaults: Mapping[str, Any], stream: StreamRedactor
    ) -> Iterator[LogDoc]:
        offset, count = self.offset, 0
        for raw in self.data.splitlines(keepends=True):
            seq = offset
            offset += len(raw)
            line = raw.rstrip(b"\r\n")
            if line[:1] == b"{":  # a JSON line: parsed from its bytes, kept as written
                yield doc_from_line(
                    line, source=source, seq=seq, now=now, defaults=defaults, stream=stream
                )
            elif (text := line.decode("utf-8", errors="replace")).strip():
                yield doc_from_line(
                    text, source=source, seq=seq, now=now, defaults=defaults, stream=stream
                )
            else:
                continue
            count += 1
            if count >= self.max_docs:
                break
        self.offset, self.count = offset, count


class Shipper:
    """Reads new lines from files matching ``globs`` and adds them to ``index`` (the local
    index, or another host's ops API: :class:`rackpool.ops.remote.RemoteIndex`)."""

    def __init__(
        self,
        index: DocSink,
        globs: list[str],
        checkpoints: CheckpointFile,
        *,
        fields: Mapping[str, Any] | None = None,
        clock: Clock | None = None,
        max_lines: int = 20000,
        max_poll_lines: int = 100_000,
        journal: JournalSource | None = None,
    ) -> None:
        self.index = index
        self.globs = globs
        self.checkpoints = checkpoints
        self.fields = dict(fields or {})
        self.clock = clock or SystemClock()
        self.max_lines = max_lines  # per batch (one index transaction)
        self.max_poll_lines = max_poll_lines  # per file and poll, so no file starves others
        self._tails: dict[str, _Tail] = {}
        self._saved = checkpoints.load()
        self.journal = journal  # the systemd journal's entries too, if given
        # each stored batch's future, and what to checkpoint once it is done
        self._pending: deque[tuple[Future[int], Callable[[], None]]] = deque()
        self._stop: threading.Event | None = None  # run()'s: a poll stops reading early

    def paths(self) -> list[str]:
        found: set[str] = set()
        for pattern in self.globs:
            found.update(p for p in glob.glob(pattern) if os.path.isfile(p))
        return sorted(found)

    def poll(self) -> int:
        """Ship what is new in every file once; returns how many lines were added.

        When it returns, they are stored and checkpointed.
        """
        added = 0
        try:
            for path in self.paths():
                tail = self._tails.get(path)
                if tail is None:
                    tail = self._tails[path] = _Tail(path, self._saved.get(path))
                added += self._ship(tail)
            added += self._ship_journal()
            self._flush()
        except BaseException:
            self._abandon()
            raise
        return added

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Poll until ``stop``; then finish the poll under way (what it read is stored and
        checkpointed, unless the index fails) and return."""
        self._stop = stop
        while not stop.is_set():
            try:
                while self.poll() and not stop.is_set():
                    pass
            except Exception:
                if stop.is_set():
                    break
                log.exception("shipping logs failed; retrying", extra={"event": "ship_failed"})
            stop.wait(interval)

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def close(self) -> None:
        for tail in self._tails.values():
            if tail.fh is not None:
                tail.fh.close()
                tail.fh = None

    # -- one file ---------------------------------------------------------------------

    def _ship(self, tail: _Tail) -> int:
        if tail.fh is None and not self._open(tail):
            return 0
        assert tail.fh is not None and tail.pos is not None
        st = os.fstat(tail.fh.fileno())
        if st.st_size < tail.pos.offset:  # truncated in place: start over
            tail.pos = Position(tail.pos.ino, "", 0)
        added = 0
        while (
            added < self.max_poll_lines
            and not self._stopping()
            and (read := self._read(tail, final=False))
        ):
            added += read
        try:
            rotated = os.stat(tail.path).st_ino != st.st_ino
        except FileNotFoundError:
            rotated = True
        if rotated and added < self.max_poll_lines and not self._stopping():
            while drained := self._read(tail, final=True):
                added += drained
            self._flush()
            tail.fh.close()
            tail.fh = None
            tail.committed = None
        return added

    def _open(self, tail: _Tail) -> bool:
        try:
            fh = open(tail.path, "rb")  # noqa: SIM115 - held open across polls
        except FileNotFoundError:
            return False
        ino = os.fstat(fh.fileno()).st_ino
        saved = tail.committed
        if saved is not None and saved.ino != ino:
            self._drain_rotated(tail, saved)
            saved = None
        tail.fh = fh
        tail.pos = saved if saved is not None else Position(ino, "", 0)
        return True

    def _drain_rotated(self, tail: _Tail, saved: Position) -> None:
        """After a restart: finish the file that was rotated away while we were down."""
        directory = os.path.dirname(tail.path) or "."
        base = os.path.basename(tail.path)
        for entry in os.scandir(directory):
            if entry.name.startswith(base) and entry.is_file() and entry.inode() == saved.ino:
                old = _Tail(entry.path, saved)
                old.fh = open(entry.path, "rb")  # noqa: SIM115
                old.pos = saved
                old.path = tail.path  # checkpoints and sources stay keyed by the logical path
                while self._read(old, final=True):
                    pass
                self._flush()
                old.fh.close()
                return

    def _read(self, tail: _Tail, *, final: bool) -> int:
        fh, pos = tail.fh, tail.pos
        assert fh is not None and pos is not None
        fingerprint = pos.fingerprint or _fingerprint(fh)
        if fingerprint is None and not final:
            return 0
        fingerprint = fingerprint or "0"
        fh.seek(pos.offset)
        data = fh.read(READ_CHUNK)
        end = len(data) if final else data.rfind(b"\n") + 1
        if end <= 0:
            return 0
        source = f"{tail.path}#{pos.ino}-{fingerprint}"
        lines = _Lines(data[:end], pos.offset, self.max_lines)
        future = self.index.submit(lines.docs(source, self.clock.now(), self.fields, tail.stream))
        tail.pos = pos = Position(pos.ino, fingerprint, lines.offset)
        self._queue(future, lambda: self._committed(tail, pos))
        return lines.count

    def _ship_journal(self) -> int:
        journal = self.journal
        if journal is None or self._stopping():
            return 0
        entries = journal.read(self.max_lines)
        if not entries:
            return 0
        cursor = entries[-1].cursor
        self._queue(self.index.submit(journal.docs(entries)), lambda: journal.commit(cursor))
        return len(entries)

    def _queue(self, future: Future[int], on_stored: Callable[[], None]) -> None:
        self._pending.append((future, on_stored))
        if len(self._pending) > 1:  # one batch is stored while the next is read
            self._commit_oldest()

    def _committed(self, tail: _Tail, pos: Position) -> None:
        tail.committed = pos
        self._saved[tail.path] = pos
        self.checkpoints.save(self._saved)

    def _commit_oldest(self) -> None:
        future, on_stored = self._pending[0]
        future.result()
        self._pending.popleft()
        on_stored()

    def _flush(self) -> None:
        while self._pending:
            self._commit_oldest()

    def _abandon(self) -> None:
        """After a failure: checkpoint nothing more; read every file again from its checkpoint."""
        for future, _ in self._pending:
            try:
                future.result()
            except Exception:  # noqa: S112 - the first failure is the one reported
                continue
        self._pending.clear()
        self.close()
        self._tails.clear()
        if self.journal is not None:
            self.journal.rewind()
