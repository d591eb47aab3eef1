"""ZooKeeper implementation of :class:`~rackpool.pool.store.base.Store` (kazoo): several
launchers on one pool, the engine nodepool and Zuul deployments already run.

Layout under the chroot (``store: {zookeeper: {chroot: /rackpool}}``), close to
nodepool's ``/nodepool`` tree::

    /nodes/<id>             a node record (JSON); record version = znode version + 1
    /nodes-lock/<id>        ephemeral: the launcher launching or deleting the node
    /requests/<id>          a node request (id: priority-sequence, so names sort by priority)
    /requests-lock/<id>     ephemeral: the launcher handling the request
    /launchers/<id>         ephemeral: a live launcher (JSON: hostname, pid, url, started)
    /locks/<name>           ephemeral: a short store-wide lock (a provider's admission,
                            min-ready top-up); waiters watch it go
    /paused/<provider>      the operator's pause flag
    /meta/<key>             small shared records (a provider's launch pacing)
    /sequences/<kind>       node and request ids: the znode's version after each write

Locks are ephemeral znodes, so a launcher that dies (kill -9, lost machine) loses them
when ZooKeeper expires its session (``session-timeout``) and the others take its work
over. A lock lives in its own tree (``/nodes-lock``, nodepool's ``/requests-lock``) so
one children watch tells every launcher what is locked, and locking a node that was
just deleted cannot recreate it.

Reads of whole collections come from a watch-fed mirror (``list_*``): a launcher ticks
often and must not read every record from ZooKeeper each time. It can lag other
launchers' writes by a moment; writes are compare-and-set on the znode version, so a
stale read costs a retry, never a lost update. ``get_*`` and ``list_nodes(fresh=True)``
read ZooKeeper itself.

Connection loss (a ZooKeeper server dies, its ensemble elects a new leader) is ridden
out: each call is retried until ``op-timeout`` while kazoo reconnects the session to
another server. A write whose answer was lost on the way is checked on retry (a create
that finds its znode holding our data, a set that finds our version) instead of being
reported as a conflict.

Fencing (a launcher that stalled past its session timeout and resumed): the locks of an
expired session are gone at once, but the stalled process learns it only when it talks
to ZooKeeper again. So work under a lock does not trust memory: :meth:`owns` asks
ZooKeeper whether the lock znode is still this session's (an answer that took longer
than half the session timeout proves nothing and counts as lost), and writes made for
locked work are bound to the session the lock was taken in: sent in that session or
not at all (a session the server expired refuses them; a retry never carries them into
the next session), so they land only while the lock exists.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    RolledBackError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import EventType, KazooState, WatchedEvent

from rackpool.core.errors import TemporaryError
from rackpool.pool.errors import LockLost, StaleWrite, UnknownNode, UnknownRequest
from rackpool.pool.model import Node, NodeRequest
from rackpool.pool.store.base import LockKind

log = logging.getLogger("rackpool.pool.store")

_RETRYABLE = (ConnectionLoss, OperationTimeoutError, SessionExpiredError, KazooTimeoutError)
_DIRS = ("/nodes", "/nodes-lock", "/requests", "/requests-lock", "/launchers", "/locks",
         "/paused", "/meta", "/sequences/node", "/sequences/request")  # fmt: skip


class StoreUnavailable(TemporaryError):
    """ZooKeeper could not be reached within the operation timeout."""


class _SessionEnded(Exception):
    """The session a lock was held in ended: the lock is gone (maybe someone else's now)."""


def _encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def _decode(raw: bytes) -> dict[str, Any]:
    return dict(json.loads(raw.decode())) if raw else {}


def _settled(node: dict[str, Any]) -> bool:
    """A node past building keeps its provider, label, resources and server until it is
    deleted: for counting (max-servers, quota, launches in flight, static hosts, leaks)
    the mirror's copy is as good as a read."""
    return node.get("state") != "building"


class _Mirror:
    """Records under one parent znode, kept current by watches (children + each child)."""

    def __init__(self, store: ZooKeeperStore, path: str) -> None:
        self.store = store
        self.client = store.client
        self.path = path
        self.items: dict[str, tuple[int, dict[str, Any]]] = {}  # id -> (version, data)
        self._gone: set[str] = set()  # deleted ids (never reused): no late resurrection
        self._lock = threading.Lock()
        self._decoded: dict[str, tuple[int, Any]] = {}  # id -> (version, record object)

    def start(self) -> None:
        """(Re)read everything and set every watch: at start and after each reconnect
        (kazoo drops all watches when a connection drops)."""
        self._list(everything=True)

    def _list(self, event: WatchedEvent | None = None, everything: bool = False) -> None:
        if self.store.closed or (event is not None and event.type == EventType.NONE):
            return  # NONE: the connection dropped (kazoo dropped every watch): resync()
        res = self.client.get_children_async(self.path, watch=self._list)
        res.rawlink(lambda r: self._got_children(r, everything))

    def _got_children(self, res: Any, everything: bool) -> None:
        try:
            children = set(res.get())
        except KazooException:
            return  # reconnecting: resync() lists again
        with self._lock:
            removed = set(self.items) - children
            for cid in removed:
                del self.items[cid]
            self._gone &= children  # a listing without it: no answer about it is in flight
            new = (children if everything else children - set(self.items)) - self._gone
        for cid in new:
            self._fetch(cid)
        if removed:
            self.store.changed()

    def _fetch(self, cid: str) -> None:
        res = self.client.get_async(f"{self.path}/{cid}", watch=self._data_changed)
        res.rawlink(lambda r: self._got_data(cid, r))

    def _data_changed(self, event: WatchedEvent) -> None:
        if event.type == EventType.NONE or not event.path:
            return  # the connection dropped: resync() reads everything again
        cid = event.path.rsplit("/", 1)[-1]
        if event.type == EventType.DELETED:
            self.remove(cid)
            self.store.changed()
        elif not self.store.closed:
            self._fetch(cid)

    def _got_data(self, cid: str, res: Any) -> None:
        try:
            raw, stat = res.get()
        except NoNodeError:
            self.remove(cid)
            return
        except KazooException:
            return
        if self.put(cid, stat.version + 1, _decode(raw)):
            self.store.changed()

    def put(self, cid: str, version: int, data: dict[str, Any]) -> bool:
        """Keep the newer of what we have and ``version``; True if it changed."""
        with self._lock:
            if cid in self._gone:
                return False
            have = self.items.get(cid)
            if have is not None and have[0] >= version:
                return False
            self.items[cid] = (version, data)
            return True

    def remove(self, cid: str) -> None:
        with self._lock:
            self.items.pop(cid, None)
            self._gone.add(cid)

    def get(self, cid: str) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            return self.items.get(cid)

    def values(self) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            return [self.items[k] for k in sorted(self.items)]

    def records(self, decode: Callable[[dict[str, Any]], Any]) -> list[Any]:
        """Every record as an object; one decoded before at the same version is reused
        (a launcher lists every pass)."""
        with self._lock:
            items = sorted(self.items.items())
        cache, out = self._decoded, []
        fresh: dict[str, tuple[int, Any]] = {}
        for cid, (version, data) in items:
            hit = cache.get(cid)
            if hit is None or hit[0] != version:
                hit = (version, decode({**data, "version": version}))
            fresh[cid] = hit
            out.append(hit[1])
        self._decoded = fresh
        return out


class _Names:
    """The children names of one znode (locks, launchers, pause flags), watched."""

    def __init__(self, store: ZooKeeperStore, path: str) -> None:
        self.store = store
        self.path = path
        self.names: set[str] = set()

    def start(self, event: WatchedEvent | None = None) -> None:
        if self.store.closed or (event is not None and event.type == EventType.NONE):
            return
        res = self.store.client.get_children_async(self.path, watch=self.start)
        res.rawlink(self._got)

    def _got(self, res: Any) -> None:
        try:
            names = set(res.get())
        except KazooException:
            return
        changed = names != self.names
        self.names = names
        if changed:
            self.store.changed()


class ZooKeeperStore:
    def __init__(
        self,
        hosts: str,
        chroot: str = "/rackpool",
        *,
        ca: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        session_timeout: float = 10.0,
        connect_timeout: float = 15.0,
        op_timeout: float = 30.0,
    ) -> None:
        self.hosts = hosts
        self.chroot = "/" + chroot.strip("/") if chroot.strip("/") else ""
        self.op_timeout = op_timeout
        self.session_timeout = session_timeout
        self.closed = False
        self.launcher_id = ""
        self._info: dict[str, Any] = {}
        self._held: dict[tuple[str, str], int] = {}  # lock -> the session it was taken in
        self._session = 0
        self._lost = False
        self._dropped = False
        self._callbacks: list[Callable[[], None]] = []
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._connected = threading.Event()
        tls: dict[str, Any] = {}
        if ca or cert:
            tls = {"use_ssl": True, "ca": ca, "certfile": cert, "keyfile": key}
            tls["verify_certs"] = True
        self.client = KazooClient(
            hosts=hosts,
            timeout=session_timeout,
            connection_retry={"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": 1.0},
            command_retry={"max_tries": 3, "delay": 0.1, "max_delay": 1.0},
            logger=logging.getLogger("rackpool.pool.store.kazoo"),
            **tls,
        )
        self.client.add_listener(self._state_changed)
        try:
            self.client.start(timeout=connect_timeout)
        except KazooTimeoutError:
            self._shutdown()
            raise StoreUnavailable(
                f"store.zookeeper.hosts: no ZooKeeper session with {hosts} within "
                f"{connect_timeout:.0f}s" + (" (TLS)" if tls else "")
            ) from None
        try:
            if self.chroot:
                self.client.ensure_path(self.chroot)
                self.client.chroot = self.chroot
            for d in _DIRS:
                self.client.ensure_path(d)
        except KazooException as exc:
            self._shutdown()
            raise StoreUnavailable(
                f"store.zookeeper: cannot set up {self.chroot}: {exc!r}"
            ) from exc
        self._nodes = _Mirror(self, "/nodes")
        self._requests = _Mirror(self, "/requests")
        self._lock_names = {
            "node": _Names(self, "/nodes-lock"),
            "request": _Names(self, "/requests-lock"),
        }
        self._launchers = _Names(self, "/launchers")
        self._paused = _Names(self, "/paused")
        self._resync()
        self._prime()

    def _prime(self) -> None:
        """Read everything once now: a launcher's first pass sees the whole store, not
        what the watches delivered so far."""
        for mirror in (self._nodes, self._requests):
            self._fresh(mirror)
        for names in (*self._lock_names.values(), self._launchers, self._paused):
            children, _ = self._call("get_children", names.path)
            names.names = set(children)

    # -- connection --------------------------------------------------------------------
    def _state_changed(self, state: str) -> None:
        """kazoo's connection thread: never block here."""
        if state == KazooState.CONNECTED:
            self._connected.set()
            if self._lost:
                self._lost = False
                self.client.handler.spawn(self._new_session)
            elif self._dropped:
                self.client.handler.spawn(self._reconnected)
            self._dropped = False
        elif state == KazooState.SUSPENDED:
            self._connected.clear()
            self._dropped = True
        elif state == KazooState.LOST:
            self._connected.clear()
            if not self.closed:
                self._lost = True
                self._session += 1
                self._held.clear()
                log.warning("ZooKeeper session lost: this launcher's locks are gone")

    def _reconnected(self) -> None:
        log.warning("ZooKeeper connection back (same session): reloading the store")
        self._resync()
        self.changed()

    def _new_session(self) -> None:
        log.warning("new ZooKeeper session: registering again and reloading the store")
        try:
            if self.launcher_id:
                self.register_launcher(self.launcher_id, self._info)
            self._resync()
        except Exception:  # noqa: BLE001 - the next loss/reconnect tries again
            log.exception("resync after a new ZooKeeper session failed")
        self.changed()

    def _resync(self) -> None:
        for mirror in (self._nodes, self._requests):
            mirror.start()
        for names in (*self._lock_names.values(), self._launchers, self._paused):
            names.start()

    def changed(self) -> None:
        for cb in list(self._callbacks):
            try:
                cb()
            except Exception:  # noqa: BLE001
                log.exception("store watch callback failed")

    def watch(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    @property
    def session(self) -> int:
        return self._session

    @property
    def connected(self) -> bool:
        return self._connected.is_set() and not self.closed

    def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.client.stop()
        with contextlib.suppress(Exception):
            self.client.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._shutdown()  # the session ends: our ephemeral locks and registration go now

    def _call(
        self, method: str, *args: Any, session: int | None = None, **kw: Any
    ) -> tuple[Any, bool]:
        """``client.<method>_async(...)``, riding out connection loss until op-timeout.

        Returns (result, retried): ``retried`` says an earlier attempt may have been
        applied although its answer was lost (the caller checks what it finds); an error
        raised after such a retry carries ``retried = True`` too. ``session``: only within
        that session (a call about a lock it holds: never retried on a later session)."""
        deadline = time.monotonic() + self.op_timeout
        retried = False
        while True:
            if self.closed:
                raise StoreUnavailable("the ZooKeeper store is closed")
            if session is not None and session != self._session:
                raise _SessionEnded()
            try:
                res = getattr(self.client, method + "_async")(*args, **kw)
                return res.get(timeout=max(0.05, deadline - time.monotonic())), retried
            except ConnectionClosedError as exc:
                if self.closed:
                    raise StoreUnavailable("the ZooKeeper store is closed") from exc
                exc_: Exception = exc
            except _RETRYABLE as exc:
                exc_ = exc
            except KazooException as exc:
                exc.retried = retried  # type: ignore[attr-defined]
                raise
            retried = True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StoreUnavailable(
                    f"ZooKeeper {self.hosts}: {method} {args[0] if args else ''} failed for "
                    f"{self.op_timeout:.0f}s: {type(exc_).__name__}"
                ) from exc_
            self._connected.wait(min(remaining, 0.5))
            time.sleep(0.02)

    def _commit(
        self, ops: Callable[[Any], None], session: int | None = None
    ) -> tuple[list[Any], bool]:
        """A multi-op transaction with the same retry as :meth:`_call` (``session``: only
        within that session)."""
        deadline = time.monotonic() + self.op_timeout
        retried = False
        while True:
            if self.closed:
                raise StoreUnavailable("the ZooKeeper store is closed")
            if session is not None and session != self._session:
                raise _SessionEnded()
            t = self.client.transaction()
            ops(t)
            try:
                res = t.commit_async().get(timeout=max(0.05, deadline - time.monotonic()))
                return list(res), retried
            except _RETRYABLE as exc:
                retried = True
                if time.monotonic() > deadline:
                    raise StoreUnavailable(f"ZooKeeper {self.hosts}: transaction failed") from exc
                self._connected.wait(min(deadline - time.monotonic(), 0.5))
                time.sleep(0.02)

    def _owned(self, path: str) -> bool:
        """Is the ephemeral znode at ``path`` this session's?"""
        stat, _ = self._call("exists", path)
        me = self.client.client_id
        return stat is not None and me is not None and stat.ephemeralOwner == me[0]

    # -- sequences ---------------------------------------------------------------------
    def next_id(self, kind: str) -> int:
        # the znode's version counts the writes to it: each set is a new, higher number
        stat, _ = self._call("set", f"/sequences/{kind}", b"")
        return int(stat.version)

    # -- records -----------------------------------------------------------------------
    def _create(self, mirror: _Mirror, rid: str, data: dict[str, Any], lock: str | None) -> None:
        data["version"] = 1
        raw = _encode(data)
        path = f"{mirror.path}/{rid}"
        me = _encode({"launcher": self.launcher_id})

        def ops(t: Any) -> None:
            t.create(path, raw)
            if lock:
                t.create(lock, me, ephemeral=True)

        results, retried = self._commit(ops)
        errors = [r for r in results if isinstance(r, Exception)]
        real = [e for e in errors if not isinstance(e, RolledBackError)]
        if real:
            if isinstance(real[0], NodeExistsError) and retried:
                found, _ = self._call("get", path)
                if found[0] == raw and (not lock or self._owned(lock)):
                    errors = []  # our earlier attempt got through
            if errors:
                if isinstance(real[0], NodeExistsError):
                    raise StaleWrite(f"{mirror.path[1:]} record {rid} already exists")
                raise real[0]
        mirror.put(rid, 1, data)
        # watch it from now on (the children watch will not fetch what we already hold)
        self.client.exists_async(path, watch=mirror._data_changed)

    def _update(
        self, mirror: _Mirror, rid: str, data: dict[str, Any], session: int | None = None
    ) -> int:
        old = int(data["version"])
        data["version"] = old + 1
        raw = _encode(data)
        path = f"{mirror.path}/{rid}"
        try:
            stat, _ = self._call("set", path, raw, version=old - 1, session=session)
        except BadVersionError:
            found, stat = self._get_raw(path)
            if found != raw or stat is None or stat.version != old:
                raise StaleWrite(
                    f"{mirror.path[1:]} record {rid} changed since version {old}"
                ) from None
        except NoNodeError:
            raise StaleWrite(f"{mirror.path[1:]} record {rid} is gone") from None
        mirror.put(rid, old + 1, data)
        return old + 1

    def _get_raw(self, path: str, watch: Any = None) -> tuple[bytes | None, Any]:
        try:
            (raw, stat), _ = self._call("get", path, watch=watch)
        except NoNodeError:
            return None, None
        return raw, stat

    def _delete(
        self,
        mirror: _Mirror,
        rid: str,
        version: int | None,
        lock: tuple[str, int | None],
        locked: bool = False,
    ) -> None:
        """Delete a record, and in the same transaction its lock if held (in the current
        session: a lock from an ended session is gone, maybe someone else's now).
        ``locked``: only with the lock, in the session that took it (else LockLost)."""
        path = f"{mirror.path}/{rid}"
        zversion = -1 if version is None else version - 1
        lock_path = lock[0] if lock[1] is not None and lock[1] == self._session else None
        if locked and lock_path is None:
            raise LockLost(f"{mirror.path[1:]} record {rid}: its lock is not held here")

        def ops(t: Any) -> None:
            t.delete(path, version=zversion)
            if lock_path:
                t.delete(lock_path)

        try:
            results, retried = self._commit(ops, session=lock[1] if locked else None)
        except _SessionEnded:
            raise LockLost(f"{mirror.path[1:]} record {rid}: the lock's session ended") from None
        if not any(isinstance(r, Exception) for r in results):
            mirror.remove(rid)
            return
        if isinstance(results[0], NoNodeError):  # already gone (maybe by our lost attempt)
            if lock_path:
                self._release(lock_path, self._session)
            mirror.remove(rid)
            return
        if isinstance(results[0], BadVersionError):
            raise StaleWrite(f"{mirror.path[1:]} record {rid} changed since version {version}")
        if lock_path and isinstance(results[0], RolledBackError):  # our lock vanished meanwhile
            if locked:
                raise LockLost(f"{mirror.path[1:]} record {rid}: its lock vanished")
            self._delete(mirror, rid, version, (lock[0], None))
            return
        raise next(
            r for r in results if isinstance(r, Exception) and not isinstance(r, RolledBackError)
        )

    def _release(self, path: str, session: int) -> None:
        """Delete a lock znode taken in ``session`` (nothing if that session ended)."""
        with contextlib.suppress(NoNodeError, _SessionEnded, StoreUnavailable):
            self._call("delete", path, session=session)

    def _fetch(self, mirror: _Mirror, rid: str) -> tuple[int, dict[str, Any]] | None:
        # every record in the mirror has a data watch: another launcher's write shows
        raw, stat = self._get_raw(f"{mirror.path}/{rid}", watch=mirror._data_changed)
        if raw is None:
            return None
        data = _decode(raw)
        mirror.put(rid, stat.version + 1, data)
        return stat.version + 1, data

    # -- nodes -------------------------------------------------------------------------
    def create_node(self, node: Node, lock: bool = False) -> Node:
        lock_path = f"/nodes-lock/{node.id}" if lock else None
        self._create(self._nodes, node.id, node.to_dict(), lock_path)
        if lock:
            self._held[("node", node.id)] = self._session
        return node.evolve(version=1)

    def _lock_session(self, kind: LockKind, key: str, locked: bool) -> int | None:
        """The session a write for locked work is bound to (None: not bound)."""
        if not locked:
            return None
        session = self._held.get((kind, key))
        if session is None or session != self._session:
            raise LockLost(f"{kind} {key}: this launcher does not hold its lock")
        return session

    def _locked_update(
        self, mirror: _Mirror, kind: LockKind, key: str, data: dict[str, Any], locked: bool
    ) -> int:
        """Write a record; with ``locked``, only in the session that holds its lock."""
        session = self._lock_session(kind, key, locked)
        try:
            return self._update(mirror, key, data, session=session)
        except _SessionEnded:
            raise LockLost(f"{kind} {key}: the session holding its lock ended") from None

    def update_node(self, node: Node, locked: bool = False) -> Node:
        version = self._locked_update(self._nodes, "node", node.id, node.to_dict(), locked)
        return node.evolve(version=version)

    def delete_node(self, node_id: str, version: int | None = None, locked: bool = False) -> None:
        lock = self._held.get(("node", node_id))
        try:
            self._delete(self._nodes, node_id, version, ("/nodes-lock/" + node_id, lock), locked)
        except LockLost:
            self._held.pop(("node", node_id), None)
            raise
        self._held.pop(("node", node_id), None)

    def get_node(self, node_id: str) -> Node:
        got = self._fetch(self._nodes, node_id)
        if got is None:
            raise UnknownNode(f"node {node_id} not found")
        return Node.from_dict({**got[1], "version": got[0]})

    def list_nodes(self, fresh: bool = False) -> list[Node]:
        if not fresh:
            return list(self._nodes.records(Node.from_dict))
        items = self._fresh(self._nodes, _settled)
        return [Node.from_dict({**d, "version": v}) for v, d in items]

    def _fresh(
        self, mirror: _Mirror, settled: Callable[[dict[str, Any]], bool] | None = None
    ) -> list[tuple[int, dict[str, Any]]]:
        """The records that exist now. A record the mirror holds and ``settled`` says no
        longer changes in ways that matter is taken from the mirror; the rest are read."""
        children, _ = self._call("get_children", mirror.path)
        out = []
        pending = []
        for cid in sorted(children):
            have = mirror.get(cid)
            if have is not None and settled is not None and settled(have[1]):
                out.append(have)
            else:
                get = self.client.get_async(f"{mirror.path}/{cid}", watch=mirror._data_changed)
                pending.append((cid, get))
        for cid, res in pending:
            try:
                raw, stat = res.get(timeout=self.op_timeout)
            except NoNodeError:
                continue
            except _RETRYABLE:
                got = self._fetch(mirror, cid)  # retried one by one
                if got is not None:
                    out.append(got)
                continue
            data = _decode(raw)
            mirror.put(cid, stat.version + 1, data)
            out.append((stat.version + 1, data))
        return out

    # -- requests ----------------------------------------------------------------------
    def create_request(self, request: NodeRequest) -> NodeRequest:
        self._create(self._requests, request.id, request.to_dict(), None)
        return request.evolve(version=1)

    def update_request(self, request: NodeRequest, locked: bool = False) -> NodeRequest:
        data = request.to_dict()
        version = self._locked_update(self._requests, "request", request.id, data, locked)
        return request.evolve(version=version)

    def delete_request(self, request_id: str, version: int | None = None) -> None:
        lock = self._held.get(("request", request_id))
        self._delete(self._requests, request_id, version, ("/requests-lock/" + request_id, lock))
        self._held.pop(("request", request_id), None)

    def get_request(self, request_id: str, cached: bool = False) -> NodeRequest:
        got = self._requests.get(request_id) if cached else None
        if got is None:
            got = self._fetch(self._requests, request_id)
        if got is None:
            raise UnknownRequest(f"request {request_id} not found")
        return NodeRequest.from_dict({**got[1], "version": got[0]})

    def list_requests(self) -> list[NodeRequest]:
        return list(self._requests.records(NodeRequest.from_dict))

    # -- flags and shared records ------------------------------------------------------
    def set_paused(self, provider: str, paused: bool) -> None:
        path = f"/paused/{provider}"
        if paused:
            with contextlib.suppress(NodeExistsError):
                self._call("create", path, b"")
            self._paused.names = self._paused.names | {provider}
        else:
            with contextlib.suppress(NoNodeError):
                self._call("delete", path)
            self._paused.names = self._paused.names - {provider}

    def paused_providers(self) -> set[str]:
        return set(self._paused.names)

    def get_meta(self, key: str) -> dict[str, Any]:
        raw, _ = self._get_raw(f"/meta/{key}")
        return {} if raw is None else _decode(raw)

    def put_meta(self, key: str, value: dict[str, Any]) -> None:
        path = f"/meta/{key}"
        try:
            self._call("set", path, _encode(value))
        except NoNodeError:
            try:
                self._call("create", path, _encode(value))
            except NodeExistsError:
                self._call("set", path, _encode(value))

    # -- several launchers -------------------------------------------------------------
    def register_launcher(self, launcher_id: str, info: dict[str, Any]) -> None:
        self.launcher_id, self._info = launcher_id, dict(info)
        path = f"/launchers/{launcher_id}"
        try:
            self._call("create", path, _encode({"id": launcher_id, **info}), ephemeral=True)
        except NodeExistsError:
            if not self._owned(path):
                raise StaleWrite(
                    f"launcher id {launcher_id} is registered by another process"
                ) from None
        self._launchers.names = self._launchers.names | {launcher_id}

    def launchers(self) -> dict[str, dict[str, Any]]:
        children, _ = self._call("get_children", "/launchers")
        out = {}
        for name in sorted(children):
            raw, _stat = self._get_raw(f"/launchers/{name}")
            if raw is not None:
                out[name] = _decode(raw)
        return out

    def live_launchers(self) -> set[str]:
        """Launcher ids as last heard from the watch (no ZooKeeper call)."""
        return set(self._launchers.names)

    def _lock_path(self, kind: LockKind, key: str) -> str:
        return f"/{kind}s-lock/{key}"

    def lock(self, kind: LockKind, key: str) -> bool:
        if (kind, key) in self._held:
            return True
        path = self._lock_path(kind, key)
        session = self._session
        try:
            self._call("create", path, _encode({"launcher": self.launcher_id}), ephemeral=True)
        except NodeExistsError as exc:
            # ours only if an earlier attempt's answer was lost
            if not (getattr(exc, "retried", False) and self._owned(path)):
                return False
        if session != self._session:  # the session ended meanwhile: the lock is not ours
            return False
        self._held[(kind, key)] = session
        return True

    def unlock(self, kind: LockKind, key: str) -> None:
        session = self._held.pop((kind, key), None)
        if session is not None:
            self._release(self._lock_path(kind, key), session)

    def held(self, kind: LockKind, key: str) -> bool:
        return (kind, key) in self._held

    def owns(self, kind: LockKind, key: str, wait: float = 0.0) -> bool:
        """Ask ZooKeeper whether the lock znode is this session's. The answer counts only
        if it came within half the session timeout of asking: a launcher that stalled
        meanwhile cannot tell whether the server expired its session (and gave the lock
        to another launcher) in between. While disconnected, wait up to ``wait`` seconds
        for a connection (a reconnect in the same session keeps the lock)."""
        deadline = time.monotonic() + wait
        path = self._lock_path(kind, key)
        # half the session timeout asked for (kazoo does not expose what the server
        # granted; a server whose maxSessionTimeout is below half of it is misconfigured)
        lease = self.session_timeout / 2
        while True:
            session = self._held.get((kind, key))
            if self.closed or session is None or session != self._session:
                return False
            if self._connected.is_set():
                asked = time.monotonic()
                try:
                    stat = self.client.exists_async(path).get(timeout=max(0.05, lease))
                except (KazooException, KazooTimeoutError):
                    stat = False  # no answer: not verified (yet)
                if stat is not False:
                    me = self.client.client_id
                    ours = stat is not None and me is not None and stat.ephemeralOwner == me[0]
                    if not ours:
                        if self._held.get((kind, key)) == session:
                            self._held.pop((kind, key), None)  # gone: never ours again
                        log.warning("lock %s is no longer this launcher's", path)
                        return False
                    if session == self._session and time.monotonic() - asked < lease:
                        return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._connected.wait(min(remaining, 0.1))
            time.sleep(0.01)

    def locked_elsewhere(self, kind: LockKind, key: str) -> bool:
        return key in self._lock_names[kind].names and (kind, key) not in self._held

    @contextlib.contextmanager
    def exclusive(self, name: str, timeout: float) -> Iterator[bool]:
        path = f"/locks/{name}"
        deadline = time.monotonic() + timeout
        session = self._session
        got = False
        me = _encode({"launcher": self.launcher_id})
        with self._locks_guard:
            guard = self._locks.setdefault(name, threading.Lock())
        if not guard.acquire(timeout=timeout):  # one holder per process too
            yield False
            return
        try:
            while not got and time.monotonic() < deadline:
                try:
                    self._call("create", path, me, ephemeral=True, makepath=True)
                    got = True
                    break
                except NodeExistsError:
                    pass
                gone = threading.Event()
                stat, _ = self._call("exists", path, watch=lambda _e, g=gone: g.set())
                owner = self.client.client_id
                if stat is not None and owner is not None and stat.ephemeralOwner == owner[0]:
                    got = True  # our create got through; its answer was lost
                elif stat is not None:
                    gone.wait(max(0.0, deadline - time.monotonic()))
            got = got and session == self._session
            yield got
        finally:
            if got:
                self._release(path, session)
            guard.release()
