"""How documents and query terms become index tokens, the same way on both sides.

Text fields (``message``) are split as Lucene's StandardAnalyzer splits them (Unicode
word boundaries, UAX #29, see :mod:`rackpool.ops.wordbreak`): runs of letters/digits/
underscore, joined across ``.`` and ``'`` between letters or digits, ``:`` between
letters, ``,``/``;`` between digits — so ``nova.compute.manager`` and ``10.0.0.5`` stay
one token — then lower-cased, no stop words. ASCII text takes a fast path here that
gives the same tokens; other text goes through :func:`wordbreak.words`. Every other field is a keyword: matched exactly and case-sensitively on
its whole value (lists such as ``tags`` match on any element).

Index tokens contain only ``[a-z0-9]``, other letters/digits and Unicode private-use
characters, separated by ASCII white space, so SQLite's ``ascii`` and ``unicode61``
tokenizers both see each of them as exactly one token.

``level`` and ``logger`` are also indexed (and shown) as ``loglevel`` and ``module``, the
names elastic-recheck queries use, unless a document has those fields itself. They are
not stored twice: :func:`shown_fields` adds them back when a document is read.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rackpool.ops import wordbreak

TEXT_FIELDS = frozenset({"message"})
# Field names elastic-recheck queries use for what our JSON lines call level / logger.
ALIASES = {"level": "loglevel", "logger": "module"}
# Fields stored with a document but not indexed as keywords.
UNINDEXED_FIELDS = frozenset({"ts", "message", "exception"})
_NOT_KEYWORDS = TEXT_FIELDS | UNINDEXED_FIELDS
MAX_KEYWORD_LENGTH = 256  # longer values are stored, not indexed (like ES ignore_above)

_WORD = re.compile(r"\w+(?:(?:(?<=[^\W\d_])[.':](?=[^\W\d_])|(?<=\d)[.',;](?=\d))\w+)*")
_PARTIAL_TOKEN = re.compile(r"[\w.':,;]*")
# In the index form of ASCII text: a token of underscores only (no token in Lucene), and
# a token longer than Lucene's 255 characters.
_UNDERSCORES_ONLY = re.compile("(?<![^\n])\ue15f+(?![^\n])")
_LONG_TOKEN = re.compile(f"[^\n]{{{wordbreak.MAX_TOKEN_LENGTH + 1}}}")
_FIELD_SEP = "\ue000"
_UPPER = "\ue001"
_WIDE = "\ue002"


class _Escapes(dict[int, str]):
    """str.translate table: a-z, 0-9 and non-ASCII word characters stay, the rest is escaped."""

    def __init__(self, keep_case: bool) -> None:
        super().__init__()
        self.keep_case = keep_case

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        if "a" <= ch <= "z" or "0" <= ch <= "9" or ch == "\n":
            out = ch
        elif self.keep_case and "A" <= ch <= "Z":
            out = _UPPER + ch.lower()
        elif code < 0x80 or not ch.isalnum():
            out = chr(0xE100 + code) if code < 0x1000 else f"{_WIDE}{code:06x}"
        elif self.keep_case and ch != ch.lower():
            out = _UPPER + ch.lower()
        else:
            out = ch
        self[code] = out
        return out


_TEXT_ESCAPES = _Escapes(keep_case=False)
_KEYWORD_ESCAPES = _Escapes(keep_case=True)


class _BodyEscapes(dict[int, str]):
    """str.translate table for text without joiners: ``\\w`` stays, the rest separates.

    Equal to tokenising with ``_WORD`` and escaping with ``_TEXT_ESCAPES`` when the text
    has none of ``.':,;`` (then a token is a run of ``\\w``), in one pass; ASCII text
    without ``_`` takes ``str.translate``'s fast path.
    """

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        if "a" <= ch <= "z" or "0" <= ch <= "9" or (code >= 0x80 and ch.isalnum()):
            out = ch
        elif ch == "_":
            out = _TEXT_ESCAPES[code]
        else:
            out = "\n"
        self[code] = out
        return out


_BODY_ESCAPES = _BodyEscapes()
_JOINER = re.compile(r"[.':,;]")


def text_tokens(text: str) -> list[str]:
    """Lucene StandardAnalyzer tokens of free text, lower-cased (readable form)."""
    if not text.isascii():
        return wordbreak.words(text)
    low = text.lower()
    tokens = _WORD.findall(low)
    if "_" in low:
        tokens = [t for t in tokens if t.strip("_")]
    if len(low) > wordbreak.MAX_TOKEN_LENGTH:
        tokens = [p for t in tokens for p in wordbreak.split_long(t)]
    return tokens


def encode_text(text: str) -> str:
    """The index form of free text: its tokens, separated by line breaks."""
    if not text.isascii():
        return "\n".join(wordbreak.words(text)).translate(_TEXT_ESCAPES)
    low = text.lower()
    if _JOINER.search(low) is None:
        out = low.translate(_BODY_ESCAPES)
    else:
        out = "\n".join(_WORD.findall(low)).translate(_TEXT_ESCAPES)
    if "_" in low:
        out = _UNDERSCORES_ONLY.sub("", out)
    if len(out) > wordbreak.MAX_TOKEN_LENGTH and _LONG_TOKEN.search(out) is not None:
        out = "\n".join(text_tokens(text)).translate(_TEXT_ESCAPES)
    return out


def encode_text_token(token: str) -> str:
    return token.lower().translate(_TEXT_ESCAPES)


def is_partial_token(prefix: str) -> bool:
    """Whether a wildcard prefix could start a text token (else it can match nothing)."""
    return _PARTIAL_TOKEN.fullmatch(prefix) is not None


def encode_keyword(field: str, value: str) -> str:
    """One index token for ``field`` having exactly ``value``."""
    return _field_prefix(field) + value.translate(_KEYWORD_ESCAPES)


def keyword_values(value: Any) -> Iterable[str]:
    """The indexable string values of a field (lists index each element)."""
    if isinstance(value, str):
        if value and len(value) <= MAX_KEYWORD_LENGTH:
            yield value
    elif isinstance(value, bool):
        yield "true" if value else "false"
    elif isinstance(value, (int, float)):
        yield str(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            if not isinstance(item, (list, tuple, dict)):
                yield from keyword_values(item)


@functools.lru_cache(maxsize=4096)
def _field_prefix(field: str) -> str:
    return field.translate(_KEYWORD_ESCAPES) + _FIELD_SEP


def encode_keywords(fields: Mapping[str, Any]) -> str:
    """The index form of every keyword field of a document (and aliases), space separated."""
    return _encode_keywords(fields)


class KeywordEncoder:
    """:func:`encode_keywords` for many documents: remembers the tokens of values it saw.

    Most keyword values repeat from line to line (level, logger, region, host, build
    name), so a document's tokens are mostly dictionary look-ups; for ``level`` and
    ``logger`` one look-up gives the alias's token too. A field whose distinct values
    overflow ``per_field`` (an id) is not remembered any more; the table of field
    names starts afresh when it overflows.
    """

    def __init__(self, per_field: int = 4096) -> None:
        self.per_field = per_field
        # field -> value -> token(s); None for fields that are not keywords
        self._tokens: dict[str, dict[str, str] | None] = {}

    def encode(self, fields: Mapping[str, Any]) -> str:
        if not _ALIASED.isdisjoint(fields):  # a document that has an alias field itself
            return _encode_keywords(fields)
        out = []
        known = self._tokens
        for name, value in fields.items():
            tokens = known.get(name, _UNSEEN)
            if tokens is _UNSEEN:
                if len(known) >= self.per_field:
                    known.clear()
                tokens = known[name] = None if name in _NOT_KEYWORDS else {}
            if tokens is None:
                continue
            if type(value) is str:  # the common case, kept fast
                token = tokens.get(value)
                if token is None:
                    if not value or len(value) > MAX_KEYWORD_LENGTH:
                        continue
                    token = _value_tokens(name, value)
                    if tokens is not _FORGET:
                        if len(tokens) < self.per_field:
                            tokens[value] = token
                        elif name in ALIASES:
                            tokens.clear()
                        else:
                            known[name] = _FORGET
                out.append(token)
            else:
                out += (_value_tokens(name, v) for v in keyword_values(value))
        return " ".join(out)


_UNSEEN: dict[str, str] = {}  # sentinel: a field KeywordEncoder has not met yet
_FORGET: dict[str, str] = {}  # never written: the values of a field with too many to keep


def _value_tokens(name: str, value: str) -> str:
    """The token for ``name`` having ``value``, and its alias's if it has one."""
    escaped = value.translate(_KEYWORD_ESCAPES)
    alias = ALIASES.get(name)
    if alias is None:
        return _field_prefix(name) + escaped
    return f"{_field_prefix(name)}{escaped} {_field_prefix(alias)}{escaped}"


