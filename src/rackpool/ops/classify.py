"""Match failures against known-bug signatures, as elastic-recheck does for CI builds.

Which lines are failures (also in docs/ops.md):

- pool: a line with ``event`` = ``launch_failed`` or ``node_failed`` and a ``node_id``;
  all lines about that node form one failure ``node:<node_id>``.
- pushed builds: documents with ``build_status`` = ``FAILURE`` and a ``build_uuid``;
  one failure ``build:<build_uuid>`` per build.

A failure matches a signature when ``(<signature query>) AND node_id:"<id>"`` (or
``build_uuid:"<uuid>"``) finds anything in the index. A failure is classified again
when new failure lines about it arrive.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from rackpool.core.clock import Clock, SystemClock
from rackpool.ops.failures import Failure, FailureStore
from rackpool.ops.index import Hit, LogIndex
from rackpool.ops.query import Node, Term, conjoin, parse
from rackpool.ops.signatures import Signature

log = logging.getLogger(__name__)

FAILURE_QUERY = "event:launch_failed OR event:node_failed OR build_status:FAILURE"
HOUR = 3600.0
DAY = 86400.0
_SUMMARY_FIELDS = (
    "message",
    "provider",
    "label",
    "region",
    "project",
    "build_name",
    "build_uuid",
    "build_status",
    "node_provider",
    "node_id",
    "instance_id",
    "event",
)


@dataclass(frozen=True)
class BugStats:
    signature: Signature
    fails: int
    fails_24h: int
    hourly: tuple[tuple[float, int], ...]  # (hour start, failures) for the last 10 days

    def to_json(self) -> dict[str, object]:
        s = self.signature
        return {
            "bug": s.bug,
            "query": s.query_text,
            "description": s.description,
            "suppress-graph": s.suppress_graph,
            "suppress-notification": s.suppress_notification,
            "allow-nonvoting": s.allow_nonvoting,
            "test_ids": list(s.test_ids),
            "resolved_at": s.resolved_at,
            "fails": self.fails,
            "fails24h": self.fails_24h,
            "hourly": [list(b) for b in self.hourly],
        }


def failure_key(hit: Hit) -> tuple[str, str, Node] | None:
    """(key, kind, filter query) for a failure line; None if it names no node or build."""
    f = hit.fields
    if f.get("build_status") == "FAILURE" and isinstance(f.get("build_uuid"), str):
        return f"build:{f['build_uuid']}", "build", Term("build_uuid", f["build_uuid"])
    if isinstance(f.get("node_id"), str) and f["node_id"]:
        return f"node:{f['node_id']}", "node", Term("node_id", f["node_id"])
    return None


class Classifier:
    """Finds new failure lines in the index and records which known bugs they match."""

    def __init__(
        self,
        index: LogIndex,
        store: FailureStore,
        signatures: Sequence[Signature],
        *,
        clock: Clock | None = None,
        window: float = DAY,
    ) -> None:
        self.index = index
        self.store = store
        self.signatures = list(signatures)
        self.clock = clock or SystemClock()
        self.window = window
        self._failures = parse(FAILURE_QUERY)

    def run_once(self) -> list[Failure]:
        """Classify failures whose lines changed in the last ``window``; returns them."""
        groups: dict[str, tuple[str, Node, list[Hit]]] = {}
        since = self.clock.now() - self.window
        for hit in self.index.scan(self._failures, since=since):
            found = failure_key(hit)
            if found is None:
                continue
            key, kind, flt = found
            groups.setdefault(key, (kind, flt, []))[2].append(hit)
        done = []
        for key, (kind, flt, hits) in groups.items():
            old = self.store.get(key)
            last = max(h.ts for h in hits)
            if old is not None and old.lines == len(hits) and old.last_ts == last:
                continue
            failure = self.classify(key, kind, flt, hits)
            self.store.put(failure)
            done.append(failure)
            log.info(
                "failure %s: %s",
                key,
                ", ".join(failure.bugs) or "uncategorized",
                extra={"event": "failure_classified"},
            )
        return done

    def classify(self, key: str, kind: str, flt: Node, hits: list[Hit]) -> Failure:
        bugs = tuple(s.bug for s in self.signatures if self.index.count(conjoin(s.query, flt)) > 0)
        first = min(hits, key=lambda h: (h.ts, h.seq))
        summary = {k: first.fields[k] for k in _SUMMARY_FIELDS if k in first.fields}
        return Failure(
            key, kind, first.ts, first.id, summary, bugs, len(hits), max(h.ts for h in hits)
        )

    def run(self, stop: threading.Event, interval: float = 2.0) -> None:
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("classifying failures failed; retrying")
            stop.wait(interval)

    def bug_stats(self, days: int = 10) -> list[BugStats]:
        """Hits per signature: all kept failures, last 24 h, hourly buckets over ``days``."""
        now = self.clock.now()
        times = self.store.bug_times(0.0)
        start_hour = (now // HOUR) * HOUR - (days * 24 - 1) * HOUR
        out = []
        for sig in self.signatures:
            ts = times.get(sig.bug, [])
            buckets: dict[float, int] = {}
            for t in ts:
                if t >= start_hour:
                    hour = (t // HOUR) * HOUR
                    buckets[hour] = buckets.get(hour, 0) + 1
            out.append(
                BugStats(
                    sig,
                    len(ts),
                    sum(1 for t in ts if t >= now - DAY),
                    tuple(sorted(buckets.items())),
                )
            )
        return sorted(out, key=lambda b: (-b.fails, b.signature.bug))
