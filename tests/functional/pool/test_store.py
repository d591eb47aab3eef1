"""The pool's Store contract, run against SQLite and a real ZooKeeper alike.

What several launchers rely on (locks of another process, a dead session's locks
vanishing, the watch-fed mirror catching up) is checked where the store has several
processes (ZooKeeper); SQLite is one process, so it must simply never refuse its own.
"""

from __future__ import annotations

import threading
import time

import pytest

from rackpool.core.clock import wait_for
from rackpool.core.states import NodeState, RequestState
from rackpool.pool.errors import StaleWrite, UnknownNode, UnknownRequest
from rackpool.pool.model import Node, NodeRequest
from rackpool.pool.store import SqliteStore

from .conftest import Stores


def node(nid: str, **kw: object) -> Node:
    base: dict = dict(id=nid, label="small", provider="p1", pool="main",
                      state=NodeState.BUILDING, state_time=1.0, created=1.0)  # fmt: skip
    base.update(kw)
    return Node(**base)


def request(rid: str, **kw: object) -> NodeRequest:
    base: dict = dict(id=rid, labels=("small",), state=RequestState.REQUESTED,
                      state_time=1.0, created=1.0)  # fmt: skip
    base.update(kw)
    return NodeRequest(**base)


def test_sequences_increase_and_are_never_reused(stores: Stores) -> None:
    a, b = stores.open(), stores.open()
    got = [a.next_id("node"), b.next_id("node"), a.next_id("node"), b.next_id("request")]
    assert got[0] < got[1] < got[2] and all(x > 0 for x in got)
    assert len({*got[:3]}) == 3


def test_node_records_are_compare_and_set(stores: Stores) -> None:
    s = stores.open()
    n = s.create_node(node("0000000001", launch_state={"machine": {"state": "start"}}))
    assert n.version == 1
    with pytest.raises(StaleWrite):
        s.create_node(node("0000000001"))
    n2 = s.update_node(n.evolve(state=NodeState.READY, host_keys=("ssh-ed25519 AAAA",)))
    assert n2.version == 2
    got = s.get_node(n.id)
    assert got == n2 and got.host_keys == ("ssh-ed25519 AAAA",)
    with pytest.raises(StaleWrite):
        s.update_node(n.evolve(comment="from a stale read"))
    assert s.get_node(n.id).comment == ""
    assert [x.id for x in s.list_nodes()] == [n.id]  # a writer reads its own writes
    assert [x.version for x in s.list_nodes(fresh=True)] == [2]
    with pytest.raises(StaleWrite):
        s.delete_node(n.id, version=1)
    s.delete_node(n.id, version=2)
    s.delete_node(n.id)  # deleting what is gone is fine
    with pytest.raises(UnknownNode):
        s.get_node(n.id)
    assert s.list_nodes() == [] and s.list_nodes(fresh=True) == []


def test_request_records_are_compare_and_set(stores: Stores) -> None:
    s = stores.open()
    r = s.create_request(request("100-0000000001", extra={"k": "v"}))
    assert r.version == 1
    r2 = s.update_request(r.evolve(state=RequestState.PENDING, nodes=("0000000001",)))
    with pytest.raises(StaleWrite):
        s.update_request(r.evolve(state=RequestState.FAILED))
    assert s.get_request(r.id) == r2 and s.get_request(r.id, cached=True) == r2
    assert [x.id for x in s.list_requests()] == [r.id]
    with pytest.raises(StaleWrite):
        s.delete_request(r.id, version=1)
    s.delete_request(r.id, version=2)
    with pytest.raises(UnknownRequest):
        s.get_request(r.id, cached=True)


def test_another_writer_is_seen(stores: Stores) -> None:
    a, b = stores.open(), stores.open()
    a.create_node(node("0000000007"))
    r = a.create_request(request("100-0000000009"))
    assert [n.id for n in b.list_nodes(fresh=True)] == ["0000000007"]
    # the mirror behind list_* catches up by itself (watches), without fresh reads
    wait_for(lambda: [x.id for x in b.list_requests()] == [r.id], 5, "b sees a's request")
    a.update_request(r.evolve(state=RequestState.PENDING))
    wait_for(lambda: b.list_requests()[0].version == 2, 5, "b sees a's update")
    assert b.get_request(r.id).state == RequestState.PENDING  # get_* reads the store
    a.delete_request(r.id)
    wait_for(lambda: b.list_requests() == [], 5, "b sees the delete")
    # and what a created itself, b changes: a's copy follows (a watches its own records)
    n = b.get_node("0000000007")
    b.update_node(n.evolve(state=NodeState.READY))
    wait_for(lambda: a.list_nodes()[0].state == NodeState.READY, 5, "a sees b's update")
    b.update_node(b.get_node(n.id).evolve(state=NodeState.IN_USE))
    wait_for(lambda: a.list_nodes()[0].state == NodeState.IN_USE, 5, "and the next one")
    b.delete_node(n.id)
    wait_for(lambda: a.list_nodes() == [], 5, "a sees b's delete")


