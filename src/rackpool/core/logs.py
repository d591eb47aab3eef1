"""Logging for every rackpool daemon: JSON lines for the log index, plain text for a terminal.

A daemon calls :func:`setup_logging` once at start. Everything else logs through the
standard :mod:`logging` module and passes correlation ids with ``extra=``::

    log.warning("launch failed: %s", fault, extra={"node_id": n, "event": "launch_failed"})

Work done for one request (an API call, a spawn) runs inside :func:`log_context`,
whose ids (``request_id``…) every line logged in it carries, also in worker threads
that copy the context (``contextvars``).

Secrets are redacted inside the formatters, so nothing unredacted reaches a file,
a terminal or the index (see :mod:`rackpool.core.secrets`). Pure stdlib; the only I/O is the
handler :func:`setup_logging` installs.
"""

from __future__ import annotations

import json as _json
import logging
import logging.handlers
import socket
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

from rackpool.core.secrets import REDACTED, is_secret_key, redact

__all__ = [
    "CORRELATION_FIELDS",
    "REDACTED",
    "JsonFormatter",
    "HumanFormatter",
    "is_secret_key",
    "log_context",
    "current_log_context",
    "iso_utc",
    "redact",
    "redact_value",
    "setup_logging",
]

# Correlation ids, in the order they are written. Other ``extra=`` keys are kept too.
CORRELATION_FIELDS = (
    "region",
    "host",
    "request_id",
    "global_request_id",
    "node_id",
    "instance_id",
    "image_id",
    "project",
    "provider",
    "label",
    "event",
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


_NO_IDS: Mapping[str, Any] = MappingProxyType({})
_LOG_CONTEXT: ContextVar[Mapping[str, Any]] = ContextVar("rackpool_log_context", default=_NO_IDS)


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Every line logged inside carries ``ids`` (None values are left out)."""
    token = _LOG_CONTEXT.set(
        {**_LOG_CONTEXT.get(), **{k: v for k, v in ids.items() if v is not None}}
    )
    try:
        yield
    finally:
        _LOG_CONTEXT.reset(token)


def current_log_context() -> Mapping[str, Any]:
    """The ids :func:`log_context` set for the running code (empty outside one)."""
    return _LOG_CONTEXT.get()


def redact_value(key: str, value: Any) -> Any:
    """Redact a structured value: secret keys lose their value, strings are scanned."""
    if is_secret_key(key):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value("", v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(str(value))


def _extras(record: logging.LogRecord, context: Mapping[str, Any]) -> dict[str, Any]:
    """Context defaults overlaid with the record's ``extra=`` fields, correlation ids first."""
    merged: dict[str, Any] = dict(context)
    merged.update(_LOG_CONTEXT.get())
    for key, value in vars(record).items():
        if key not in _RECORD_ATTRS and not key.startswith("_") and value is not None:
            merged[key] = value
    ordered = {k: merged.pop(k) for k in CORRELATION_FIELDS if k in merged}
    ordered.update(sorted(merged.items()))
    return {k: redact_value(k, v) for k, v in ordered.items()}


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    parts = []
    if record.exc_info:
        parts.append(formatter.formatException(record.exc_info))
    elif record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(formatter.formatStack(record.stack_info))
    return redact("\n".join(parts)) if parts else None


def iso_utc(timestamp: float) -> str:
    """``2024-05-01T12:00:00.123456Z`` — the timestamp format of every JSON log line."""
    dt = datetime.fromtimestamp(timestamp, UTC)
    return dt.isoformat(timespec="microseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, component, logger, message, ids, exception."""

    def __init__(self, component: str, context: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.component = component
        self.context = dict(context or {})

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": iso_utc(record.created),
            "level": record.levelname,
            "component": self.component,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in _extras(record, self.context).items():
            doc.setdefault(key, value)
        exc = _exception_text(self, record)
        if exc:
            doc["exception"] = exc
        return _json.dumps(doc, ensure_ascii=False, default=str)


class HumanFormatter(logging.Formatter):
    """``12:00:00.123 WARNING rackpool.pool [node_id=n1] message`` for a terminal."""

    def __init__(self, component: str, context: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.component = component
        self.context = dict(context or {})

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        ids = {k: v for k, v in _extras(record, {}).items()}
        tag = " [" + " ".join(f"{k}={v}" for k, v in ids.items()) + "]" if ids else ""
        line = f"{ts} {record.levelname:<7} {record.name}{tag} {redact(record.getMessage())}"
        exc = _exception_text(self, record)
        return f"{line}\n{exc}" if exc else line


def setup_logging(
    component: str,
    *,
    json: bool,
    path: str | None = None,
    level: str | int = "INFO",
    context: dict[str, Any] | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Configure the root logger for a daemon; call once at start. Returns the handler.

    ``component`` names the daemon (``cloud``, ``agent``, ``pool``, ``ops``).
    ``json`` picks JSON lines (for files and the index) or human text (for a terminal).
    ``path`` appends to that file, reopening it if logrotate moves it away; otherwise
    the handler writes to ``stream`` (default stderr). ``context`` holds defaults for
    every line (``region``, ``host``…); ``host`` defaults to this machine's name.
    Calling again replaces the handler installed by the previous call.
    """
    ctx: dict[str, Any] = {"host": socket.gethostname()}
    ctx.update(context or {})
    handler: logging.Handler
    if path is not None:
        handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    formatter: logging.Formatter = (
        JsonFormatter(component, ctx) if json else HumanFormatter(component, ctx)
    )
    handler.setFormatter(formatter)
    handler.set_name(f"rackpool:{component}")
    root = logging.getLogger()
    for old in list(root.handlers):
        if (old.get_name() or "").startswith("rackpool:"):
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
