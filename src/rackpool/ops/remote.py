"""The ops index of another host, as a place to ship log lines to (``POST /api/ingest``).

:class:`RemoteIndex` is a :class:`rackpool.ops.index.DocSink`: the :class:`Shipper`
hands it a batch of lines with :meth:`submit` and gets a future that is done when the
ops API has *committed* them (it answers only then), so the shipper checkpoints a file's
offset only after its lines are stored, as with a local index. Batches are sent in
order, one request at a time, on one thread, while the shipper reads the next.

A batch the API does not take is sent again, and again, until it does: the wait between
tries doubles from ``min_backoff`` up to ``max_backoff``, and the trouble is logged when
it starts, when it changes, at most every ``log_interval`` while it lasts, and when it
ends (how long, how many tries). Nothing is dropped, so nothing is lost while ops is down
or refuses the token; a line sent twice is stored once (its source and offset are its
key). ``stop`` ends the waiting: every batch still queued is tried once more, then its
future fails with :class:`ShippingStopped` and the shipper checkpoints nothing after it
(those lines are read again at the next start).

A 413 (the API takes smaller bodies than ``max_request_bytes``) splits the request in
two; a single line the API still finds too large is sent cut down to 4 KiB.

Errors (below ``OpsError``): ``ShippingStopped`` (TemporaryError).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from rackpool.core.clock import Clock, SystemClock
from rackpool.core.errors import TemporaryError
from rackpool.ops.errors import OpsError
from rackpool.ops.index import LogDoc
from rackpool.ops.wire import MAX_DOCUMENTS, body_head, encode_document

log = logging.getLogger(__name__)
INGEST_PATH = "/api/ingest"
MIN_SPLIT_LINE = 4096  # bytes a single refused-as-too-large line is cut to


class ShippingStopped(OpsError, TemporaryError):
    """The shipper stopped before the ops API took a batch; it is read again at next start."""


@dataclass(frozen=True)
class Trouble:
    """Why the last try failed. ``refused``: the API answered no (token, version, body);
    otherwise it was unreachable or failing (5xx)."""

    message: str
    refused: bool


# States the shipper reports (its status file): connecting, shipping, retrying, refused.
StateListener = Callable[[str, str | None], None]


@dataclass
class _Request:
    source: str
    docs: list[bytes]


class RemoteIndex:
    """Sends documents to the ops API at ``url`` as host ``host``, with ``token``."""

    def __init__(
        self,
        url: str,
        token: str,
        host: str,
        *,
        stop: threading.Event,
        timeout: float = 30.0,
        max_request_bytes: int = 4 * 1024 * 1024,
        max_line_bytes: int = 1024 * 1024,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
        log_interval: float = 60.0,
        clock: Clock | None = None,
        on_state: StateListener | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.host = host
        self.stop = stop
        self.max_request_bytes = max_request_bytes
        self.max_line_bytes = min(max_line_bytes, max_request_bytes // 2)
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.log_interval = log_interval
        self.clock = clock or SystemClock()
        self.on_state = on_state
        self.state = "connecting"
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            trust_env=False,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        self._sender = ThreadPoolExecutor(1, thread_name_prefix="ops-ship-sender")
        self._trouble: Trouble | None = None
        self._trouble_since = 0.0
        self._tries = 0
        self._logged_at = 0.0

    # -- DocSink ----------------------------------------------------------------------

    def submit(self, docs: Iterable[LogDoc]) -> Future[int]:
        """Encode ``docs`` here; send them on the sender thread, in order."""
        requests = self._requests(docs)
        try:
            return self._sender.submit(self._send_all, requests)
        except RuntimeError as exc:  # closed
            raise ShippingStopped("the shipper is closed") from exc

    def add(self, docs: Iterable[LogDoc]) -> int:
        return self.submit(docs).result()

    def probe(self) -> None:
        """Return once the API takes an (empty) batch: the URL and the token work."""
        self._sender.submit(self._send, _Request("probe", [])).result()

    def close(self) -> None:
        self._sender.shutdown(wait=True)
        self._http.close()

    # -- encoding ---------------------------------------------------------------------

    def _requests(self, docs: Iterable[LogDoc]) -> list[_Request]:
        out: list[_Request] = []
        size = 0
        now = self.clock.now()
        for d in docs:
            data = encode_document(d, self.max_line_bytes, now)
            last = out[-1] if out else None
            if (
                last is None
                or last.source != d.source
                or (
                    last.docs
                    and size + len(data) > self.max_request_bytes - 6 * len(d.source) - 1024
                )
                or len(last.docs) >= MAX_DOCUMENTS
            ):
                last = _Request(d.source, [])
                out.append(last)
                size = 0
            last.docs.append(data)
            size += len(data) + 1
        return out

    def _body(self, request: _Request) -> bytes:
        return body_head(self.host, request.source) + b",".join(request.docs) + b"]}"

    # -- sending ----------------------------------------------------------------------

    def _send_all(self, requests: list[_Request]) -> int:
        return sum(self._send(r) for r in requests)

    def _send(self, request: _Request) -> int:
        attempt = 0
        while True:
            trouble, answer = self._try(request)
            if trouble is None:
                self._recovered()
                return int(answer.get("added", 0))
            if answer.get("too_large") and len(request.docs) > 1:
                half = len(request.docs) // 2
                first = _Request(request.source, request.docs[:half])
                return self._send(first) + self._send(_Request(request.source, request.docs[half:]))
            if answer.get("too_large") and len(request.docs[0]) > MIN_SPLIT_LINE:
                request = _Request(request.source, [self._cut(request.docs[0])])
                continue
            self._failed(trouble)
            delay = min(self.max_backoff, self.min_backoff * 2**attempt)
            attempt = min(attempt + 1, 30)
            if self.stop.wait(delay * random.uniform(0.8, 1.2)):  # noqa: S311 - jitter
                raise ShippingStopped(
                    f"stopped before the ops API took {len(request.docs)} line(s): "
                    f"{trouble.message}"
                )

    def _try(self, request: _Request) -> tuple[Trouble | None, dict[str, Any]]:
        try:
            resp = self._http.post(INGEST_PATH, content=self._body(request))
        except httpx.HTTPError as exc:
            return Trouble(f"cannot reach the ops API at {self.url}: {exc}", False), {}
        if resp.status_code == 200:
            try:
                return None, dict(resp.json())
            except ValueError:
                return None, {}
        message = _fault_message(resp)
        code = resp.status_code
        if code in (401, 403):
            return Trouble(
                f"the ops API at {self.url} refused this host's ingest token as host "
                f"{self.host!r} ({code}: {message}); set ops.token in the shipper's config to "
                "the token 'rackpool ops ship-token --config ops.yaml HOST' prints on the ops "
                "host for this host's name",
                True,
            ), {}
        if code == 404:
            return Trouble(
                f"the ops API at {self.url} has no {INGEST_PATH} (404); is the ops host "
                "running an older rackpool? upgrade it",
                True,
            ), {}
        if code == 413:
            return Trouble(f"the ops API took no request this large ({message})", True), {
                "too_large": True
            }
        refused = 400 <= code < 500 and code not in (408, 429)
        return Trouble(f"the ops API at {self.url} answered {code}: {message}", refused), {}

    def _cut(self, data: bytes) -> bytes:
        doc = orjson.loads(data)
        return encode_document(
            LogDoc(doc["ts"], "", doc["seq"], doc["fields"]), MIN_SPLIT_LINE, self.clock.now()
        )

    # -- state and logging ------------------------------------------------------------

    def _set_state(self, state: str, error: str | None) -> None:
        self.state = state
        if self.on_state is not None:
            self.on_state(state, error)

    def _failed(self, trouble: Trouble) -> None:
        now = self.clock.now()
        self._tries += 1
        new = self._trouble is None or self._trouble.message != trouble.message
        if self._trouble is None:
            self._trouble_since = now
        state = "refused" if trouble.refused else "retrying"
        if new:
            self._set_state(state, trouble.message)
        if new or now - self._logged_at >= self.log_interval:
            self._logged_at = now
            level = logging.ERROR if trouble.refused else logging.WARNING
            log.log(
                level,
                "shipping logs: %s (try %d, failing for %.0fs; retrying)",
                trouble.message,
                self._tries,
                now - self._trouble_since,
                extra={"event": "ship_refused" if trouble.refused else "ship_retrying"},
            )
        self._trouble = trouble

    def _recovered(self) -> None:
        if self._trouble is not None:
            log.info(
                "shipping logs again: the ops API at %s took a batch after %.0fs and %d failed "
                "tries",
                self.url,
                self.clock.now() - self._trouble_since,
                self._tries,
                extra={"event": "ship_recovered"},
            )
            self._trouble = None
            self._tries = 0
        if self.state != "shipping":
            if self.state == "connecting":
                log.info(
                    "shipping logs to %s as host %s",
                    self.url,
                    self.host,
                    extra={"event": "ship_connected"},
                )
            self._set_state("shipping", None)


def _fault_message(resp: httpx.Response) -> str:
    """The message of an ops API fault (``{"badRequest": {"message": ...}}``), else text."""
    try:
        (fault,) = resp.json().values()
        return str(fault["message"])[:500]
    except (ValueError, KeyError, TypeError, AttributeError):
        return resp.text[:200] or resp.reason_phrase
