"""The body of ``POST /api/ingest``: log lines that another host's shipper sends the index.

    {"host": "r1-c1",
     "source": "/var/log/rackpool/agent-r1-c1.jsonl#1234-0a1b2c3d",
     "documents": [{"seq": 0, "ts": 1733230000.25, "fields": {"message": "...", ...}}, ...]}

``source`` names the file (path, inode and first-line checksum, as the shipper names a
file it follows) and ``seq`` is the line's byte offset in it. The index stores each line
under source ``<host>:<source>``, so two hosts' files never collide, and a line sent twice
(after a shipper restart, or a retry whose answer was lost) is stored once.

Both ends use this module: the API checks every field with :func:`parse_ingest`
(``BadRequest`` naming the field, never a 500); the sender shapes what it read with
:func:`encode_document`, so that the API accepts it: a line too large, too deeply nested
or with too many fields is sent as a cut-down ``message`` instead of refused forever.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from rackpool.core.errors import BadRequest
from rackpool.core.httpguard import MAX_JSON_DEPTH
from rackpool.ops.index import LogDoc

MAX_DOCUMENTS = 100_000  # per request, as many as a push
MAX_SOURCE = 8192  # characters: a path (PATH_MAX 4096) with its inode and checksum
MAX_FIELDS = 256  # per document
MAX_KEY = 128  # characters in a field name
MAX_SEQ = 2**63 - 1  # SQLite's INTEGER
MAX_TS = 253402300799.0  # 9999-12-31T23:59:59Z: the last instant a day file can be named for
# A document's fields sit 4 levels down in the body (body, documents, document, fields);
# parse_json refuses a body nested deeper than MAX_JSON_DEPTH.
MAX_FIELD_DEPTH = MAX_JSON_DEPTH - 4
HOST = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$"
_HOST = re.compile(HOST)
_BODY_KEYS = frozenset({"host", "source", "documents"})
_DOC_KEYS = frozenset({"seq", "ts", "fields"})


@dataclass(frozen=True)
class IngestDoc:
    seq: int
    ts: float
    fields: dict[str, Any]


@dataclass(frozen=True)
class IngestBatch:
    host: str
    source: str
    documents: list[IngestDoc]

    @property
    def stream(self) -> str:
        """The source the index stores these lines under."""
        return f"{self.host}:{self.source}"


def _depth(value: Any) -> int:
    """How deeply ``value`` nests (a scalar: 0, ``{}``: 1, ``{"a": []}``: 2)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        deepest = max(deepest, depth)
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return deepest if isinstance(value, dict | list) else 0


def fields_problem(fields: Mapping[str, Any]) -> str | None:
    """What makes ``fields`` unacceptable to the API, or None."""
    if len(fields) > MAX_FIELDS:
        return f"has {len(fields)} fields; at most {MAX_FIELDS}"
    for key in fields:
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY:
            return f"field names must be 1 to {MAX_KEY} characters, got {str(key)[:40]!r}"
    if _depth(fields) > MAX_FIELD_DEPTH:
        return f"nests deeper than {MAX_FIELD_DEPTH} levels"
    return None


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _document(item: Any, where: str) -> IngestDoc:
    if not isinstance(item, dict):
        raise BadRequest(f"{where}: expected an object with seq, ts and fields")
    unknown = sorted(set(item) - _DOC_KEYS)
    if unknown:
        raise BadRequest(f"{where}: unknown key {unknown[0][:40]!r}; give seq, ts and fields")
    seq, ts, fields = item.get("seq"), item.get("ts"), item.get("fields")
    if not (isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq <= MAX_SEQ):
        raise BadRequest(
            f"{where}.seq: expected an integer from 0 to {MAX_SEQ} (the line's offset)"
        )
    if not (_number(ts) and math.isfinite(ts) and 0 <= ts <= MAX_TS):
        raise BadRequest(f"{where}.ts: expected epoch seconds from 0 to {MAX_TS:.0f}")
    if not isinstance(fields, dict):
        raise BadRequest(f"{where}.fields: expected an object (the line's fields)")
    problem = fields_problem(fields)
    if problem:
        raise BadRequest(f"{where}.fields: {problem}")
    return IngestDoc(seq, float(ts), fields)


def parse_ingest(body: Any) -> IngestBatch:
    """The batch in a request body; ``BadRequest`` names the first field that is wrong."""
    if not isinstance(body, dict):
        raise BadRequest("body: expected a JSON object with host, source and documents")
    unknown = sorted(set(body) - _BODY_KEYS)
    if unknown:
        raise BadRequest(f"body: unknown key {unknown[0][:40]!r}; give host, source and documents")
    host, source, documents = body.get("host"), body.get("source"), body.get("documents")
    if not (isinstance(host, str) and _HOST.match(host)):
        raise BadRequest(
            "host: expected the sending host's name (letters, digits, '.', '_', '-'; "
            "at most 253 characters)"
        )
    if not (isinstance(source, str) and 1 <= len(source) <= MAX_SOURCE and source.isprintable()):
        raise BadRequest(
            f"source: expected the log file's name, 1 to {MAX_SOURCE} printable characters"
        )
    if not isinstance(documents, list) or len(documents) > MAX_DOCUMENTS:
        raise BadRequest(f"documents: expected a list of at most {MAX_DOCUMENTS} objects")
    docs = [_document(item, f"documents[{i}]") for i, item in enumerate(documents)]
    return IngestBatch(host, source, docs)


def body_head(host: str, source: str) -> bytes:
    """The start of a request body up to its documents' list (the sender adds the rest)."""
    return orjson.dumps({"host": host, "source": source})[:-1] + b',"documents":['


def encode_document(doc: LogDoc, max_bytes: int, now: float) -> bytes:
    """One document as the API accepts it, at most about ``max_bytes`` long.

    A line as written (``doc.stored``) is sent as it is. A document the API would refuse,
    or longer than ``max_bytes``, is sent as its text cut to fit, in ``message``, with
    ``shipper_cut`` saying why; a time out of range is replaced by ``now``.
    """
    ts = doc.ts if math.isfinite(doc.ts) and 0 <= doc.ts <= MAX_TS else now
    problem = fields_problem(doc.fields)
    if problem is None:
        fields = orjson.Fragment(doc.stored) if doc.stored is not None else doc.fields
        out = orjson.dumps({"seq": doc.seq, "ts": ts, "fields": fields}, default=str)
        if len(out) <= max_bytes:
            return out
        problem = f"{len(out)} bytes is over the shipper's limit of {max_bytes}"
    text = doc.stored.decode("utf-8", "replace") if doc.stored is not None else ""
    if not text:
        text = orjson.dumps(doc.fields, default=str).decode("utf-8", "replace")
    keep = max_bytes
    while True:  # characters: UTF-8 and JSON escapes make a few of them longer
        cut = {"message": text[:keep], "shipper_cut": f"the line was cut: {problem}"}
        out = orjson.dumps({"seq": doc.seq, "ts": ts, "fields": cut})
        if len(out) <= max_bytes or keep <= 64:
            return out
        keep //= 2
