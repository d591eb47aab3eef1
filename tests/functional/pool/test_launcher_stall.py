"""A launcher that *stalls* (SIGSTOP) past its ZooKeeper session while its creates are in
flight, among three ``rackpool pool serve`` processes on one real ZooKeeper under bounded
churn: another launcher takes its nodes over and launches them; when the stalled one
resumes, its late creates must not add a second server to any node.

The fake providers' creates take ``create-delay`` (1 s) before the cloud has the server,
so the victim is stopped with creates that are on their way but not yet made (checked
after the stop, from the pool's ZooKeeper records and the clouds' own server lists).
Counted from the clouds' server lists (sampled from before the resume until everything
settled: never two live servers tagged with one node id) and from the pool's and the
clouds' records at the end (ha.check: 0 lost or failed requests, 0 nodes handed to two
requests, 0 creates twice for one node, 0 leaked servers).

And one launcher (in this process) whose ZooKeeper goes away while a create is on its
way: no create is sent while the node's lock cannot be verified.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from tests.support.zookeeper import ZooKeeper, start_server, unique_chroot
from tests.unit.pool.conftest import FakeWorld, fake_provider, pool_config

from rackpool.core.clock import iterate_timeout, wait_for
from rackpool.pool.drivers.fake import FakeCloud, SharedFakeCloud
from rackpool.pool.launcher import Launcher
from rackpool.pool.model import META_NODE, NodeRequest
from rackpool.pool.store.zookeeper import ZooKeeperStore

from .ha import Churn, Launchers, check

SESSION = 2.0  # seconds: the launchers' ZooKeeper session timeout
PROVIDERS: dict[str, Any] = {"f1": (("small",), 6), "f2": (("small",), 6)}
OPTIONS = {"create-delay": 1.0, "max-concurrency": 6}
VICTIM = 0


class ZkView:
    """The pool's ZooKeeper tree as an operator reads it (own session, read only)."""

    def __init__(self, hosts: str, chroot: str) -> None:
        self.client = KazooClient(hosts + chroot)
        self.client.start(timeout=15)

    def node_locks(self) -> dict[str, str]:
        out = {}
        for nid in self.client.get_children("/nodes-lock"):
            with contextlib.suppress(NoNodeError, ValueError):
                out[nid] = json.loads(self.client.get(f"/nodes-lock/{nid}")[0])["launcher"]
        return out

    def node(self, nid: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.client.get(f"/nodes/{nid}")[0]))
        except NoNodeError:
            return None

    def launchers(self) -> set[str]:
        return set(self.client.get_children("/launchers"))

    def close(self) -> None:
        self.client.stop()
        self.client.close()


def servers_by_node(clouds: dict[str, SharedFakeCloud]) -> dict[str, list[str]]:
    """Live servers in every cloud, by the node id they are tagged with."""
    out: dict[str, list[str]] = collections.defaultdict(list)
    for cloud in clouds.values():
        for srv in cloud.servers.values():
            out[srv.metadata.get(META_NODE, "")].append(srv.id)
    return out


def creates_in_flight(zk: ZkView, clouds: dict[str, SharedFakeCloud], me: str) -> list[str]:
    """Nodes launcher ``me`` holds whose create was admitted (record: submitting, no
    server id) and whose server no cloud has yet."""
    held = [nid for nid, owner in zk.node_locks().items() if owner == me]
    out = []
    for nid in held:
        node = zk.node(nid)
        machine = ((node or {}).get("launch_state") or {}).get("machine") or {}
        submitting = machine.get("state") == "submitting" and not machine.get("external_id")
        if node and node["state"] == "building" and submitting:
            out.append(nid)
    made = servers_by_node(clouds)
    return [nid for nid in out if nid not in made]


def stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


class Sampler(threading.Thread):
    """Samples the clouds' server lists until stopped: every node id seen with two live
    servers at once, and how many samples were taken."""

    def __init__(self, cloud_files: dict[str, Path]) -> None:
        super().__init__(daemon=True)
        self.cloud_files = cloud_files
        self.doubles: dict[str, list[str]] = {}
        self.samples = 0
        self.done = threading.Event()

    def run(self) -> None:
        clouds = {name: SharedFakeCloud(str(path)) for name, path in self.cloud_files.items()}
        try:
            deadline = time.monotonic() + 180  # bounded even if the test forgets to stop it
            while not self.done.is_set() and time.monotonic() < deadline:
                for nid, sids in servers_by_node(clouds).items():
                    if len(sids) > 1:
                        self.doubles.setdefault(nid, sorted(sids))
                self.samples += 1
                self.done.wait(0.02)
        finally:
            for c in clouds.values():
                c.close()


