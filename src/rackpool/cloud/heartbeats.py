"""The latest heartbeat instant of each host, kept in memory and written in batches.

A heartbeat is the most frequent call a region serves (every host, every
``heartbeat_interval``). Writing each one to the database would make it wait for the
database's single write lock behind tenants' server creates, long enough at times to
look like a silent host. So a heartbeat only reads the database (WAL readers never
wait for the writer) and records its instant here; ``flush`` writes every instant
recorded since the last flush in one batched ``UPDATE``, every ``flush_interval``
(half the heartbeat interval) and when the region closes.

Who reads what:
- this controller's own judgements (``check_down``, the scheduler's "heartbeat fresh"
  filter, the admin host list and ``os-services``) take the later of the database's
  ``last_heartbeat`` and the instant kept here, so a host is never marked down, or
  left out of placement, because its latest heartbeat is not flushed yet;
- anyone reading the database alone (a second controller on the same database, issue
  10; a restarted controller) sees each host's heartbeat at most one flush interval
  (plus the time a flush waits for the write lock) behind the truth. A heartbeat
  timeout longer than that is enough for them to judge liveness correctly; a crash
  loses at most that much, never a host.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine, bindparam, update

from rackpool.cloud.db.schema import hosts

log = logging.getLogger("rackpool.cloud.heartbeats")

MIN_FLUSH_INTERVAL = 0.05


def flush_interval(heartbeat_interval: float) -> float:
    """How often recorded heartbeats are written: half an interval, at most 20 a second."""
    return max(MIN_FLUSH_INTERVAL, heartbeat_interval / 2)


class HeartbeatBuffer:
    """Thread-safe: heartbeats arrive in worker threads, the flush runs in another."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._latest: dict[str, float] = {}
        self._pending: dict[str, float] = {}

    def record(self, host: str, at: float) -> None:
        with self._lock:
            if at > self._latest.get(host, float("-inf")):
                self._latest[host] = at
                self._pending[host] = at

    def latest(self, host: str) -> float | None:
        """The latest heartbeat of ``host`` this controller received, flushed or not."""
        with self._lock:
            return self._latest.get(host)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self._latest)

    def freshest(self, host: str, stored: float) -> float:
        """The later of the database's ``last_heartbeat`` and the one kept here."""
        mine = self.latest(host)
        return stored if mine is None else max(stored, mine)

    def flush(self) -> int:
        """Write the heartbeats recorded since the last flush, in one statement; return
        how many hosts it covered. A failed flush keeps them for the next one."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        stmt = (
            update(hosts)
            .where(hosts.c.name == bindparam("host"), hosts.c.last_heartbeat < bindparam("at"))
            .values(last_heartbeat=bindparam("at"))
        )
        try:
            with self._engine.begin() as conn:
                conn.execute(stmt, [{"host": h, "at": t} for h, t in batch.items()])
        except BaseException:
            with self._lock:
                for h, t in batch.items():
                    if t > self._pending.get(h, float("-inf")):
                        self._pending[h] = t
            raise
        return len(batch)
