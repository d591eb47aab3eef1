"""Text from outside (agents, guests, users) made safe to store, show and log.

A fault message, a console detail or anything a user can make a host say is untrusted:
it must not forge log lines (newlines, carriage returns, escape sequences), hide or
reorder what follows it on a terminal or web page (bidi overrides, zero-width tricks),
or grow without bound.
"""

from __future__ import annotations

import re

# C0 and C1 controls (but tab), DEL, bidi embeddings/overrides/isolates, zero-width
# joiners and marks, line and paragraph separators, the BOM.
_UNSAFE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]+"
)


def untrusted_text(text: object, limit: int = 4096) -> str:
    """``text`` on one line, without control or bidi characters, at most ``limit`` chars."""
    one_line = _UNSAFE.sub(" ", str(text)).strip()
    if len(one_line) <= limit:
        return one_line
    return one_line[: limit - 1] + "…"