def test_stalled_launcher_never_adds_a_second_server(
    tmp_path: Path, zookeeper_server: ZooKeeper
) -> None:
    store = {
        "zookeeper": {
            "hosts": zookeeper_server.hosts,
            "chroot": unique_chroot("/rackpool-stall"),
            "session-timeout": SESSION,
            "op-timeout": 30,
        }
    }
    pool = Launchers(
        tmp_path, store, 3, min_ready=0, boot_delay=0.1, providers=PROVIDERS,
        provider_options=OPTIONS,
    )  # fmt: skip
    zk: ZkView | None = None
    clouds: dict[str, SharedFakeCloud] = {}
    sampler = Sampler(pool.cloud_files)
    churn = Churn(pool, cycles=48, workers=6, label_sets=(["small"],), deadline=90)
    churn_errors: list[BaseException] = []
    runner: threading.Thread | None = None
    pid: int | None = None
    try:
        pool.start()
        pid = pool.procs[VICTIM].pid
        assert pid is not None
        zk = ZkView(store["zookeeper"]["hosts"], store["zookeeper"]["chroot"])
        clouds = pool.clouds()
        me = pool.launcher_id(VICTIM)

        def run_churn() -> None:
            try:
                churn.run()
            except BaseException as exc:  # noqa: BLE001 - reported below
                churn_errors.append(exc)

        runner = threading.Thread(target=run_churn, daemon=True)
        runner.start()

        # stop the victim while it has creates on their way that the cloud has not seen
        stalled: list[str] = []
        for _ in iterate_timeout(40, "the victim with creates in flight", 0.005):
            if not creates_in_flight(zk, clouds, me):
                continue
            pool.dead.add(VICTIM)  # the churn's clients go to the others meanwhile
            os.kill(pid, signal.SIGSTOP)
            for _ in iterate_timeout(5, "the victim to stop", 0.005):
                if stopped(pid):
                    break
            stalled = creates_in_flight(zk, clouds, me)
            if stalled:
                break
            os.kill(pid, signal.SIGCONT)  # its creates got through: try another moment
            pool.dead.discard(VICTIM)

        # its session expires, its locks go, and the others launch its nodes
        def taken_over(nid: str, locks: dict[str, str], made: dict[str, list[str]]) -> bool:
            node = zk.node(nid) if zk else None
            if node is None or node["state"] != "building":
                return True  # launched (or failed over) by another launcher already
            return locks.get(nid) not in (None, me) and bool(made.get(nid))

        for _ in iterate_timeout(30, "another launcher to take the stalled nodes over", 0.05):
            if me in zk.launchers():
                continue  # its session has not expired yet
            locks, made = zk.node_locks(), servers_by_node(clouds)
            if all(taken_over(nid, locks, made) for nid in stalled):
                break
        assert not any(owner == me for owner in zk.node_locks().values())

        sampler.start()
        os.kill(pid, signal.SIGCONT)
        pool.dead.discard(VICTIM)

        # the stalled launcher comes back: a new session, registered again
        for _ in iterate_timeout(30, "the resumed launcher to register again", 0.05):
            if me in zk.launchers():
                break
        runner.join(churn.deadline + 60)
        assert not runner.is_alive(), "churn did not finish"
        if churn_errors:
            raise churn_errors[0]
        unsettled: AssertionError | None = None
        try:
            report = check(pool, churn)  # sampled until everything settled
        except AssertionError as exc:
            unsettled, report = exc, {}
        sampler.done.set()
        sampler.join(10)
        print(
            f"stalled with {len(stalled)} creates in flight: {report}, "
            f"{sampler.samples} samples after resume, {churn.seconds:.1f}s"
        )
        assert not sampler.doubles, f"nodes with two servers at once: {sampler.doubles}"
        if unsettled is not None:
            raise unsettled
        assert sampler.samples > 10, sampler.samples
        assert pool.procs[VICTIM].proc is not None
        assert pool.procs[VICTIM].proc.poll() is None, "the stalled launcher died"
    finally:
        sampler.done.set()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        pool.dead.discard(VICTIM)
        if runner is not None:
            churn.deadline = 0  # workers stop at their next deadline check
        pool.stop()
        if runner is not None:
            runner.join(30)
        if sampler.is_alive():
            sampler.join(10)
        for c in clouds.values():
            c.close()
        if zk is not None:
            zk.close()


class Events(logging.Handler):
    """Log records' ``event`` fields, as the launcher emits them (its JSON log has them)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        if event:
            self.seen.append(str(event))


def test_no_create_is_sent_while_zookeeper_is_unreachable(tmp_path: Path) -> None:
    """ZooKeeper goes away (kill -9) while a create is on its way: the launcher cannot
    verify the node's lock (SUSPENDED), so the create is not sent. Once ZooKeeper is back
    the launch resumes (looks for the server by node id, finds none, creates it): one
    server, one create."""
    zk = start_server(tmp_path / "zk")
    world = FakeWorld()
    cloud = world.clouds["f1"] = FakeCloud()
    cfg = pool_config([fake_provider("f1", **{"create-delay": 0.5})], [{"name": "small"}])
    events = Events()
    logging.getLogger("rackpool.pool").addHandler(events)
    launcher = None
    try:
        store = ZooKeeperStore(zk.hosts, unique_chroot(), session_timeout=10)
        launcher = Launcher(cfg, store, adapter_factory=world.factory)
        launcher.start()
        req = launcher.submit(["small"])

        def submitting() -> bool:
            nodes = store.list_nodes()
            machine = [((n.launch_state or {}).get("machine") or {}) for n in nodes]
            return any(m.get("state") == "submitting" for m in machine)

        wait_for(submitting, 10, "a create on its way")
        assert not cloud.servers
        zk.kill()
        wait_for(lambda: not store.connected, 10, "the launcher to see ZooKeeper gone")
        wait_for(
            lambda: "create_fenced" in events.seen or cloud.calls.get("create", 0),
            10,
            "the create to reach its fence (or the cloud)",
        )
        assert cloud.calls.get("create", 0) == 0 and not cloud.servers, (
            "a create was sent while the lock could not be verified"
        )
        zk.spawn()  # same port, same data
        wait_for(zk.serving, 60, "ZooKeeper back")
        done = wait_for(
            lambda: (r := store.get_request(req.id)).done and r, 40, "the request fulfilled"
        )
        assert isinstance(done, NodeRequest) and done.state == "fulfilled"
        assert cloud.calls["create"] == 1 and len(cloud.servers) == 1
        assert store.get_node(done.nodes[0]).external_id in cloud.servers
    finally:
        logging.getLogger("rackpool.pool").removeHandler(events)
        if launcher is not None:
            launcher.stop(drain=0)
            launcher.store.close()
        zk.stop()
