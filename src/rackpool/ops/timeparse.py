"""Time arguments for searches: ``15m``, ``2h``, ``3d`` ago, ISO-8601, or epoch seconds."""

from __future__ import annotations

import re

from rackpool.core.errors import BadRequest
from rackpool.ops.ingest import parse_ts

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: str | None, now: float, name: str = "since") -> float | None:
    if value is None or value == "":
        return None
    m = _RELATIVE.match(value.strip())
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    ts = parse_ts(value)
    if ts is None:
        raise BadRequest(f"{name}: cannot read {value!r}; use 15m, 2h, 3d, ISO-8601 or epoch")
    return ts
