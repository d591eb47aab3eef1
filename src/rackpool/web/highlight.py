"""Which words of a query to highlight in a hit, and marking them, without regexes
over user input: terms are found with ``str.find`` on lower-cased text."""

from __future__ import annotations

import re

from rackpool.web.html import Html, h

# our fixed pattern over the query text: [field:]"phrase" or [field:]term
_CLAUSE = re.compile(r'(?:([A-Za-z_][\w.]*):)?(?:"((?:[^"\\]|\\.)*)"|([^\s()"]+))')
_OPERATORS = {"AND", "OR", "NOT", "&&", "||", "TO"}
MAX_TERMS = 20


def terms(query: str) -> list[str]:
    """Lower-cased words of ``query`` that search the message (bare or ``message:``)."""
    out: list[str] = []
    for m in _CLAUSE.finditer(query[:2000]):
        field, phrase, word = m.group(1), m.group(2), m.group(3)
        if field not in (None, "message"):
            continue
        text = phrase if phrase is not None else word
        if text is None or text in _OPERATORS:
            continue
        text = text.lstrip("+-!").replace("\\", "")
        for part in re.split(r"[*?]", text):
            if len(part) >= 2 and part.lower() not in out:
                out.append(part.lower())
    return out[:MAX_TERMS]


def mark(message: str, words: list[str]) -> Html:
    """``message`` escaped, with each occurrence of ``words`` in ``<mark>``."""
    lower = message.lower()
    if not words or len(lower) != len(message):
        return h(message)
    spans: list[tuple[int, int]] = []
    for w in words:
        start = lower.find(w)
        while start >= 0 and len(spans) < 1000:
            spans.append((start, start + len(w)))
            start = lower.find(w, start + len(w))
    merged: list[list[int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out, pos = [], 0
    for s, e in merged:
        out.append(h(message[pos:s]))
        out.append(Html(f"<mark>{h(message[s:e])}</mark>"))
        pos = e
    out.append(h(message[pos:]))
    return Html("".join(out))
