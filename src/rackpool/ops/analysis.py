"""How documents and query terms become index tokens, the same way on both sides.

Text fields (``message``) are split like Lucene's StandardTokenizer (Unicode word
boundaries, UAX #29, simplified): runs of letters/digits/underscore, joined across
``.`` and ``'`` between letters or digits, ``:`` between letters, ``,``/``;`` between
digits — so ``nova.compute.manager`` and ``10.0.0.5`` stay one token — then
lower-cased. Every other field is a keyword: matched exactly and case-sensitively on
its whole value (lists such as ``tags`` match on any element).

Index tokens contain only ``[a-z0-9]``, other letters/digits and Unicode private-use
characters, so SQLite's ``unicode61`` tokenizer sees each of them as exactly one token.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

TEXT_FIELDS = frozenset({"message"})
# Fields stored with a document but not indexed as keywords.
UNINDEXED_FIELDS = frozenset({"ts", "message", "exception"})
_NOT_KEYWORDS = TEXT_FIELDS | UNINDEXED_FIELDS
MAX_KEYWORD_LENGTH = 256  # longer values are stored, not indexed (like ES ignore_above)

_WORD = re.compile(r"\w+(?:(?:(?<=[^\W\d_])[.':](?=[^\W\d_])|(?<=\d)[.',;](?=\d))\w+)*")
_PARTIAL_TOKEN = re.compile(r"[\w.':,;]*")
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
        elif code < 0x80 or (self.keep_case and not ch.isalnum()):
            out = chr(0xE100 + code) if code < 0x1000 else f"{_WIDE}{code:06x}"
        elif self.keep_case and ch != ch.lower():
            out = _UPPER + ch.lower()
        else:
            out = ch
        self[code] = out
        return out


_TEXT_ESCAPES = _Escapes(keep_case=False)
_KEYWORD_ESCAPES = _Escapes(keep_case=True)


def text_tokens(text: str) -> list[str]:
    """Lucene-style word tokens of free text, lower-cased (readable form)."""
    return _WORD.findall(text.lower())


def encode_text(text: str) -> str:
    """The index form of free text: its tokens, space separated."""
    return "\n".join(_WORD.findall(text.lower())).translate(_TEXT_ESCAPES)


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
    """The index form of every keyword field of a document, space separated."""
    out = []
    for name, value in fields.items():
        if name in _NOT_KEYWORDS:
            continue
        if type(value) is str:  # the common case, kept fast
            if value and len(value) <= MAX_KEYWORD_LENGTH:
                out.append(_field_prefix(name) + value.translate(_KEYWORD_ESCAPES))
            continue
        for v in keyword_values(value):
            out.append(_field_prefix(name) + v.translate(_KEYWORD_ESCAPES))
    return " ".join(out)
