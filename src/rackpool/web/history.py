"""The dashboard's own small history of the pool, sampled from the pool's ``/metrics``.

Why here and not in the pool or the log index: the pool keeps no history, and its logs
do not carry everything the plots need (no line says when a node's launch started, so
launch→ready times exist only in the pool's ``rackpool_pool_launch_seconds``
histogram). Sampling ``/metrics`` like any Prometheus scraper gives every plot from one
source, through the pool's public HTTP API.

Every sample stores *cumulative* values only, so any two samples give the exact
increments between them and thinning old samples loses no totals:

- ``node_s`` — node-seconds per ``provider|state``: the integral of the
  ``rackpool_pool_nodes`` gauge (each sample adds the previous counts × the time since;
  not across a gap longer than ``3 × interval``, when nothing was seen);
- ``covered`` — the seconds integrated so far (average nodes = Δnode_s / Δcovered);
- ``errors`` — failed launches per ``provider|kind`` (counter resets, e.g. a restarted
  pool, are handled as Prometheus' ``increase()`` does);
- ``launch`` / ``wait`` — the cumulative buckets (``le``) of launch→ready and
  request→fulfilled times.

Bounded: samples every ``interval`` seconds for the last ``raw_hours``, then one per
``coarse`` seconds up to ``keep_days``; kept in memory and, when a path is given, in a
small SQLite file so a restarted dashboard keeps its history.
"""

from __future__ import annotations

import bisect
import math
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

Flat = dict[str, float]
SERVING = ("ready", "in-use", "hold")  # a node "served" while in one of these states


@dataclass(frozen=True)
class Reading:
    """One scrape of the pool's /metrics, as raw (possibly reset) values."""

    nodes: Flat = field(default_factory=dict)  # provider|state -> nodes now
    errors: Flat = field(default_factory=dict)  # provider|kind -> counter
    launch: Flat = field(default_factory=dict)  # le -> cumulative count (result=ready)
    wait: Flat = field(default_factory=dict)  # le -> cumulative count (result=fulfilled)


def parse_metrics(text: str) -> Reading:
    r = Reading()
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            lab = s.labels
            if s.name == "rackpool_pool_nodes":
                r.nodes[f"{lab['provider']}|{lab['state']}"] = s.value
            elif s.name == "rackpool_pool_launch_errors_total":
                r.errors[f"{lab['provider']}|{lab['kind']}"] = s.value
            elif s.name == "rackpool_pool_launch_seconds_bucket" and lab.get("result") == "ready":
                r.launch[lab["le"]] = r.launch.get(lab["le"], 0.0) + s.value
            elif (
                s.name == "rackpool_pool_request_ready_seconds_bucket"
                and lab.get("result") == "fulfilled"
            ):
                r.wait[lab["le"]] = r.wait.get(lab["le"], 0.0) + s.value
    return r


@dataclass
class Sample:
    ts: float
    nodes: Flat
    node_s: Flat
    covered: float
    errors: Flat
    launch: Flat
    wait: Flat

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.__dict__)

    @classmethod
    def from_bytes(cls, data: bytes) -> Sample:
        return cls(**orjson.loads(data))


def _increase(now: Flat, before: Flat | None) -> Flat:
    """Counter increments since ``before`` (a value that went down was reset to 0)."""
    if before is None:
        return {}
    out = {}
    for k, v in now.items():
        prev = before.get(k, 0.0)
        out[k] = v - prev if v >= prev else v
    return out


def _add(total: Flat, more: Flat) -> Flat:
    out = dict(total)
    for k, v in more.items():
        out[k] = out.get(k, 0.0) + v
    return out


def quantile(q: float, buckets: Flat) -> float | None:
    """Prometheus' ``histogram_quantile`` over cumulative ``le`` buckets; None if empty."""
    pairs = sorted((float(le), c) for le, c in buckets.items())
    if not pairs or pairs[-1][1] <= 0:
        return None
    rank = q * pairs[-1][1]
    lo_le, lo_c = 0.0, 0.0
    for le, c in pairs:
        if c >= rank:
            if math.isinf(le):
                return lo_le
            if c == lo_c:
                return le
            return lo_le + (le - lo_le) * (rank - lo_c) / (c - lo_c)
        lo_le, lo_c = le, c
    return lo_le


@dataclass(frozen=True)
class Bucket:
    start: float
    end: float
    nodes: Flat  # provider|state -> average nodes (None-free: 0 when not covered)
    covered: float  # seconds of the bucket the history saw
    errors: Flat  # provider|kind -> failed launches in the bucket
    launch: Flat  # le -> launches that became ready in the bucket
    wait: Flat  # le -> requests fulfilled in the bucket


