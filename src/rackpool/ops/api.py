"""The public REST API: read-only search, context, bugs and failures; push needs a token.

    GET  /api/search?q=&since=&until=&fields=a,b&page=1&size=50&order=desc
    GET  /api/docs/{id}                 GET /api/docs/{id}/context?before=10&after=10
    GET  /api/histogram?q=&since=&until=&interval=3600&by=build_status,event
    GET  /api/bugs                      GET /api/failures?uncategorized=true&since=
    GET  /api/uncategorized             GET /api/health
    POST /api/push   (Authorization: Bearer <token>)
         {"fields": {...build fields...}, "lines": ["...", ...], "source": ..., "first_line": 1}
         or {"documents": [{...}, ...], "source": ...}
    POST /api/ingest (Authorization: Bearer <host token>)  another host's shipper
         {"host": ..., "source": ..., "documents": [{"seq": ..., "ts": ..., "fields": {...}}]}
         (rackpool.ops.wire); answers once the lines are committed. The token is the
         sending host's own (rackpool.ops.tokens): lines of any other host are refused
         (403), and so is the push token

Errors use the OpenStack fault shape: ``{"badRequest": {"message": ..., "code": 400}}``.
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from rackpool.core.clock import Clock
from rackpool.core.errors import BadRequest, Forbidden, NotFound, RackpoolError, Unauthorized
from rackpool.core.faults import fault, http_error
from rackpool.core.httpguard import DEFAULT_MAX_BODY, BodyGuard, parse_json, query_int
from rackpool.core.secrets import StreamRedactors
from rackpool.ops.classify import Classifier
from rackpool.ops.failures import FailureStore
from rackpool.ops.index import LogDoc, LogIndex
from rackpool.ops.ingest import clean_fields, doc_from_fields
from rackpool.ops.query import MatchAll, parse
from rackpool.ops.requestlog import RequestLog
from rackpool.ops.timeparse import parse_time
from rackpool.ops.tokens import looks_like_host_token, token_host
from rackpool.ops.wire import parse_ingest

MAX_PAGE = 1000
MAX_BUCKETS = 5000  # in one histogram
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
MAX_PUSH = 100_000
_HOST_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*:")  # '<host>:…', /api/ingest's sources
log = logging.getLogger("rackpool.ops.api")


@dataclass(frozen=True)
class ApiDeps:
    index: LogIndex
    store: FailureStore
    classifier: Classifier
    push_token: str
    clock: Clock
    max_body_bytes: int = DEFAULT_MAX_BODY
    ingest_secret: str | None = None  # None: /api/ingest takes no token (no ingest)


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    return query_int(request.query_params.get(name), name, default, lo, hi)


def _project(doc: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if not fields:
        return doc
    keep = {"id", "ts", "source", "seq", *fields}
    return {k: v for k, v in doc.items() if k in keep}


def _bearer(request: Request) -> str | None:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" and given.strip() else None


def _authorize(request: Request, token: str, what: str) -> None:
    given = _bearer(request)
    if given is None or not hmac.compare_digest(given.encode(), token.encode()):
        raise Unauthorized(f"{what} needs 'Authorization: Bearer <token>'")


_MINT = "mint one on the ops host with 'rackpool ops ship-token --config ops.yaml HOST'"


def _ingest_host(request: Request, deps: ApiDeps) -> str:
    """The host whose ingest token the request carries; 401/403 naming what is wrong
    (never the token)."""
    given = _bearer(request)
    if given is None:
        raise Unauthorized(f"ingest needs 'Authorization: Bearer <host token>'; {_MINT}")
    if hmac.compare_digest(given.encode(), deps.push_token.encode()):
        raise Forbidden(
            "the push token cannot ingest host lines: each host ships with its own "
            f"ingest token, bound to its name; {_MINT}"
        )
    host = token_host(deps.ingest_secret, given) if deps.ingest_secret else None
    if host is None:
        ours = " of this ops daemon" if looks_like_host_token(given) else ""
        raise Unauthorized(
            f"the bearer token is not an ingest token{ours} (or its secret changed); {_MINT}"
        )
    request.state.ingest_host = host  # the request log names it
    return host


class _Ingest:
    """Shipped lines of other hosts to index documents, redacted again here (the index is
    public; the sender is not trusted to have redacted). Runs on the thread pool; the
    lock keeps each file's stream redactor (a PEM key split over lines) in line order."""

    def __init__(self) -> None:
        self.streams = StreamRedactors()
        self.lock = threading.Lock()

    def docs(self, raw: bytes, host: str) -> list[LogDoc]:
        """The batch in ``raw``, sent with ``host``'s token: refused if it claims another."""
        batch = parse_ingest(parse_json(raw))
        if batch.host != host:
            raise Forbidden(
                f"this ingest token is for host {host!r}: it cannot send lines of host "
                f"{batch.host!r}; ship them from that host with its own token"
            )
        source = batch.stream
        with self.lock:
            stream = self.streams.get(source)
            return [
                LogDoc(d.ts, source, d.seq, clean_fields(d.fields, stream=stream))
                for d in batch.documents
            ]