def _encode_keywords(fields: Mapping[str, Any]) -> str:
    out = [
        _field_prefix(name) + v.translate(_KEYWORD_ESCAPES)
        for name, value in fields.items()
        if name not in _NOT_KEYWORDS
        for v in keyword_values(value)
    ]
    out += (
        _field_prefix(alias) + v.translate(_KEYWORD_ESCAPES)
        for name, alias in ALIASES.items()
        if name in fields and alias not in fields
        for v in keyword_values(fields[name])
    )
    return " ".join(out)


_ALIASED = frozenset(ALIASES.values())


def shown_fields(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored document as searches show it: aliases added, ``message`` always present."""
    for name, alias in ALIASES.items():
        if name in stored and alias not in stored:
            stored[alias] = stored[name]
    if "message" not in stored:
        stored["message"] = ""
    return stored


_ESCAPED = re.compile("\ue001(.)|\ue002([0-9a-f]{6})|([\ue100-\uf0ff])", re.DOTALL)


def decode_token(token: str) -> str:
    """The text or keyword value an index token stands for (a keyword's field dropped)."""
    _, sep, value = token.partition(_FIELD_SEP)
    return _ESCAPED.sub(_unescape, value if sep else token)


def _unescape(m: re.Match[str]) -> str:
    upper, wide, narrow = m.groups()
    if upper is not None:
        return upper.upper()
    if wide is not None:
        return chr(int(wide, 16))
    return chr(ord(narrow) - 0xE100)


def wildcard_matcher(pattern: str) -> Callable[[str], bool]:
    """A test of a whole value against a Lucene wildcard pattern (``*``, ``?``, ``\\``).

    Linear in the value per star at worst (greedy match, back up to the last ``*``),
    never a regular expression: the pattern is user input.
    """
    items: list[str | None] = []  # a literal character, "*" -> None, "?" -> ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            items.append(pattern[i + 1])
            i += 2
            continue
        items.append(None if ch == "*" else "" if ch == "?" else ch)
        i += 1

    def match(value: str) -> bool:
        p = v = 0
        star, mark = -1, 0
        while v < len(value):
            if p < len(items) and items[p] is not None and items[p] in ("", value[v]):
                p += 1
                v += 1
            elif p < len(items) and items[p] is None:
                star, mark = p, v
                p += 1
            elif star >= 0:
                p, mark = star + 1, mark + 1
                v = mark
            else:
                return False
        return all(item is None for item in items[p:])

    return match
