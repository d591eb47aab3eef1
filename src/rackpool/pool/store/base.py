"""The pool's persistence interface, shaped after what ZooKeeper offers (nodepool's engine).

Records (nodes, requests) are whole documents addressed by id with a ``version`` the
store bumps on every write: an update or delete naming an older version raises
:class:`~rackpool.pool.errors.StaleWrite` (compare-and-set), so several writers never
overwrite each other unseen. Ids come from sequences that are never reused.

Several launchers share one store (``ZooKeeperStore``); ``SqliteStore`` is the embedded
default for one launcher process. What several launchers need:

- **Registration**: each launcher registers under an id while it lives (an ephemeral
  znode); :meth:`Store.launchers` lists the live ones.
- **Locks**: a launcher holds a node's lock while it launches or deletes the node and a
  request's lock while it handles the request (nodepool's rule). :meth:`Store.lock` is a
  try-lock; a lock dies with its holder (ZooKeeper: the session), so another launcher
  takes the work over. :meth:`Store.exclusive` is a short blocking lock (a provider's
  launch admission: counting and creating under it keeps max-servers and quota).
- **Reads**: ``list_*`` may come from a watch-fed cache and lag other launchers' writes
  by a moment (writes are compare-and-set, so a stale read costs a retry, never a
  lost update); ``get_*`` and ``list_nodes(fresh=True)`` read the store itself.
- **Session**: :attr:`Store.session` changes whenever this process lost its locks
  (ZooKeeper session expiry); the launcher then drops the work it held.
- **Fencing**: a launcher that stalls (SIGSTOP, a long pause, a partition) past its
  session timeout loses its locks while it still believes it holds them. So the work a
  lock guards asks the store, not its memory: :meth:`Store.owns` verifies the lock with
  the store right before a create is sent and when its answer arrives, and writes made
  for locked work (``update_node(..., locked=True)``, ``delete_node(..., locked=True)``)
  are applied only while the lock is held (ZooKeeper: in the session that took the lock,
  never retried into a later one), else :class:`~rackpool.pool.errors.LockLost`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

from rackpool.pool.model import Node, NodeRequest

LockKind = Literal["node", "request"]


class Store(Protocol):
    # -- sequences ---------------------------------------------------------------------
    def next_id(self, kind: str) -> int:
        """A new, never reused, increasing sequence number for ``kind`` ("node", "request")."""

    # -- nodes -------------------------------------------------------------------------
    def create_node(self, node: Node, lock: bool = False) -> Node:
        """Store a new node; returns it with ``version`` 1. ``lock``: also take its lock,
        atomically (nobody else can grab a node this launcher is about to launch)."""

    def update_node(self, node: Node, locked: bool = False) -> Node:
        """Replace a node if its stored version equals ``node.version`` (else StaleWrite).
        ``locked``: only while this launcher holds the node's lock (else LockLost)."""

    def delete_node(self, node_id: str, version: int | None = None, locked: bool = False) -> None:
        """Remove a node (and its lock if held here); with ``version``, only that version
        (else StaleWrite). Deleting a missing node is not an error. ``locked``: only while
        this launcher holds the node's lock (else LockLost)."""

    def get_node(self, node_id: str) -> Node:
        """Raises UnknownNode."""

    def list_nodes(self, fresh: bool = False) -> list[Node]:
        """Every node; ``fresh``: read from the store now, not from a cache (counting
        for max-servers and quota under :meth:`exclusive`)."""

    # -- requests ----------------------------------------------------------------------
    def create_request(self, request: NodeRequest) -> NodeRequest: ...

    def update_request(self, request: NodeRequest, locked: bool = False) -> NodeRequest:
        """Compare-and-set as :meth:`update_node`; ``locked``: only while this launcher
        holds the request's lock (else LockLost)."""

    def delete_request(self, request_id: str, version: int | None = None) -> None: ...

    def get_request(self, request_id: str, cached: bool = False) -> NodeRequest:
        """Raises UnknownRequest. ``cached``: the cache's copy if it has one (polling)."""

    def list_requests(self) -> list[NodeRequest]: ...

    # -- provider flags and small shared records ---------------------------------------
    def set_paused(self, provider: str, paused: bool) -> None:
        """Operator's pause flag; survives restarts."""

    def paused_providers(self) -> set[str]: ...

    def get_meta(self, key: str) -> dict[str, Any]:
        """A small shared record (e.g. a provider's launch pacing); {} if never set."""

    def put_meta(self, key: str, value: dict[str, Any]) -> None: ...

    # -- several launchers -------------------------------------------------------------
    def register_launcher(self, launcher_id: str, info: dict[str, Any]) -> None:
        """Announce this launcher while this store (process, session) lives."""

    def launchers(self) -> dict[str, dict[str, Any]]:
        """Live launchers by id with what each registered."""

    def lock(self, kind: LockKind, key: str) -> bool:
        """Try to take a node's or request's lock for this launcher; False if another
        holds it. True again if this launcher already holds it."""

    def unlock(self, kind: LockKind, key: str) -> None: ...

    def held(self, kind: LockKind, key: str) -> bool:
        """Does this launcher hold the lock?"""

    def owns(self, kind: LockKind, key: str, wait: float = 0.0) -> bool:
        """Does this launcher hold the lock, verified with the store now (not from
        memory)? False when it cannot be verified within ``wait`` seconds (no connection,
        session ended); a lock found to be gone is forgotten (``held`` is False after)."""

    def locked_elsewhere(self, kind: LockKind, key: str) -> bool:
        """Does another launcher hold it, as far as this one last heard (may lag)?"""

    def exclusive(self, name: str, timeout: float) -> AbstractContextManager[bool]:
        """A blocking lock across launchers, held for the ``with`` block; yields False if
        not acquired within ``timeout`` seconds."""

    @property
    def session(self) -> int:
        """Changes whenever locks held here were lost (then none are held)."""

    @property
    def connected(self) -> bool:
        """False while the store cannot be reached (writes would fail)."""

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (any thread, no arguments) when another launcher changes
        records or the set of launchers; the launcher wakes its loop with it."""

    def close(self) -> None: ...
