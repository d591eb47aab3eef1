"""A table of queries with the documents they must find, on a fixed corpus.

Expected hits follow Lucene's semantics for the supported forms (StandardAnalyzer on
``message``, keyword fields elsewhere). Every LogIndex backend must pass this table.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rackpool.core.clock import ManualClock
from rackpool.ops.index import LogDoc
from rackpool.ops.index.sqlite import DAY, SqliteIndex
from rackpool.ops.query import parse

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z

CORPUS = [
    # (name, message, fields)
    (
        "rpc",
        "Timed out waiting for a reply to message ID 8f2c",
        {"tags": ["screen-n-cpu.txt"], "loglevel": "ERROR", "module": "nova.compute.manager"},
    ),
    (
        "reset",
        "java.io.IOException: Connection reset by peer",
        {"tags": ["console"], "build_status": "FAILURE", "build_name": "gate-tempest-full"},
    ),
    (
        "quota",
        "Quota exceeded for cores: Requested 4, but already used 20 of 20 cores",
        {"tags": ["console"], "build_status": "FAILURE", "build_name": "gate-grenade"},
    ),
    (
        "ok",
        "Build succeeded in 20 minutes",
        {"tags": ["console"], "build_status": "SUCCESS", "build_name": "gate-tempest-full"},
    ),
    (
        "ip",
        "Failed to ping 10.0.0.5 from host compute-1",
        {"tags": ["screen-n-net.txt", "console"], "loglevel": "WARNING"},
    ),
    (
        "dots",
        "nova.compute.manager: instance i-42 failed to spawn",
        {"tags": ["screen-n-cpu.txt"], "build_status": "failure"},
    ),
    (
        "case",
        "CONNECTION RESET while fetching image",
        {"filename": "console.html", "tags": ["Console"]},
    ),
    ("apos", "Host doesn't exist, Timed-out after 1,000 ms", {"node_provider": "rax-dfw"}),
]


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SqliteIndex]:
    ix = SqliteIndex(tmp_path / "index")
    ix.add(
        [
            LogDoc(T0 + i, "corpus", i, {"message": msg, "name": name, **fields})
            for i, (name, msg, fields) in enumerate(CORPUS)
        ]
    )
    yield ix
    ix.close()


TABLE = [
    # phrases: adjacent tokens, case-insensitive
    ('message:"Connection reset by peer"', {"reset"}),
    ('message:"connection reset"', {"reset", "case"}),
    ('message:"reset connection"', set()),
    ('message:"Connection peer"', set()),
    ('message:"waiting for a reply to message"', {"rpc"}),
    ('"Quota exceeded for cores"', {"quota"}),
    ('message:"Timed out"', {"rpc", "apos"}),  # "Timed-out" is the tokens timed, out
    ('message:"Timed-out"', {"rpc", "apos"}),
    # tokens: dotted names, IPs, apostrophes, numbers stay whole (StandardTokenizer)
    ('message:"nova.compute.manager"', {"dots"}),
    ("message:compute", {"ip"}),  # compute-1, not nova.compute.manager
    ('message:"10.0.0.5"', {"ip"}),
    ("message:10", set()),
    ("message:doesn't", {"apos"}),
    ("message:1,000", {"apos"}),
    ("message:exception", set()),
    ("java.io.IOException", {"reset"}),
    # bare terms go to message, case-insensitively
    ("QUOTA", {"quota"}),
    ("reset", {"reset", "case"}),
    # keyword fields: exact and case-sensitive, lists match any element
    ("tags:console", {"reset", "quota", "ok", "ip"}),
    ('tags:"screen-n-cpu.txt"', {"rpc", "dots"}),
    ('tags:"screen-n-cpu"', set()),
    ("tags:Console", {"case"}),
    ("build_status:FAILURE", {"reset", "quota"}),
    ('build_status:"failure"', {"dots"}),
    ('filename:"console.html"', {"case"}),
    ('module:"nova.compute.manager"', {"rpc"}),
    ("node_provider:rax-dfw", {"apos"}),
    ("unknown_field:x", set()),
    # wildcards
    ("timed*", {"rpc", "apos"}),
    ("nova.comp*", {"dots"}),
    ("exceed*", {"quota"}),
    ("build_name:gate-tempest*", {"reset", "ok"}),
    ("build_name:gate-*", {"reset", "quota", "ok"}),
    ("tags:screen-*", {"rpc", "ip", "dots"}),
    ("build_status:*", {"reset", "quota", "ok", "dots"}),
    ("*", {n for n, _, _ in CORPUS}),
    # AND / OR / NOT and their Lucene semantics
    ('message:"connection reset" AND tags:console', {"reset"}),
    ("build_status:FAILURE AND NOT build_name:gate-grenade", {"reset"}),
    ("build_status:FAILURE -build_name:gate-grenade", {"reset"}),
    ("reset OR quota", {"reset", "case", "quota"}),
    ("reset quota", {"reset", "case", "quota"}),
    ("+reset quota", {"reset", "case"}),
    ("NOT tags:console", {"rpc", "dots", "case", "apos"}),
    ("-tags:console", {"rpc", "dots", "case", "apos"}),
    ("quota OR NOT tags:console", set()),  # = quota -tags:console
    ("reset AND quota OR ok", set()),  # = +reset +quota ok
    ("(reset AND quota) OR build", {"ok"}),
    ("ok OR reset AND tags:console", {"reset"}),  # = ok +reset +tags:console
    ("(reset OR quota) AND build_status:FAILURE", {"reset", "quota"}),
    # a nested group of only negatives is "everything except" (Elasticsearch)
    ("tags:console AND (NOT build_status:FAILURE)", {"ok", "ip"}),
    ("tags:console AND NOT build_status:FAILURE", {"ok", "ip"}),
    ("tags:(console OR Console) AND NOT reset", {"quota", "ok", "ip"}),
    ('message:"---" OR quota', {"quota"}),  # a term without tokens drops out
]


@pytest.mark.parametrize(("query", "expected"), TABLE, ids=[q for q, _ in TABLE])
def test_query_table(index: SqliteIndex, query: str, expected: set[str]) -> None:
    page = index.search(parse(query), limit=100)
    assert {h.fields["name"] for h in page.hits} == expected
    assert page.total == len(expected) == index.count(parse(query))


def test_results_newest_first_and_paged(index: SqliteIndex) -> None:
    q = parse("tags:console")
    first = index.search(q, limit=2)
    second = index.search(q, limit=2, offset=2)
    names = [h.fields["name"] for h in first.hits + second.hits]
    assert names == ["ip", "ok", "quota", "reset"]
    oldest = index.search(q, limit=1, newest_first=False)
    assert oldest.hits[0].fields["name"] == "reset"


def test_time_bounds(index: SqliteIndex) -> None:
    page = index.search(parse("*"), since=T0 + 2, until=T0 + 4)
    assert {h.fields["name"] for h in page.hits} == {"quota", "ok"}
    assert index.count(parse("tags:console"), since=T0 + 3.5) == 1


def test_adding_twice_stores_once(index: SqliteIndex) -> None:
    again = [LogDoc(T0, "corpus", 0, {"message": "Timed out waiting"})]
    assert index.add(again) == 0
    assert index.stats().documents == len(CORPUS)


def test_context_is_lines_around_from_the_same_source(tmp_path: Path) -> None:
    ix = SqliteIndex(tmp_path / "ctx")
    ix.add([LogDoc(T0 + i, "a.log", i * 10, {"message": f"a{i}"}) for i in range(20)])
    ix.add([LogDoc(T0 + i, "b.log", i * 10, {"message": f"b{i}"}) for i in range(20)])
    hit = ix.search(parse("a7")).hits[0]
    ctx = ix.context(hit.id, before=2, after=3)
    assert [h.fields["message"] for h in ctx] == ["a5", "a6", "a7", "a8", "a9", "a10"]
    ix.close()


def test_retention_by_age_and_size(tmp_path: Path) -> None:
    clock = ManualClock(T0 + 10 * DAY)
    ix = SqliteIndex(tmp_path / "ret", max_age_days=3, clock=clock)
    ix.add([LogDoc(T0 + d * DAY, "s", d, {"message": f"day{d}"}) for d in range(11)])
    assert ix.stats().documents == 4  # older than 3 days are not even stored
    clock.advance(2 * DAY)
    assert ix.expire() == 2
    assert {h.fields["message"] for h in ix.search(parse("*")).hits} == {"day9", "day10"}
    ix.close()
    small = SqliteIndex(tmp_path / "size", max_bytes=1)
    small.add([LogDoc(T0 + d * DAY, "s", d, {"message": f"day{d}"}) for d in range(3)])
    assert small.expire() == 2
    assert [h.fields["message"] for h in small.search(parse("*")).hits] == ["day2"]
    small.close()
    reopened = SqliteIndex(tmp_path / "ret")
    assert reopened.stats().partitions == 2
    reopened.close()