def test_flags_and_shared_records(stores: Stores) -> None:
    a, b = stores.open(), stores.open()
    a.set_paused("p1", True)
    a.set_paused("p1", True)
    assert a.paused_providers() == {"p1"}
    wait_for(lambda: b.paused_providers() == {"p1"}, 5, "b sees the pause")
    b.set_paused("p1", False)
    wait_for(lambda: a.paused_providers() == set(), 5, "a sees the resume")
    assert a.get_meta("provider-p1") == {}
    a.put_meta("provider-p1", {"next-submit": 12.5})
    a.put_meta("provider-p1", {"next-submit": 13.5})
    assert b.get_meta("provider-p1") == {"next-submit": 13.5}


def test_locks_are_held_by_one_launcher(stores: Stores) -> None:
    a = stores.open()
    a.register_launcher("a", {"url": "http://a"})
    assert a.launchers()["a"]["url"] == "http://a"
    n = a.create_node(node("0000000003"), lock=True)
    assert a.held("node", n.id) and a.lock("node", n.id)  # re-entrant for its holder
    assert a.lock("request", "100-0000000001") and a.held("request", "100-0000000001")
    a.unlock("request", "100-0000000001")
    assert not a.held("request", "100-0000000001")
    with a.exclusive("provider-p1", 1) as got:
        assert got
    a.delete_node(n.id)
    assert not a.held("node", n.id)  # deleting a node lets go of its lock


def test_sqlite_is_one_launcher_process(tmp_path) -> None:
    """A second process on the same SQLite file refuses to start beside the first."""
    import subprocess
    import sys

    path = tmp_path / "pool.sqlite"
    first = SqliteStore(path)
    first.register_launcher("first", {})
    code = (
        "import sys; from rackpool.pool.store import SqliteStore\n"
        f"s = SqliteStore({str(path)!r})\n"
        "try:\n    s.register_launcher('second', {})\n"
        "except Exception as e:\n    print(e); sys.exit(3)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 3 and "ZooKeeper" in out.stdout, out
    first.close()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out  # the first is gone: the next may start


# -- several processes on one ZooKeeper --------------------------------------------------
@pytest.fixture
def zk_stores(stores: Stores) -> Stores:
    if stores.kind != "zookeeper":
        pytest.skip("one SQLite process holds every lock")  # pragma: no cover
    return stores


@pytest.mark.parametrize("stores", ["zookeeper"], indirect=True)
def test_zookeeper_locks_exclude_other_launchers_and_die_with_them(zk_stores: Stores) -> None:
    a, b = zk_stores.open(), zk_stores.open()
    a.register_launcher("a", {})
    b.register_launcher("b", {})
    assert set(b.launchers()) == {"a", "b"}
    n = a.create_node(node("0000000011"), lock=True)
    assert a.lock("request", "100-0000000005")
    wait_for(lambda: b.locked_elsewhere("node", n.id), 5, "b hears of a's node lock")
    assert not b.lock("node", n.id) and not b.lock("request", "100-0000000005")
    assert not a.locked_elsewhere("node", n.id)
    a.close()  # the launcher goes away: its session, locks and registration with it
    assert b.lock("node", n.id) and b.lock("request", "100-0000000005")
    assert set(b.launchers()) == {"b"}


@pytest.mark.parametrize("stores", ["zookeeper"], indirect=True)
def test_zookeeper_exclusive_is_one_holder_at_a_time(zk_stores: Stores) -> None:
    a, b = zk_stores.open(), zk_stores.open()
    inside = threading.Event()
    leave = threading.Event()

    def hold() -> None:
        with a.exclusive("provider-p1", 5) as got:
            assert got
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert inside.wait(10)
    t0 = time.monotonic()
    with b.exclusive("provider-p1", 0.5) as got:
        assert not got and time.monotonic() - t0 >= 0.4
    leave.set()
    t.join(10)
    with b.exclusive("provider-p1", 5) as got:
        assert got


@pytest.mark.parametrize("stores", ["zookeeper"], indirect=True)
def test_zookeeper_expired_session_loses_locks_and_registers_again(zk_stores: Stores) -> None:
    from kazoo.client import KazooClient

    from rackpool.pool.store.zookeeper import ZooKeeperStore

    a, b = zk_stores.open(session_timeout=2), zk_stores.open()
    assert isinstance(a, ZooKeeperStore) and zk_stores.zk is not None
    a.register_launcher("a", {})
    a.create_node(node("0000000021"), lock=True)
    before = a.session
    # ZooKeeper's way to expire a session on purpose: a second client joins it and closes
    session_id, password = a.client.client_id
    twin = KazooClient(zk_stores.zk.hosts, client_id=(session_id, password))
    twin.start(timeout=10)
    twin.stop()
    twin.close()
    wait_for(lambda: a.session != before, 15, "a notices its session expired")
    assert not a.held("node", "0000000021")
    assert b.lock("node", "0000000021")  # a's lock is gone: another launcher takes it
    wait_for(lambda: "a" in b.launchers(), 15, "a registers again on its new session")
    wait_for(lambda: a.connected, 15, "a connected again")
    assert not a.lock("node", "0000000021")  # now b's
    a.create_node(node("0000000022"))  # and a writes again
    assert [n.id for n in b.list_nodes(fresh=True)] == ["0000000021", "0000000022"]
