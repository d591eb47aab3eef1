"""A real PostgreSQL for the tests: one cluster per session, a fresh database per use.

    @pytest.fixture(scope="session")
    def postgres() -> Iterator[PostgresCluster]: ...   # re-export this fixture

    url = new_database(cluster, "test_servers")         # postgresql://…/test_servers_3

The cluster is Debian's PostgreSQL (``initdb`` + ``postgres`` as the ``postgres`` user
in a private temporary directory, 127.0.0.1 on a free port, password login), without
fsync (throwaway data). It is stopped by PID and its directory removed when the session
ends, even after a failure. Missing binaries skip (a failure under ``CI=true``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator

import pytest

from rackpool.cli.localservices import PostgresCluster, postgres_bin

_names = itertools.count(1)
NewDatabase = Callable[[], "str | None"]  # a fresh database's URL, or None for SQLite


def start_cluster() -> PostgresCluster:
    if postgres_bin("initdb") is None or postgres_bin("postgres") is None:
        pytest.skip("PostgreSQL server binaries not installed (./dev installs postgresql)")
    return PostgresCluster.create(durable=False).start()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


def new_database(cluster: PostgresCluster, hint: str = "t") -> str:
    """A new empty database (the region migrates it); its URL, password included."""
    base = re.sub(r"[^a-z0-9_]", "_", hint.lower())[:40] or "t"
    return cluster.create_database(f"{base}_{next(_names)}")
