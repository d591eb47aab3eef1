"""Parse the Lucene query subset elastic-recheck signatures use.

Supported: ``field:"phrase"``, ``field:term``, bare terms (default field ``message``),
``AND``/``&&``, ``OR``/``||``, ``NOT``/``!``/``-``, ``+``, parentheses, ``field:(...)``
groups, trailing ``*`` wildcards, ``*`` / ``*:*`` (everything) and ``\\`` escapes.
Anything else (fuzzy ``~``, boosts ``^``, ranges, regexes, ``?`` or leading wildcards)
is rejected with its position.

Boolean logic follows Lucene's classic QueryParser with the default OR operator, not
textbook precedence: ``AND`` makes the clauses on both sides required, ``OR`` leaves
them optional, ``NOT``/``-`` prohibits the next clause. So ``a AND b OR c`` means
``+a +b c`` (``a AND b``), and ``a OR NOT b`` means ``a -b``. A boolean group that has
only prohibited clauses matches nothing, except at the top level where — as in
Elasticsearch's ``query_string`` — it means "everything except".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rackpool.ops.errors import QuerySyntaxError

DEFAULT_FIELD = "message"


class Occur(StrEnum):
    MUST = "must"
    SHOULD = "should"
    MUST_NOT = "must_not"


@dataclass(frozen=True)
class Term:
    field: str
    text: str


@dataclass(frozen=True)
class Phrase:
    field: str
    text: str


@dataclass(frozen=True)
class Prefix:
    field: str
    prefix: str


@dataclass(frozen=True)
class MatchAll:
    pass


@dataclass(frozen=True)
class Clause:
    occur: Occur
    query: Node


@dataclass(frozen=True)
class Bool:
    clauses: tuple[Clause, ...]
    top: bool = False


Node = Term | Phrase | Prefix | MatchAll | Bool


@dataclass(frozen=True)
class Token:
    kind: str  # LP RP AND OR NOT PLUS MINUS TERM PHRASE FIELD
    text: str
    pos: int
    wildcard: bool = False


_SPECIAL = set('()":')
_UNSUPPORTED = {
    "~": "fuzzy and proximity queries (~) are not supported",
    "^": "boosts (^) are not supported",
    "[": "range queries ([ ]) are not supported",
    "]": "range queries ([ ]) are not supported",
    "{": "range queries ({ }) are not supported",
    "}": "range queries ({ }) are not supported",
    "?": "single-character wildcards (?) are not supported; use a trailing *",
    "/": "regular expressions (/.../) are not supported",
}


def tokenize(query: str) -> list[Token]:
    """Split a query into tokens, rejecting unsupported syntax with its position."""
    out: list[Token] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            out.append(Token("LP" if ch == "(" else "RP", ch, i))
            i += 1
        elif ch == '"':
            i = _phrase(query, i, out)
        elif query.startswith(("&&", "||"), i):
            out.append(Token("AND" if ch == "&" else "OR", ch * 2, i))
            i += 2
        elif ch in "+-!":
            if i + 1 >= n or query[i + 1].isspace():
                raise QuerySyntaxError(f"expected a term after {ch!r}", query, i)
            out.append(Token({"+": "PLUS", "-": "MINUS", "!": "NOT"}[ch], ch, i))
            i += 1
        elif ch == ":":
            raise QuerySyntaxError("expected a field name before ':'", query, i)
        else:
            i = _term(query, i, out)
    return out


def _phrase(query: str, start: int, out: list[Token]) -> int:
    i, buf = start + 1, []
    while i < len(query):
        ch = query[i]
        if ch == "\\" and i + 1 < len(query):
            buf.append(query[i + 1])
            i += 2
        elif ch == '"':
            out.append(Token("PHRASE", "".join(buf), start))
            if i + 1 < len(query) and query[i + 1] in _UNSUPPORTED:
                raise QuerySyntaxError(_UNSUPPORTED[query[i + 1]], query, i + 1)
            return i + 1
        else:
            buf.append(ch)
            i += 1
    raise QuerySyntaxError("unterminated phrase (missing closing '\"')", query, start)


def _term(query: str, start: int, out: list[Token]) -> int:
    i, buf, star_at = start, [], -1
    while i < len(query):
        ch = query[i]
        if ch.isspace() or ch in _SPECIAL:
            break
        if ch == "\\":
            if i + 1 >= len(query):
                raise QuerySyntaxError("escape character '\\' at the end", query, i)
            buf.append(query[i + 1])
            i += 2
            continue
        if ch in _UNSUPPORTED:
            raise QuerySyntaxError(_UNSUPPORTED[ch], query, i)
        if star_at >= 0:
            raise QuerySyntaxError("only a trailing * wildcard is supported", query, star_at)
        if ch == "*":
            star_at = i
        else:
            buf.append(ch)
        i += 1
    text = "".join(buf)
    if i < len(query) and query[i] == ":":
        if star_at >= 0 and text:
            raise QuerySyntaxError("wildcards in field names are not supported", query, star_at)
        out.append(Token("FIELD", "*" if star_at >= 0 else text, start))
        return i + 1
    if text in ("AND", "OR", "NOT") and star_at < 0 and query[start] != "\\":
        out.append(Token(text, text, start))
    else:
        out.append(Token("TERM", text, start, wildcard=star_at >= 0))
    return i


class _Parser:
    def __init__(self, query: str, default_field: str) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.i = 0
        self.default_field = default_field

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def error(self, message: str, tok: Token | None) -> QuerySyntaxError:
        return QuerySyntaxError(message, self.query, tok.pos if tok else len(self.query))

    def parse(self) -> Node:
        if not self.tokens:
            raise self.error("empty query; use * to match everything", None)
        node = self.query_(self.default_field)
        tok = self.peek()
        if tok is not None:
            raise self.error("unbalanced ')'" if tok.kind == "RP" else "unexpected token", tok)
        if isinstance(node, Bool):
            return Bool(node.clauses, top=True)
        return node

    def query_(self, field: str) -> Node:
        clauses: list[Clause] = []
        first: Node | None = None
        conj = ""
        while True:
            tok = self.peek()
            if tok is None or tok.kind == "RP":
                break
            if tok.kind in ("AND", "OR"):
                if not clauses and first is None:
                    raise self.error(f"{tok.kind} needs a clause on its left", tok)
                conj = tok.kind
                self.i += 1
                tok = self.peek()
            mods = ""
            if tok is not None and tok.kind in ("NOT", "MINUS", "PLUS"):
                mods = "REQ" if tok.kind == "PLUS" else "NOT"
                self.i += 1
            node = self.clause(field)
            if not clauses and first is None and not mods and not conj:
                first = node
            _add_clause(clauses, conj, mods, node)
            conj = ""
        if conj:
            raise self.error(f"{conj} needs a clause on its right", self.peek())
        if not clauses:
            raise self.error("expected a term, phrase or '('", self.peek())
        if len(clauses) == 1 and first is not None:
            return first
        return Bool(tuple(clauses))

    def clause(self, field: str) -> Node:
        tok = self.peek()
        if tok is None:
            raise self.error("expected a term, phrase or '(' at the end", None)
        if tok.kind == "TERM" and tok.wildcard and not tok.text:
            self.i += 1
            return MatchAll()
        if tok.kind == "FIELD":
            self.i += 1
            field = tok.text
            tok = self.peek()
            if tok is None or tok.kind not in ("TERM", "PHRASE", "LP"):
                raise self.error(f"expected a term, phrase or '(' after '{field}:'", tok)
        self.i += 1
        if tok.kind == "LP":
            if self.peek() is None or self.peek().kind == "RP":  # type: ignore[union-attr]
                raise self.error("empty group '()'", tok)
            node = self.query_(field)
            close = self.peek()
            if close is None or close.kind != "RP":
                raise self.error("missing ')' for the '(' here", tok)
            self.i += 1
            return node
        if tok.kind == "PHRASE":
            return Phrase(field, tok.text)
        if tok.kind == "TERM":
            if field == "*" and tok.wildcard and not tok.text:
                return MatchAll()
            if field == "*":
                raise self.error("'*:' only matches everything as '*:*'", tok)
            return Prefix(field, tok.text) if tok.wildcard else Term(field, tok.text)
        raise self.error("expected a term, phrase or '('", tok)


def _add_clause(clauses: list[Clause], conj: str, mods: str, node: Node) -> None:
    """Lucene QueryParserBase.addClause with the default OR operator."""
    if clauses and conj == "AND" and clauses[-1].occur != Occur.MUST_NOT:
        clauses[-1] = Clause(Occur.MUST, clauses[-1].query)
    prohibited = mods == "NOT"
    required = mods == "REQ" or (conj == "AND" and not prohibited)
    if prohibited:
        occur = Occur.MUST_NOT
    elif required:
        occur = Occur.MUST
    else:
        occur = Occur.SHOULD
    clauses.append(Clause(occur, node))


def parse(query: str, default_field: str = DEFAULT_FIELD) -> Node:
    """Parse ``query`` into a tree of Term/Phrase/Prefix/MatchAll/Bool nodes."""
    return _Parser(query, default_field).parse()


def conjoin(*nodes: Node) -> Node:
    """``a AND b AND …`` as a tree, e.g. a signature restricted to one build."""
    return Bool(tuple(Clause(Occur.MUST, n) for n in nodes), top=True)
