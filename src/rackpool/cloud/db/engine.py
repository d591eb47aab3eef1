"""Engine creation and schema upgrade through Alembic."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
READ_ONLY = "rackpool_read_only"


def reader(engine: Engine) -> Engine:
    """``engine`` for transactions that only read: on SQLite they never wait for the
    write lock (WAL readers see the last commit). Writing through it may fail with
    "database is locked" at once, so never write through it."""
    return engine.execution_options(**{READ_ONLY: True})


def make_engine(url: str, pool_size: int = 5) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and foreign keys.

    ``pool_size`` is how many threads use the database at once (the region's workers).
    SQLite transactions start with ``BEGIN IMMEDIATE``: with several worker threads, a
    read that later writes would otherwise fail at once with "database is locked"
    (SQLite cannot upgrade a stale WAL snapshot) instead of waiting its turn.

    A connection of ``reader(engine)`` starts a plain (deferred) ``BEGIN`` instead: it
    only reads, so it takes a WAL snapshot and never waits for the writer.

    SQL parameters (passwords, user data) never appear in an error's text, so not in a
    logged traceback either (``hide_parameters``).
    """
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
        url, pool_pre_ping=True, hide_parameters=True, pool_size=pool_size, max_overflow=pool_size
    )


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
