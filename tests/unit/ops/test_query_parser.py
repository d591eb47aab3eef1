"""The Lucene subset: operators, Lucene's classic boolean logic, phrases, wildcards, errors."""

from __future__ import annotations

import pytest

from rackpool.ops.errors import QuerySyntaxError
from rackpool.ops.query import (
    Bool,
    Clause,
    MatchAll,
    Occur,
    Phrase,
    Prefix,
    Term,
    Wildcard,
    parse,
)

M, S, N = Occur.MUST, Occur.SHOULD, Occur.MUST_NOT


def t(text: str, field: str = "message") -> Term:
    return Term(field, text)


def b(*clauses: tuple[Occur, object], top: bool = True) -> Bool:
    return Bool(tuple(Clause(o, q) for o, q in clauses), top=top)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("foo", t("foo")),
        ("tags:console", t("console", "tags")),
        ('message:"Connection reset by peer"', Phrase("message", "Connection reset by peer")),
        ('"bare phrase"', Phrase("message", "bare phrase")),
        ("a AND b", b((M, t("a")), (M, t("b")))),
        ("a && b", b((M, t("a")), (M, t("b")))),
        ("a OR b", b((S, t("a")), (S, t("b")))),
        ("a || b", b((S, t("a")), (S, t("b")))),
        ("a b", b((S, t("a")), (S, t("b")))),  # default operator OR
        ("NOT a", b((N, t("a")))),
        ("!a", b((N, t("a")))),
        ("-a", b((N, t("a")))),
        ("+a b", b((M, t("a")), (S, t("b")))),
        ("a AND NOT b", b((M, t("a")), (N, t("b")))),
        ("a -b", b((S, t("a")), (N, t("b")))),
        # Lucene's classic parser: AND marks both neighbours required, OR leaves them optional.
        ("a AND b OR c", b((M, t("a")), (M, t("b")), (S, t("c")))),
        ("a OR b AND c", b((S, t("a")), (M, t("b")), (M, t("c")))),
        ("a OR NOT b", b((S, t("a")), (N, t("b")))),
        ("NOT a AND b", b((N, t("a")), (M, t("b")))),
        (
            "(a OR b) AND c",
            b((M, Bool((Clause(S, t("a")), Clause(S, t("b"))))), (M, t("c"))),
        ),
        ("((a))", t("a")),
        ("tags:(x OR y*)", b((S, t("x", "tags")), (S, Prefix("tags", "y")))),
        ("nova.comp*", Prefix("message", "nova.comp")),
        ("build_name:gate-*", Prefix("build_name", "gate-")),
        ("*", MatchAll()),
        ("*:*", MatchAll()),
        ("tags:*", Prefix("tags", "")),
        (r"message:foo\:bar", t("foo:bar")),
        (r"a\*b", t("a*b")),
        (r"message:\-x", t("-x")),
        (r'"say \"hi\""', Phrase("message", 'say "hi"')),
        ("and or", b((S, t("and")), (S, t("or")))),  # lower-case words are terms
        ("foo-bar", t("foo-bar")),
        ("\\AND", t("AND")),
        # wildcards anywhere; \uXXXX escapes (Lucene's discardEscapeChar)
        ("fo?o", Wildcard("message", "fo?o")),
        ("*foo", Wildcard("message", "*foo")),
        ("build_name:*-swift-python*", Wildcard("build_name", "*-swift-python*")),
        ("filename:logs*screen-c-vol.txt", Wildcard("filename", "logs*screen-c-vol.txt")),
        (r"a\*b*", Wildcard("message", r"a\*b*")),
        (r"x\u0041y", t("xAy")),
        (r'"\u00e9t\u00E9"', Phrase("message", "été")),
        (r"a\u002a", t("a*")),  # an escaped star is a literal one
        ('""', Phrase("message", "")),
    ],
)
def test_parse(query: str, tree: object) -> None:
    assert parse(query) == tree


@pytest.mark.parametrize(
    ("query", "position", "words"),
    [
        ("", 0, "empty query"),
        ('message:"unterminated', 8, "unterminated phrase"),
        ("(a OR b", 0, "missing ')'"),
        ("a OR b)", 6, "unbalanced ')'"),
        ("a AND", 5, "expected a term, phrase or"),
        ("AND a", 0, "needs a clause on its left"),
        ("foo~2", 3, "fuzzy"),
        ('"a b"~3', 5, "proximity"),
        ("foo^2", 3, "boost"),
        ("date:[1 TO 2]", 5, "range"),
        ("x\\u00", 1, "truncated unicode escape"),
        ("x\\u00zz", 1, "non-hex"),
        ("build*_name:x", 5, "wildcards in field names"),
        ("/regex/", 0, "regular expressions"),
        (":foo", 0, "field name"),
        ("tags:", 5, "after 'tags:'"),
        ("a - b", 2, "after '-'"),
        ("()", 0, "empty group"),
        ("x\\", 1, "escape"),
    ],
)
def test_errors_name_the_position(query: str, position: int, words: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse(query)
    assert info.value.position == position
    assert words in str(info.value)
    assert "^" in str(info.value)  # points at the spot
