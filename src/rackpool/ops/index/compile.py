"""Translate a parsed query into an SQLite FTS5 MATCH expression.

Boolean queries are evaluated as set algebra over documents. A result is a
:class:`DocSet`: an FTS5 expression, possibly complemented ("every document except"),
or the empty set. FTS5 cannot express a complement on its own, so the caller turns a
complemented set into ``rowid NOT IN (… MATCH …)``.

Semantics are Lucene's with Elasticsearch's ``query_string`` settings: an unquoted term
that analyses to several tokens is their disjunction (``auto_generate_phrase_queries``
false), a boolean group of only prohibited clauses means "everything except"
(``fixNegativeQueryIfNeeded``) at any depth, and a :class:`Wildcard` is expanded to
the index terms it matches by the caller's :data:`Expander` (Lucene rewrites a
wildcard query the same way), lower-cased on text fields (``lowercase_expanded_terms``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rackpool.ops import analysis
from rackpool.ops.query import Bool, MatchAll, Node, Occur, Phrase, Prefix, Term, Wildcard


@dataclass(frozen=True)
class DocSet:
    expr: str | None  # None: the empty set (before complement)
    negated: bool = False

    @property
    def is_empty(self) -> bool:
        return self.expr is None and not self.negated

    @property
    def is_all(self) -> bool:
        return self.expr is None and self.negated


EMPTY = DocSet(None)
ALL = DocSet(None, negated=True)


def _and(a: DocSet, b: DocSet) -> DocSet:
    if a.is_empty or b.is_empty:
        return EMPTY
    if a.is_all:
        return b
    if b.is_all:
        return a
    if a.negated and b.negated:
        return DocSet(f"({a.expr} OR {b.expr})", negated=True)
    if a.negated:
        a, b = b, a
    if b.negated:
        return DocSet(f"({a.expr} NOT {b.expr})")
    return DocSet(f"({a.expr} AND {b.expr})")


def _or(a: DocSet, b: DocSet) -> DocSet:
    if a.is_all or b.is_all:
        return ALL
    if a.is_empty:
        return b
    if b.is_empty:
        return a
    if a.negated and b.negated:
        return DocSet(f"({a.expr} AND {b.expr})", negated=True)
    if a.negated:
        a, b = b, a
    if b.negated:
        return DocSet(f"({b.expr} NOT {a.expr})", negated=True)
    return DocSet(f"({a.expr} OR {b.expr})")


def _not(a: DocSet) -> DocSet:
    return DocSet(a.expr, negated=not a.negated)


def _phrase(column: str, tokens: list[str], prefix: bool = False) -> DocSet:
    return DocSet(f'{column} : "{" ".join(tokens)}"' + (" *" if prefix else ""))


# (column, the index form of the pattern's literal head, the pattern) -> index terms.
Expander = Callable[[str, str, Wildcard], list[str]]


def _wildcard(node: Wildcard, expand: Expander | None) -> DocSet:
    if expand is None:
        raise ValueError("a wildcard query needs an expander (the index's vocabulary)")
    text = node.field in analysis.TEXT_FIELDS
    pattern = node.pattern.lower() if text else node.pattern
    literal = []
    for i, ch in enumerate(pattern):
        if ch in "*?" and (i == 0 or pattern[i - 1] != "\\"):
            break
        if ch != "\\" or (i and pattern[i - 1] == "\\"):
            literal.append(ch)
    head = "".join(literal)
    if text:
        column, start = "body", analysis.encode_text_token(head)
    else:
        column, start = "kw", analysis.encode_keyword(node.field, head)
    terms = expand(column, start, Wildcard(node.field, pattern))
    if not terms:
        return EMPTY
    return DocSet(f"{column} : (" + " OR ".join(f'"{t}"' for t in terms) + ")")


def _leaf(node: Term | Phrase | Prefix) -> DocSet | None:
    if node.field in analysis.TEXT_FIELDS:
        if isinstance(node, Prefix):
            if not node.prefix:
                return ALL
            if not analysis.is_partial_token(node.prefix.lower()):
                return EMPTY
            return _phrase("body", [analysis.encode_text_token(node.prefix)], prefix=True)
        tokens = analysis.encode_text(node.text).split()
        if not tokens:
            return None
        if isinstance(node, Term) and len(tokens) > 1:  # nova-compute: nova OR compute
            result = EMPTY
            for token in tokens:
                result = _or(result, _phrase("body", [token]))
            return result
        return _phrase("body", tokens)
    if isinstance(node, Prefix):
        return _phrase("kw", [analysis.encode_keyword(node.field, node.prefix)], prefix=True)
    if not node.text:
        return None
    return _phrase("kw", [analysis.encode_keyword(node.field, node.text)])


def compile_query(node: Node, expand: Expander | None = None) -> DocSet:
    """The set of documents ``node`` matches, as FTS5 expressions."""
    result = _compile(node, expand)
    return EMPTY if result is None else result


def has_wildcards(node: Node) -> bool:
    """Whether compiling ``node`` needs an index's vocabulary (so once per partition)."""
    if isinstance(node, Wildcard):
        return True
    return isinstance(node, Bool) and any(has_wildcards(c.query) for c in node.clauses)


def _compile(node: Node, expand: Expander | None) -> DocSet | None:
    """None means the clause vanished (e.g. a term with no tokens), as in Lucene."""
    if isinstance(node, MatchAll):
        return ALL
    if isinstance(node, Bool):
        return _bool(node, expand)
    if isinstance(node, Wildcard):
        return _wildcard(node, expand)
    return _leaf(node)


def _bool(node: Bool, expand: Expander | None) -> DocSet | None:
    parts: dict[Occur, list[DocSet]] = {o: [] for o in Occur}
    for clause in node.clauses:
        compiled = _compile(clause.query, expand)
        if compiled is not None:
            parts[clause.occur].append(compiled)
    musts, shoulds, nots = parts[Occur.MUST], parts[Occur.SHOULD], parts[Occur.MUST_NOT]
    if not (musts or shoulds or nots):
        return None
    if musts:
        result = musts[0]
        for m in musts[1:]:
            result = _and(result, m)
    elif shoulds:
        result = shoulds[0]
        for s in shoulds[1:]:
            result = _or(result, s)
    else:  # only prohibited clauses: everything except them (Elasticsearch)
        result = ALL
    for n in nots:
        result = _and(result, _not(n))
    return result
