"""Turn log lines and pushed documents into index documents, redacting secrets first."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import orjson

from rackpool.core.logs import redact_value
from rackpool.ops.index import LogDoc

# A secret-looking key is followed by a separator: ``password=``, ``"token": ``.
_AFTER_KEY = re.compile(r"[\w-]*[\"']?\s*[:=]")
_URL_CREDENTIALS = re.compile(r"://[^/\s@]*:[^/\s@]*@")
_KEY_HINTS = ("pass", "secret", "token", "key", "auth", "user", "credential")


def may_hold_secret(text: str) -> bool:
    """Cheap pre-check; False means redaction would change nothing."""
    low = text.lower()
    if "private key" in low or ("://" in low and _URL_CREDENTIALS.search(low)):
        return True
    for hint in _KEY_HINTS:
        i = low.find(hint)
        if i >= 0 and "--" in low:
            return True
        while i >= 0:
            if _AFTER_KEY.match(low, i + len(hint)):
                return True
            i = low.find(hint, i + 1)
    return False


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
    raw: Mapping[str, Any], defaults: Mapping[str, Any] | None = None, text: str | None = None
) -> dict[str, Any]:
    """Redacted fields with defaults filled in.

    ``text`` is the line ``raw`` was parsed from, if any (saves re-serialising it).
    The index adds the elastic-recheck aliases (``loglevel``, ``module``) itself.
    """
    fields = dict(defaults) if defaults else {}
    fields.update(raw)
    if text is None or defaults:
        text = orjson.dumps(fields, default=str).decode()
    if may_hold_secret(text):
        fields = {k: redact_value(k, v) for k, v in fields.items()}
    return fields


def doc_ts(fields: Mapping[str, Any], now: float) -> float:
    """The time of a document: its first parseable timestamp field, else ``now``."""
    for name in _TS_FIELDS:
        if name in fields:
            ts = parse_ts(fields[name])
            if ts is not None:
                return ts
    return now


def doc_from_fields(
    raw: Mapping[str, Any],
    *,
    source: str,
    seq: int,
    now: float,
    defaults: Mapping[str, Any] | None = None,
    text: str | None = None,
) -> LogDoc:
    fields = clean_fields(raw, defaults, text)
    return LogDoc(doc_ts(fields, now), source, seq, fields)


def doc_from_line(
    line: str | bytes,
    *,
    source: str,
    seq: int,
    now: float,
    defaults: Mapping[str, Any] | None = None,
) -> LogDoc:
    """A JSON log line keeps its fields; any other line becomes ``message``.

    Given the line's bytes, a JSON line that needs no redaction and no ``defaults``
    is stored as it was written (:attr:`LogDoc.stored`), not serialised again.
    """
    if isinstance(line, bytes):
        if line[:1] == b"{":
            try:
                parsed = orjson.loads(line)  # also checks that it is UTF-8
            except orjson.JSONDecodeError:
                parsed = None
            if type(parsed) is dict:
                text = line.decode("utf-8", errors="replace")
                if defaults or may_hold_secret(text):
                    return doc_from_fields(
                        parsed, source=source, seq=seq, now=now, defaults=defaults, text=text
                    )
                return LogDoc(doc_ts(parsed, now), source, seq, parsed, line)
        line = line.decode("utf-8", errors="replace")
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
    return doc_from_fields(raw, source=source, seq=seq, now=now, defaults=defaults, text=line)