def build_app(deps: ApiDeps) -> Starlette:
    streams = StreamRedactors()  # per pushed build log: a PEM key pushed line by line
    shipped = _Ingest()

    def search(request: Request) -> JSONResponse:
        qp = request.query_params
        now = deps.clock.now()
        q = qp.get("q", "").strip()
        query = parse(q) if q else MatchAll()
        size = _int(request, "size", 50, 1, MAX_PAGE)
        page = _int(request, "page", 1, 1, 100_000)
        order = qp.get("order", "desc")
        if order not in ("asc", "desc"):
            raise BadRequest("order: use asc or desc")
        fields = [f for f in qp.get("fields", "").split(",") if f] or None
        result = deps.index.search(
            query,
            since=parse_time(qp.get("since"), now, "since"),
            until=parse_time(qp.get("until"), now, "until"),
            limit=size,
            offset=(page - 1) * size,
            newest_first=order == "desc",
        )
        hits = [_project(h.to_json(), fields) for h in result.hits]
        return JSONResponse({"total": result.total, "page": page, "size": size, "hits": hits})

    def histogram(request: Request) -> JSONResponse:
        """Matches per time bucket, split by the first of the ``by`` fields a line has
        (e.g. ``build_status,event``: a build's outcome, or the pool line's event)."""
        qp = request.query_params
        now = deps.clock.now()
        q = qp.get("q", "").strip()
        query = parse(q) if q else MatchAll()
        interval = _int(request, "interval", 3600, 60, 86400)
        by = [f for f in qp.get("by", "").split(",") if f]
        if len(by) > 4 or not all(_FIELD.fullmatch(f) for f in by):
            raise BadRequest("by: up to 4 field names (letters, digits, _ . -), comma-separated")
        since = parse_time(qp.get("since"), now, "since")
        until = parse_time(qp.get("until"), now, "until")
        if since is None:
            raise BadRequest("since: required (e.g. 10d)")
        if ((until or now) - since) / interval > MAX_BUCKETS:
            raise BadRequest(f"interval: at most {MAX_BUCKETS} buckets; widen it or shorten since")
        counts = deps.index.histogram(query, since=since, until=until, interval=interval, by=by)
        rows = sorted([start, value, n] for (start, value), n in counts.items())
        return JSONResponse({"interval": interval, "by": by, "buckets": rows})

    def doc(request: Request) -> JSONResponse:
        hit = deps.index.get(request.path_params["doc_id"])
        if hit is None:
            raise NotFound(f"document {request.path_params['doc_id']} not found")
        return JSONResponse(hit.to_json())

    def context(request: Request) -> JSONResponse:
        doc_id = request.path_params["doc_id"]
        before = _int(request, "before", 10, 0, 1000)
        after = _int(request, "after", 10, 0, 1000)
        hits = deps.index.context(doc_id, before, after)
        if not hits:
            raise NotFound(f"document {doc_id} not found")
        return JSONResponse({"id": doc_id, "hits": [h.to_json() for h in hits]})

    def bugs(request: Request) -> JSONResponse:
        return JSONResponse({"bugs": [b.to_json() for b in deps.classifier.bug_stats()]})

    def failures(request: Request, uncategorized: bool | None = None) -> JSONResponse:
        qp = request.query_params
        if uncategorized is None:
            uncategorized = qp.get("uncategorized", "").lower() in ("1", "true", "yes")
        rows = deps.store.recent(
            uncategorized=uncategorized,
            since=parse_time(qp.get("since"), deps.clock.now(), "since"),
            limit=_int(request, "limit", 100, 1, MAX_PAGE),
        )
        return JSONResponse({"failures": [f.to_json() for f in rows]})

    def uncategorized(request: Request) -> JSONResponse:
        return failures(request, uncategorized=True)

    def health(request: Request) -> JSONResponse:
        s = deps.index.stats()
        return JSONResponse(
            {
                "status": "ok",
                "documents": s.documents,
                "bytes": s.bytes_on_disk,
                "partitions": s.partitions,
                "signatures": len(deps.classifier.signatures),
            }
        )

    async def push(request: Request) -> JSONResponse:
        _authorize(request, deps.push_token, "push")
        body = parse_json(await request.body())
        docs = _push_docs(body, deps.clock.now(), streams)
        added = await run_in_threadpool(deps.index.add, docs)
        return JSONResponse({"received": len(docs), "added": added}, status_code=202)

    async def ingest(request: Request) -> JSONResponse:
        """Another host's shipper: 200 once its lines are committed (it checkpoints then)."""
        host = _ingest_host(request, deps)
        docs = await run_in_threadpool(shipped.docs, await request.body(), host)
        added = await run_in_threadpool(deps.index.add, docs)
        return JSONResponse({"received": len(docs), "added": added})

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RackpoolError)
        return fault(exc)

    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return fault(RackpoolError("The ops API failed to handle this request; see its log."))

    return Starlette(
        routes=[
            Route("/api/search", search),
            Route("/api/histogram", histogram),
            Route("/api/docs/{doc_id}", doc),
            Route("/api/docs/{doc_id}/context", context),
            Route("/api/bugs", bugs),
            Route("/api/failures", failures),
            Route("/api/uncategorized", uncategorized),
            Route("/api/health", health),
            Route("/api/push", push, methods=["POST"]),
            Route("/api/ingest", ingest, methods=["POST"]),
        ],
        exception_handlers={RackpoolError: on_error, HTTPException: http_error, Exception: crash},
        middleware=[
            Middleware(RequestLog),
            Middleware(BodyGuard, max_bytes=deps.max_body_bytes, render=lambda _, e: fault(e)),
        ],
    )


