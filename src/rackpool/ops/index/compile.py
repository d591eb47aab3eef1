"""Translate a parsed query into an SQLite FTS5 MATCH expression.

Boolean queries are evaluated as set algebra over documents. A result is a
:class:`DocSet`: an FTS5 expression, possibly complemented ("every document except"),
or the empty set. FTS5 cannot express a complement on its own, so the caller turns a
complemented set into ``rowid NOT IN (… MATCH …)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rackpool.ops import analysis
from rackpool.ops.query import Bool, MatchAll, Node, Occur, Phrase, Prefix, Term


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


def _leaf(node: Term | Phrase | Prefix) -> DocSet | None:
    if node.field in analysis.TEXT_FIELDS:
        if isinstance(node, Prefix):
            if not node.prefix:
                return ALL
            if not analysis.is_partial_token(node.prefix.lower()):
                return EMPTY
            return _phrase("body", [analysis.encode_text_token(node.prefix)], prefix=True)
        tokens = analysis.encode_text(node.text).split()
        return _phrase("body", tokens) if tokens else None
    if isinstance(node, Prefix):
        return _phrase("kw", [analysis.encode_keyword(node.field, node.prefix)], prefix=True)
    if not node.text:
        return None
    return _phrase("kw", [analysis.encode_keyword(node.field, node.text)])


def compile_query(node: Node) -> DocSet:
    """The set of documents ``node`` matches, as FTS5 expressions."""
    result = _compile(node)
    return EMPTY if result is None else result


def _compile(node: Node) -> DocSet | None:
    """None means the clause vanished (e.g. a term with no tokens), as in Lucene."""
    if isinstance(node, MatchAll):
        return ALL
    if isinstance(node, Bool):
        return _bool(node)
    return _leaf(node)


def _bool(node: Bool) -> DocSet | None:
    parts: dict[Occur, list[DocSet]] = {o: [] for o in Occur}
    for clause in node.clauses:
        compiled = _compile(clause.query)
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
    else:
        result = ALL if node.top else EMPTY
    for n in nots:
        result = _and(result, _not(n))
    return result
