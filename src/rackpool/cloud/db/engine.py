"""Engine creation and schema upgrade through Alembic, for SQLite and PostgreSQL.

The two backends differ where the code meets them, and only here:

- SQLite (one controller): WAL, a busy timeout, foreign keys; every transaction that
  may write starts with ``BEGIN IMMEDIATE`` so transactions are serialised on the one
  write lock; ``reader(engine)`` transactions start a plain ``BEGIN`` (a WAL snapshot
  that never waits for the writer).
- PostgreSQL (one or several controllers, issue 10): READ COMMITTED through psycopg 3;
  code that must not race with another controller says so in SQL (``SELECT … FOR
  UPDATE``, ``SKIP LOCKED``, compare-and-set ``UPDATE``s, unique keys), which SQLite
  ignores or honours trivially under its single writer. ``reader`` changes nothing there
  (MVCC readers never wait). Schema upgrades and the start-up seeding hold an advisory
  lock, so two controllers starting at once do not both migrate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.exc import DBAPIError

from rackpool.cloud.db import url as db_url
from rackpool.cloud.db.schema import server_seq, servers

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
READ_ONLY = "rackpool_read_only"
# pg_advisory_lock key held while migrating and seeding ("rackpool" in ASCII, truncated)
STARTUP_LOCK = 0x7261636B706F6F6C
# SQLSTATEs after which a whole transaction may simply run again
RETRYABLE = ("40001", "40P01")  # serialization_failure, deadlock_detected


def reader(engine: Engine) -> Engine:
    """``engine`` for transactions that only read: on SQLite they never wait for the
    write lock (WAL readers see the last commit). Writing through it may fail with
    "database is locked" at once, so never write through it. On PostgreSQL every
    reader is like that already."""
    return engine.execution_options(**{READ_ONLY: True})


def is_postgresql(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "postgresql"


def make_engine(url: str, pool_size: int = 5) -> Engine:
    """Create an engine for ``url`` (see the module docstring for the backends).

    ``pool_size`` is how many threads use the database at once (the region's workers).
    SQL parameters (passwords, user data) never appear in an error's text, so not in a
    logged traceback either (``hide_parameters``).
    """
    url = db_url.normalize(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None},
            hide_parameters=True,
            pool_size=pool_size,
            max_overflow=pool_size,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            read = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        isolation_level="READ COMMITTED",
        connect_args={"connect_timeout": 10, "application_name": "rackpool-region"},
    )


@contextlib.contextmanager
def startup_lock(engine: Engine) -> Iterator[None]:
    """Held while a controller migrates and seeds: a second controller starting at the
    same time waits, then finds the work done. SQLite: nothing (one controller)."""
    if not is_postgresql(engine):
        yield
        return
    with engine.connect() as conn:
        conn.execute(select(func.pg_advisory_lock(STARTUP_LOCK)))
        conn.commit()
        try:
            yield
        finally:
            conn.execute(select(func.pg_advisory_unlock(STARTUP_LOCK)))
            conn.commit()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (controllers: inside
    ``startup_lock``, so two starting at once do not both migrate)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def next_server_seqs(conn: Connection, n: int) -> list[int]:
    """``n`` new, increasing server sequence numbers (the order servers are listed in).

    PostgreSQL: from a sequence, so two controllers never hand out the same number and
    never wait for each other. SQLite: one past the highest stored (writers are
    serialised by ``BEGIN IMMEDIATE``, so no two transactions read the same maximum).
    """
    if is_postgresql(conn):
        values = conn.execute(
            select(server_seq.next_value()).select_from(func.generate_series(1, n))
        ).scalars()
        return sorted(int(v) for v in values)
    top = int(conn.execute(select(func.max(servers.c.seq))).scalar() or 0)
    return list(range(top + 1, top + 1 + n))


def retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is a PostgreSQL serialization failure or deadlock: the database
    rolled the transaction back, and running it again is correct."""
    if not isinstance(exc, DBAPIError):
        return False
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in RETRYABLE


__all__ = [
    "MIGRATIONS",
    "is_postgresql",
    "make_engine",
    "next_server_seqs",
    "reader",
    "retryable",
    "startup_lock",
    "upgrade",
]
