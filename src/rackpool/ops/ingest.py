"""Turn log lines and pushed documents into index documents, redacting secrets first.

Secrets are found by :mod:`rackpool.core.secrets`. A caller that feeds one stream's lines
in order (the shipper per file, the push API per build log) passes that stream's
:class:`StreamRedactor`, so a PEM private key written line by line loses every line of
its body, not only the BEGIN line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson

from rackpool.core.logs import redact_value
from rackpool.core.secrets import StreamRedactor, may_hold_secret
from rackpool.ops.index import LogDoc

__all__ = ["StreamRedactor", "clean_fields", "doc_from_fields", "doc_from_line", "may_hold_secret"]

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
    raw: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
    text: str | None = None,
    stream: StreamRedactor | None = None,
) -> dict[str, Any]:
    """Redacted fields with defaults filled in.

    ``text`` is the line ``raw`` was parsed from, if any (saves re-serialising it);
    ``stream`` redacts ``message`` as the next line of its stream.
    The index adds the elastic-recheck aliases (``loglevel``, ``module``) itself.
    """
    fields = dict(defaults) if defaults else {}
    fields.update(raw)
    message = fields.get("message")
    if stream is not None and isinstance(message, str):
        redacted = stream.redact(message)
        if redacted is not message:
            fields["message"] = redacted
            text = None
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
    stream: StreamRedactor | None = None,
) -> LogDoc:
    fields = clean_fields(raw, defaults, text, stream)
    return LogDoc(doc_ts(fields, now), source, seq, fields)


def doc_from_line(
    line: str | bytes,
    *,
    source: str,
    seq: int,
    now: float,
    defaults: Mapping[str, Any] | None = None,
    stream: StreamRedactor | None = None,
) -> LogDoc:
    """A JSON log line keeps its fields; any other line becomes ``message``.

    Given the line's bytes, a JSON line that needs no redaction and no ``defaults``
    is stored as it was written (:attr:`LogDoc.stored`), not serialised again.
    ``stream`` is the redactor of the file or build log the line comes from.
    """
    if isinstance(line, bytes):
        if line[:1] == b"{":
            try:
                parsed = orjson.loads(line)  # also checks that it is UTF-8
            except orjson.JSONDecodeError:
                parsed = None
            if type(parsed) is dict:
                text = line.decode("utf-8", errors="replace")
                if defaults or (stream is not None and stream.open) or may_hold_secret(text):
                    return doc_from_fields(
                        parsed,
                        source=source,
                        seq=seq,
                        now=now,
                        defaults=defaults,
                        text=text,
                        stream=stream,
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
    return doc_from_fields(
        raw, source=source, seq=seq, now=now, defaults=defaults, text=line, stream=stream
    )
