"""Nova's ``?name=`` filter, a regular expression from the user, matched safely.

Python's ``re`` backtracks: a pattern such as ``(a+)+$`` against a long name takes
exponential time and would hold a worker for minutes. RE2 (google-re2) matches in time
linear in the name, with bounded memory, so no pattern can stall the API. RE2 has no
backreferences or lookaround; such a pattern is a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Callable

import re2

from rackpool.core.errors import BadRequest

MAX_PATTERN = 255  # a server name is at most 255 characters
_OPTIONS = re2.Options()
_OPTIONS.max_mem = 8 << 20
_OPTIONS.log_errors = False


def compile_name_filter(pattern: str, field: str = "name") -> Callable[[str], bool]:
    """A predicate: does ``pattern`` match anywhere in a name (Nova's semantics)?"""
    if len(pattern) > MAX_PATTERN:
        raise BadRequest(
            f"Invalid filter {field}: the pattern is longer than {MAX_PATTERN} characters."
        )
    try:
        rx = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise BadRequest(
            f"Invalid filter {field}: not a regular expression this region accepts ({detail}); "
            "use RE2 syntax (no backreferences or lookaround)."
        ) from None
    return lambda name: rx.search(name) is not None
