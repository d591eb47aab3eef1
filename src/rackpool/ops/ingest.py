"""Turn log lines and pushed documents into index documents, redacting secrets first."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import orjson

from rackpool.core.logs import redact_value
from rackpool.ops.index import LogDoc

# Anything that might hold a secret; lines without a hit skip the full redaction pass.
_MAYBE_SECRET = re.compile(
    r"pass|secret|token|key|auth|user_?data|credential|://[^/\s]*@|PRIVATE", re.IGNORECASE
)
# Field names elastic-recheck queries use for what our JSON lines call level / logger.
ALIASES = {"level": "loglevel", "logger": "module"}
_TS_FIELDS = ("ts", "@timestamp", "timestamp")


def parse_ts(value: Any) -> float | None:
    """Epoch seconds from an ISO-8601 string or a number; None if unparseable."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / 1000.0 if value > 1e11 else float(value)
    if isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.timestamp()
    return None


def clean_fields(
    raw: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Redacted fields with defaults filled in and elastic-recheck aliases added."""
    fields = dict(defaults or {})
    fields.update(raw)
    if _MAYBE_SECRET.search(orjson.dumps(fields, default=str).decode()):
        fields = {k: redact_value(k, v) for k, v in fields.items()}
    for name, alias in ALIASES.items():
        if name in fields and alias not in fields:
            fields[alias] = fields[name]
    return fields


def doc_from_fields(
    raw: Mapping[str, Any],
    *,
    source: str,
    seq: int,
    now: float,
    defaults: Mapping[str, Any] | None = None,
) -> LogDoc:
    fields = clean_fields(raw, defaults)
    ts = None
    for name in _TS_FIELDS:
        if name in fields:
            ts = parse_ts(fields[name])
            if ts is not None:
                break
    if "message" not in fields:
        fields["message"] = ""
    return LogDoc(ts if ts is not None else now, source, seq, fields)


def doc_from_line(
    line: str,
    *,
    source: str,
    seq: int,
    now: float,
    defaults: Mapping[str, Any] | None = None,
) -> LogDoc:
    """A JSON log line keeps its fields; any other line becomes ``message``."""
    raw: dict[str, Any] | None = None
    if line.startswith("{"):
        try:
            parsed = orjson.loads(line)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            raw = parsed
    if raw is None:
        raw = {"message": line}
    return doc_from_fields(raw, source=source, seq=seq, now=now, defaults=defaults)
