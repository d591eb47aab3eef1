"""Pool state persistence: the :class:`Store` interface and its implementations.

``SqliteStore`` (embedded default, one launcher) and ``ZooKeeperStore`` (several
launchers; imported only when configured, so kazoo stays off the default start path).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rackpool.pool.store.base import LockKind, Store
from rackpool.pool.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from rackpool.pool.config import PoolConfig

__all__ = ["LockKind", "SqliteStore", "Store", "open_store"]


def open_store(config: PoolConfig) -> Store:
    """The store ``pool.yaml`` names: ``store: {zookeeper: ...}`` or an SQLite file."""
    zk = config.zookeeper
    if zk is None:
        return SqliteStore(config.store_path())
    from rackpool.pool.store.zookeeper import ZooKeeperStore

    tls = zk.tls
    return ZooKeeperStore(
        zk.hosts,
        zk.chroot,
        ca=tls.ca if tls else None,
        cert=tls.cert if tls else None,
        key=tls.key if tls else None,
        session_timeout=zk.session_timeout,
        connect_timeout=zk.connect_timeout,
        op_timeout=zk.op_timeout,
    )
