"""Pool state persistence: the :class:`Store` interface and its implementations."""

from rackpool.pool.store.base import Store
from rackpool.pool.store.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store"]