class History:
    """Samples of the pool's metrics; thread-safe (the sampler writes, pages read)."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        interval: float = 15.0,
        raw_hours: float = 6.0,
        coarse: float = 300.0,
        keep_days: float = 10.0,
    ) -> None:
        self.interval = interval
        self.raw = raw_hours * 3600
        self.coarse = coarse
        self.keep = keep_days * 86400
        self._samples: list[Sample] = []
        self._times: list[float] = []
        self._last_raw: Reading | None = None
        self._last_thin = 0.0
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS samples(ts REAL PRIMARY KEY, data BLOB)")
            rows = self._db.execute("SELECT data FROM samples ORDER BY ts").fetchall()
            self._samples = [Sample.from_bytes(r[0]) for r in rows]
            self._times = [s.ts for s in self._samples]

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def first(self) -> float | None:
        return self._times[0] if self._times else None

    def record(self, reading: Reading, ts: float) -> Sample:
        """Add a scrape taken at ``ts``; returns the stored sample."""
        with self._lock:
            prev = self._samples[-1] if self._samples else None
            if prev is not None and ts <= prev.ts:
                return prev
            node_s, covered = (dict(prev.node_s), prev.covered) if prev else ({}, 0.0)
            if prev is not None and ts - prev.ts <= 3 * self.interval:
                dt = ts - prev.ts
                node_s = _add(node_s, {k: v * dt for k, v in prev.nodes.items()})
                covered += dt
            last = self._last_raw
            sample = Sample(
                ts,
                dict(reading.nodes),
                node_s,
                covered,
                _add(
                    prev.errors if prev else {},
                    _increase(reading.errors, last.errors if last else None),
                ),
                _add(
                    prev.launch if prev else {},
                    _increase(reading.launch, last.launch if last else None),
                ),
                _add(
                    prev.wait if prev else {}, _increase(reading.wait, last.wait if last else None)
                ),
            )
            self._last_raw = reading
            self._samples.append(sample)
            self._times.append(ts)
            dropped = self._thin(ts)
        if self._db is not None:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR REPLACE INTO samples VALUES (?, ?)", (ts, sample.to_bytes())
            )
            self._db.executemany("DELETE FROM samples WHERE ts = ?", [(t,) for t in dropped])
            self._db.execute("COMMIT")
        return sample

    def _thin(self, now: float) -> list[float]:
        """Drop samples past ``keep``; past ``raw``, keep one per ``coarse`` slot (the
        first, so the cumulative values at slot starts stay exact). A full pass, run at
        most once per ``coarse`` seconds."""
        if now - self._last_thin < self.coarse:
            return []
        self._last_thin = now
        dropped: list[float] = []
        kept: list[Sample] = []
        slot = None
        for s in self._samples:
            if s.ts < now - self.keep:
                dropped.append(s.ts)
                continue
            if s.ts < now - self.raw:
                this = s.ts // self.coarse
                if this == slot:
                    dropped.append(s.ts)
                    continue
                slot = this
            kept.append(s)
        self._samples = kept
        self._times = [s.ts for s in kept]
        return dropped

    def at(self, ts: float) -> Sample | None:
        """The last sample at or before ``ts``."""
        i = bisect.bisect_right(self._times, ts)
        return self._samples[i - 1] if i else None

    def buckets(self, since: float, until: float, n: int) -> list[Bucket]:
        """``n`` equal buckets over [since, until): averages and increments in each."""
        width = (until - since) / n
        edges = [since + i * width for i in range(n + 1)]
        with self._lock:
            at = [self.at(t) for t in edges]
        out = []
        for i in range(n):
            a, b = at[i], at[i + 1]
            out.append(_bucket(edges[i], edges[i + 1], a, b))
        return out

    def total(self, since: float, until: float) -> Bucket:
        """One bucket over [since, until)."""
        with self._lock:
            a, b = self.at(since), self.at(until)
        return _bucket(since, until, a, b)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _delta(b: Flat, a: Flat | None) -> Flat:
    base = a or {}
    return {k: v - base.get(k, 0.0) for k, v in b.items() if v - base.get(k, 0.0) > 0}


def _bucket(start: float, end: float, a: Sample | None, b: Sample | None) -> Bucket:
    if b is None or (a is not None and a.ts == b.ts):
        return Bucket(start, end, {}, 0.0, {}, {}, {})
    covered = b.covered - (a.covered if a else 0.0)
    node_s = _delta(b.node_s, a.node_s if a else None)
    nodes = {k: v / covered for k, v in node_s.items()} if covered > 0 else {}
    return Bucket(
        start,
        end,
        nodes,
        covered,
        _delta(b.errors, a.errors if a else None),
        _delta(b.launch, a.launch if a else None),
        _delta(b.wait, a.wait if a else None),
    )


def by_first(flat: Flat, keep: Iterable[str] | None = None) -> dict[str, float]:
    """``a|b`` keys summed by ``a`` (only where ``b`` is in ``keep``, when given)."""
    wanted = set(keep) if keep is not None else None
    out: dict[str, float] = {}
    for k, v in flat.items():
        a, _, b = k.partition("|")
        if wanted is None or b in wanted:
            out[a] = out.get(a, 0.0) + v
    return out


def by_second(flat: Flat) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in flat.items():
        b = k.partition("|")[2]
        out[b] = out.get(b, 0.0) + v
    return out


def node_hours(bucket: Bucket, states: Sequence[str] = SERVING) -> dict[str, float]:
    """Node-hours per provider in ``bucket`` (nodes in ``states``)."""
    return {p: v * bucket.covered / 3600 for p, v in by_first(bucket.nodes, states).items()}
