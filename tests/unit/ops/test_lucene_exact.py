"""The index gives the hits Elasticsearch gave for elastic-recheck's queries.

Each case states what Lucene's StandardAnalyzer / classic QueryParser (with
Elasticsearch's ``query_string`` settings) does, and checks rackpool does the same:
tokens first, then whole queries against an index, then every real elastic-recheck
query file (read from ``../shared/data/elastic-recheck`` beside the repository).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rackpool.ops.analysis import text_tokens
from rackpool.ops.errors import QueryTooCostly
from rackpool.ops.index import LogDoc
from rackpool.ops.index.sqlite import MAX_WILDCARD_TERMS, SqliteIndex
from rackpool.ops.query import parse
from rackpool.ops.signatures import load_signature, load_signatures

T0 = 1_700_000_000.0


def _recheck_dir() -> Path:
    """The shared elastic-recheck data: $RACKPOOL_ELASTIC_RECHECK, else ``../shared`` beside
    this checkout (or beside the main checkout, for a worktree or clone next to it)."""
    if os.environ.get("RACKPOOL_ELASTIC_RECHECK"):
        return Path(os.environ["RACKPOOL_ELASTIC_RECHECK"])
    repo = Path(__file__).resolve().parents[3]
    candidates = [repo.parent / "shared", Path("/work/shared")]
    for shared in candidates:
        if (shared / "data" / "elastic-recheck").is_dir():
            return shared / "data" / "elastic-recheck"
    return candidates[0] / "data" / "elastic-recheck"


RECHECK = _recheck_dir()


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        # UAX#29: a segment of only underscores (ExtendNumLet) is no token; with a letter it is
        ("foo ___ bar_baz __init__ _a", ["foo", "bar_baz", "__init__", "_a"]),
        ("a__.b", ["a__", "b"]),  # '.' joins letters only, and '_' is no letter
        # MidLetter / MidNumLet / MidNum joiners
        ("don't l·l nova.compute a:b", ["don't", "l·l", "nova.compute", "a:b"]),
        ("10.0.0.5 1,000 1;2 1:2 a.1", ["10.0.0.5", "1,000", "1;2", "1", "2", "a", "1"]),
        ("Timed-out 8f2c/foo", ["timed", "out", "8f2c", "foo"]),
        # combining marks and format characters stay inside the word
        ("e\u0301te", ["e\u0301te"]),
        ("soft\u00adhyphen", ["soft\u00adhyphen"]),
        # each ideograph and each hiragana a token; a katakana run one token
        (
            "你好世界 ひらがな カタカナ",
            ["你", "好", "世", "界", "ひ", "ら", "が", "な", "カタカナ"],
        ),
        ("abc你好", ["abc", "你", "好"]),
        # emoji: one token each, with modifiers, ZWJ sequences and flags kept whole
        (
            "ok 😀 👍🏽 👨\u200d👩\u200d👧 🇫🇷!",
            ["ok", "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷"],
        ),
        # lower-cased per character as Java does; no stop words
        ("ΟΔΟΣ İstanbul The AND a", ["οδοσ", "istanbul", "the", "and", "a"]),
    ],
)
def test_standard_analyzer_tokens(text: str, tokens: list[str]) -> None:
    assert text_tokens(text) == tokens


def test_tokens_longer_than_255_are_split() -> None:
    assert [len(t) for t in text_tokens("x" * 600 + " y")] == [255, 255, 90, 1]
    assert [len(t) for t in text_tokens("é" * 300)] == [255, 45]


CORPUS = [
    ("hy", "nova-compute started", {"build_name": "gate-swift-python26"}),
    ("nova", "nova scheduler ready", {"build_name": "gate-nova-pypy"}),
    ("compute", "compute node up", {"filename": "logs/screen-c-vol.txt"}),
    ("under", "value ___ missing", {"filename": "logs/old/screen-n-cpu.txt"}),
    ("cjk", "错误 实例", {"build_name": "check-tempest"}),
    ("long", "z" * 300, {}),
    ("star", "literal a*b here", {}),
    ("test", "test tent text", {}),
]


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SqliteIndex]:
    ix = SqliteIndex(tmp_path / "ix")
    ix.add(
        LogDoc(T0 + i, "c", i, {"message": msg, "name": name, **fields})
        for i, (name, msg, fields) in enumerate(CORPUS)
    )
    yield ix
    ix.close()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # an unquoted term of several tokens is their OR (auto_generate_phrase_queries off)
        ("nova-compute", {"hy", "nova", "compute"}),
        ('"nova-compute"', {"hy"}),
        ("message:nova-compute AND started", {"hy"}),
        # classic precedence: AND binds its neighbours, OR leaves them optional
        ("nova OR compute AND node", {"compute"}),  # nova +compute +node
        ("nova AND scheduler OR started", {"nova"}),  # +nova +scheduler started
        ("started OR nova AND NOT scheduler", {"hy"}),  # started +nova -scheduler
        # empty phrases and token-less terms drop out of their group
        ('message:"" OR nova', {"nova", "hy"}),
        ('message:"" AND nova', {"nova", "hy"}),
        ('message:""', set()),
        ("message:___", set()),  # only underscores: no token, no hits
        # only-NOT groups mean "everything except", at any depth (Elasticsearch)
        ("NOT nova", {"compute", "under", "cjk", "long", "star", "test"}),
        ("compute AND (NOT node)", {"hy"}),
        ("node OR (NOT nova AND NOT test AND NOT z*)", {"compute", "under", "cjk", "star"}),
        ("(-nova) AND (-(tent OR literal OR z*))", {"compute", "under", "cjk"}),
        # \uXXXX escapes
        (r"\u006eova AND scheduler", {"nova"}),
        (r'"\u9519\u8bef"', {"cjk"}),
        ("错", {"cjk"}),
        # wildcards: leading, inner, ?, on text (lower-cased) and keyword fields
        ("build_name:*-swift-python*", {"hy"}),
        ("build_name:gate-*-pypy", {"nova"}),
        ("filename:logs*screen-c-vol.txt", {"compute"}),
        ("filename:logs*screen-?-cpu.txt", {"under"}),
        ("*heduler", {"nova"}),
        ("NOVA*ler OR Te?t", {"test"}),  # nova*ler matches no single token; te?t: test, text
        ("te?t", {"test"}),
        ("*", {n for n, _, _ in CORPUS}),
        (r"a\*b", {"star"}),  # a literal star: the tokens a, b (OR)
        # tokens over 255 characters are split
        ("z" * 255, {"long"}),
    ],
)
def test_lucene_semantics(index: SqliteIndex, query: str, expected: set[str]) -> None:
    page = index.search(parse(query), limit=100)
    assert {h.fields["name"] for h in page.hits} == expected
    assert index.count(parse(query)) == len(expected)


def test_wildcard_cost_is_bounded(tmp_path: Path) -> None:
    ix = SqliteIndex(tmp_path / "ix")
    n = MAX_WILDCARD_TERMS + 10
    ix.add(LogDoc(T0, "s", i, {"message": f"word{i}"}) for i in range(n))
    assert ix.count(parse("word10*")) == 1 + 10 + 34  # word10, word100-109, word1000-1033
    assert ix.count(parse("w?rd10?3")) == 4  # word1003, word1013, word1023, word1033
    with pytest.raises(QueryTooCostly, match="matches more than 1024 terms"):
        ix.count(parse("*ord*"))
    ix.close()


def test_every_elastic_recheck_query_loads() -> None:
    assert RECHECK.is_dir(), f"{RECHECK} is missing: the shared elastic-recheck data"
    current = load_signatures([RECHECK / "queries"])
    retired = load_signatures([RECHECK / "queries-retired"])
    assert len(current) == 91 and len(retired) == 875


def test_elastic_recheck_keys_are_kept() -> None:
    sig = load_signature(RECHECK / "queries-retired" / "1540452.yaml")
    assert sig.test_ids == (
        "magnum.tests.functional.api.v1.test_bay.BayTest.test_create_list_and_delete_bays",
    )
    sig = load_signature(RECHECK / "queries-retired" / "1259907.yaml")
    assert sig.resolved_at == "Mon Jan  6 13:20:28 PST 2014"