def _push_docs(body: Any, now: float, streams: StreamRedactors) -> list[LogDoc]:
    if not isinstance(body, dict):
        raise BadRequest("body: expected a JSON object")
    common = body.get("fields", {})
    if not isinstance(common, dict):
        raise BadRequest("fields: expected an object of build fields")
    lines, documents = body.get("lines"), body.get("documents")
    if (lines is None) == (documents is None):
        raise BadRequest("body: give exactly one of 'lines' (strings) or 'documents' (objects)")
    items = lines if lines is not None else documents
    if not isinstance(items, list) or len(items) > MAX_PUSH:
        raise BadRequest(f"lines/documents: expected a list of at most {MAX_PUSH} items")
    first = body.get("first_line", 1)
    if not isinstance(first, int):
        raise BadRequest("first_line: expected an integer")
    default_source = "/".join(
        str(common[k]) for k in ("build_uuid", "filename") if isinstance(common.get(k), str)
    )
    source = body.get("source") or default_source or "push"
    if not isinstance(source, str):
        raise BadRequest("source: expected a string")
    if _HOST_SOURCE.match(source):
        raise BadRequest(
            "source: must not start with '<name>:', the form of a host's shipped lines "
            "(those come from the host's shipper, POST /api/ingest); e.g. use "
            "'<build_uuid>/<filename>'"
        )
    docs = []
    stream = streams.get(source)
    for i, item in enumerate(items):
        if lines is not None:
            if not isinstance(item, str):
                raise BadRequest(f"lines[{i}]: expected a string")
            raw: dict[str, Any] = {"message": item}
        else:
            if not isinstance(item, dict):
                raise BadRequest(f"documents[{i}]: expected an object")
            raw = item
        docs.append(
            doc_from_fields(
                raw, source=source, seq=first + i, now=now, defaults=common, stream=stream
            )
        )
    return docs
