"""The shipper follows files through rotation and restarts, losing and doubling nothing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, cast

import pytest

from rackpool.ops.errors import IndexUnavailable
from rackpool.ops.index import LogDoc, LogIndex
from rackpool.ops.index.sqlite import SqliteIndex
from rackpool.ops.query import parse
from rackpool.ops.shipper import CheckpointFile, Shipper


def _write(path: Path, start: int, count: int) -> None:
    with path.open("a") as fh:
        for i in range(start, start + count):
            fh.write(json.dumps({"ts": 1_700_000_000 + i, "message": f"line {i}", "n": i}) + "\n")


def _numbers(index: SqliteIndex) -> list[int]:
    hits = index.search(parse("*"), limit=100_000, newest_first=False).hits
    return sorted(int(h.fields["n"]) for h in hits if "n" in h.fields)


def _shipper(index: SqliteIndex, tmp_path: Path) -> Shipper:
    return Shipper(
        index,
        [str(tmp_path / "logs" / "*.log")],
        CheckpointFile(tmp_path / "ckpt.json"),
        fields={"tags": ["pool.log"]},
    )


def test_follows_rotation_and_restarts(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "pool.log"
    index = SqliteIndex(tmp_path / "index")
    shipper = _shipper(index, tmp_path)
    _write(log, 0, 100)
    assert shipper.poll() == 100
    _write(log, 100, 50)
    # logrotate (create mode): move away, more lines land in the old file, new file starts
    os.rename(log, tmp_path / "logs" / "pool.log.1")
    _write(tmp_path / "logs" / "pool.log.1", 150, 10)
    _write(log, 160, 20)
    shipper.poll()
    shipper.poll()
    assert _numbers(index) == list(range(180))

    # restart: a new shipper resumes from the checkpoint
    shipper.close()
    _write(log, 180, 20)
    shipper = _shipper(index, tmp_path)
    shipper.poll()
    assert _numbers(index) == list(range(200))

    # rotated while the shipper was down: the old file is finished first
    shipper.close()
    _write(log, 200, 5)
    os.rename(tmp_path / "logs" / "pool.log.1", tmp_path / "logs" / "pool.log.2")
    os.rename(log, tmp_path / "logs" / "pool.log.1")
    _write(log, 205, 5)
    shipper = _shipper(index, tmp_path)
    shipper.poll()
    shipper.poll()
    assert _numbers(index) == list(range(210))
    assert index.search(parse("tags:pool.log")).total == 210
    shipper.close()
    index.close()


def test_crash_before_checkpoint_doubles_nothing(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "agent.log"
    index = SqliteIndex(tmp_path / "index")
    shipper = _shipper(index, tmp_path)
    _write(log, 0, 30)
    shipper.poll()
    stale = (tmp_path / "ckpt.json").read_text()
    _write(log, 30, 30)
    shipper.poll()
    shipper.close()
    # the index committed lines 30..59 but the checkpoint write was "lost"
    (tmp_path / "ckpt.json").write_text(stale)
    shipper = _shipper(index, tmp_path)
    shipper.poll()
    assert _numbers(index) == list(range(60))
    shipper.close()
    index.close()


def test_partial_lines_wait_and_truncation_restarts(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "cloud.log"
    index = SqliteIndex(tmp_path / "index")
    shipper = _shipper(index, tmp_path)
    _write(log, 0, 3)
    with log.open("a") as fh:
        fh.write('{"ts": 1700000003, "message": "line 3", "n": 3')
    shipper.poll()
    assert _numbers(index) == [0, 1, 2]
    with log.open("a") as fh:
        fh.write("}\nplain text line, password=hunter2\n")
    shipper.poll()
    assert _numbers(index) == [0, 1, 2, 3]
    (plain,) = index.search(parse('"plain text line"')).hits
    assert "hunter2" not in plain.fields["message"]
    # copytruncate: the file shrinks and starts over
    log.write_text("")
    _write(log, 100, 2)
    shipper.poll()
    assert _numbers(index) == [0, 1, 2, 3, 100, 101]
    shipper.close()
    index.close()


class _FlakyIndex:
    """An index whose ``fail``-th submission fails (after the ones before it were stored)."""

    def __init__(self, index: SqliteIndex, fail: int) -> None:
        self.index = index
        self.fail = fail
        self.submitted = 0

    def submit(self, docs: Iterable[LogDoc]) -> Future[int]:
        self.submitted += 1
        if self.submitted != self.fail:
            return self.index.submit(docs)
        list(docs)
        future: Future[int] = Future()
        future.set_exception(IndexUnavailable("disk full"))
        return future

    def __getattr__(self, name: str) -> Any:
        return getattr(self.index, name)


def test_a_failed_batch_is_read_again_and_nothing_after_it_is_checkpointed(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "pool.log"
    index = SqliteIndex(tmp_path / "index")
    flaky = _FlakyIndex(index, fail=3)
    shipper = Shipper(
        cast(LogIndex, flaky),
        [str(tmp_path / "logs" / "*.log")],
        CheckpointFile(tmp_path / "ckpt.json"),
        max_lines=10,
    )
    _write(log, 0, 55)
    with pytest.raises(IndexUnavailable):
        shipper.poll()
    # batches 1 and 2 were stored and checkpointed; 4 may have been stored, not checkpointed
    saved = json.loads((tmp_path / "ckpt.json").read_text())[str(log)]
    assert saved["offset"] == len("".join(log.read_text().splitlines(keepends=True)[:20]))
    assert _numbers(index)[:20] == list(range(20))
    assert shipper.poll() == 35
    assert _numbers(index) == list(range(55))
    shipper.close()
    index.close()
