"""Matches per time bucket, split by a field: what the dashboard's graphs are made of."""

from __future__ import annotations

from pathlib import Path

from rackpool.ops.index import LogDoc
from rackpool.ops.index.sqlite import SqliteIndex
from rackpool.ops.query import parse

T0 = 1_700_000_000.0 // 3600 * 3600  # an hour's start
DAY = 86400.0


def _docs() -> list[LogDoc]:
    rows = [
        (T0 + 10, {"message": "boot timeout", "build_status": "FAILURE"}),
        (T0 + 20, {"message": "boot timeout", "build_status": "SUCCESS"}),
        (T0 + 3700, {"message": "boot timeout", "event": "launch_failed"}),
        (T0 + 3800, {"message": "boot timeout", "build_status": "FAILURE", "event": "x"}),
        (T0 + DAY + 5, {"message": "boot timeout"}),  # another day file
        (T0 + 30, {"message": "something else", "build_status": "FAILURE"}),
    ]
    return [LogDoc(ts, "s", i, f) for i, (ts, f) in enumerate(rows)]


def test_buckets_split_by_the_first_field_present_across_day_files(tmp_path: Path) -> None:
    ix = SqliteIndex(tmp_path / "ix")
    ix.add(_docs())
    got = ix.histogram(
        parse('message:"boot timeout"'), since=T0, interval=3600, by=("build_status", "event")
    )
    assert got == {
        (T0, "FAILURE"): 1,
        (T0, "SUCCESS"): 1,
        (T0 + 3600, "launch_failed"): 1,
        (T0 + 3600, "FAILURE"): 1,  # build_status comes first
        (T0 + DAY, ""): 1,
    }
    # a time range and no split; NOT-only queries count everything else
    assert ix.histogram(parse("boot"), since=T0 + 3600, until=T0 + DAY, interval=86400) == {
        (T0 // 86400 * 86400, ""): 2
    }
    assert sum(ix.histogram(parse("NOT boot"), since=T0, interval=3600).values()) == 1
    assert ix.histogram(parse("nothing"), since=T0) == {}
