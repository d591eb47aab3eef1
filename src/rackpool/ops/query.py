"""Parse the Lucene query subset elastic-recheck signatures use.

Supported: ``field:"phrase"``, ``field:term``, bare terms (default field ``message``),
``AND``/``&&``, ``OR``/``||``, ``NOT``/``!``/``-``, ``+``, parentheses, ``field:(...)``
groups, ``*`` and ``?`` wildcards anywhere in a term (a trailing ``*`` alone is a
:class:`Prefix`, anything else a :class:`Wildcard`), ``*`` / ``*:*`` (everything),
``\\`` escapes and ``\\uXXXX`` (a character by its code, as Lucene's
``discardEscapeChar``). ``-`` and ``+`` inside a term are part of it (``nova-compute``,
as Lucene's lexer); only at its start are they operators. Anything else (fuzzy ``~``,
boosts ``^``, ranges, regexes) is rejected with its position.

Boolean logic follows Lucene's classic QueryParser with the default OR operator, not
textbook precedence: ``AND`` makes the clauses on both sides required, ``OR`` leaves
them optional, ``NOT``/``-`` prohibits the next clause. So ``a AND b OR c`` means
``+a +b c`` (``a AND b``), and ``a OR NOT b`` means ``a -b``. A boolean group that has
only prohibited clauses means "everything except" at any depth, as Elasticsearch's
``query_string`` makes it (``Queries.fixNegativeQueryIfNeeded`` in its
``getBooleanQuery``): ``a OR (NOT b)`` is ``a`` or anything without ``b``.
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
class Wildcard:
    """``*`` (any run) and ``?`` (one character) anywhere; ``\\`` escapes a literal one."""

    field: str
    pattern: str


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


Node = Term | Phrase | Prefix | Wildcard | MatchAll | Bool


@dataclass(frozen=True)
class Token:
    kind: str  # LP RP AND OR NOT PLUS MINUS TERM PHRASE FIELD
    text: str
    pos: int
    wildcard: bool = False  # a TERM with ``*``/``?``: ``text`` is then the pattern, escapes kept


_SPECIAL = set('()":')
_UNSUPPORTED = {
    "~": "fuzzy and proximity queries (~) are not supported",
    "^": "boosts (^) are not supported",
    "[": "range queries ([ ]) are not supported",
    "]": "range queries ([ ]) are not supported",
    "{": "range queries ({ }) are not supported",
    "}": "range queries ({ }) are not supported",
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
    i, buf = start + 1, list[str]()
    while i < len(query):
        ch = query[i]
        if ch == "\\" and i + 1 < len(query):
            i = _escape(query, i, buf)
        elif ch == '"':
            out.append(Token("PHRASE", "".join(buf), start))
            if i + 1 < len(query) and query[i + 1] in _UNSUPPORTED:
                raise QuerySyntaxError(_UNSUPPORTED[query[i + 1]], query, i + 1)
            return i + 1
        else:
            buf.append(ch)
            i += 1
    raise QuerySyntaxError("unterminated phrase (missing closing '\"')", query, start)


def _escape(query: str, i: int, buf: list[str], keep: bool = False) -> int:
    """Read the escape at ``query[i]`` (a backslash) into ``buf``; returns the next index.

    ``keep``: a wildcard pattern keeps the backslash before a character it escapes, so
    ``\\*`` stays a literal star there.
    """
    if i + 1 >= len(query):
        raise QuerySyntaxError("escape character '\\' at the end", query, i)
    if query[i + 1] == "u":
        code = query[i + 2 : i + 6]
        if len(code) < 4:
            raise QuerySyntaxError("truncated unicode escape sequence (\\uXXXX)", query, i)
        if any(c not in "0123456789abcdefABCDEF" for c in code):
            raise QuerySyntaxError("non-hex character in unicode escape (\\uXXXX)", query, i)
        ch = chr(int(code, 16))
        buf.append("\\" + ch if keep and ch in "*?\\" else ch)
        return i + 6
    buf.append(query[i : i + 2] if keep and query[i + 1] in "*?\\" else query[i + 1])
    return i + 2


def _term(query: str, start: int, out: list[Token]) -> int:
    i, buf, wild_at = start, list[str](), -1
    plain: list[str] = []  # the term with escapes resolved (field names, keywords)
    while i < len(query):
        ch = query[i]
        if ch.isspace() or ch in _SPECIAL:
            break
        if ch == "\\":
            _escape(query, i, plain)
            i = _escape(query, i, buf, keep=True)
            continue
        if ch in _UNSUPPORTED:
            raise QuerySyntaxError(_UNSUPPORTED[ch], query, i)
        if ch in "*?" and wild_at < 0:
            wild_at = i
        buf.append(ch)
        plain.append(ch)
        i += 1
    text = "".join(plain)
    if i < len(query) and query[i] == ":":
        if wild_at >= 0 and "".join(buf) != "*":
            raise QuerySyntaxError("wildcards in field names are not supported", query, wild_at)
        out.append(Token("FIELD", "*" if wild_at >= 0 else text, start))
        return i + 1
    if text in ("AND", "OR", "NOT") and query[start] != "\\":
        out.append(Token(text, text, start))
    elif wild_at >= 0:
        out.append(Token("TERM", "".join(buf), start, wildcard=True))
    else:
        out.append(Token("TERM", text, start))
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
        if tok.kind == "TERM" and tok.wildcard and tok.text == "*":
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
            if field == "*" and tok.wildcard and tok.text == "*":
                return MatchAll()
            if field == "*":
                raise self.error("'*:' only matches everything as '*:*'", tok)
            if not tok.wildcard:
                return Term(field, tok.text)
            return _wildcard(field, tok.text)
        raise self.error("expected a term, phrase or '('", tok)


def _wildcard(field: str, pattern: str) -> Prefix | Wildcard:
    """A trailing ``*`` alone is a prefix query (fast in the index), the rest a pattern."""
    head = pattern[:-1]
    if pattern.endswith("*") and "*" not in head and "?" not in head:
        return Prefix(field, re_unescape(head))
    return Wildcard(field, pattern)


def re_unescape(pattern: str) -> str:
    """A wildcard pattern's literal text (``\\*`` -> ``*``)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            i += 1
        out.append(pattern[i])
        i += 1
    return "".join(out)


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
