"""Several ``rackpool pool serve`` processes on one ZooKeeper, under bounded churn, with a
launcher killed (-9) mid-churn, and with the ZooKeeper ensemble's leader killed.

Counted from the pool's records (any live launcher's /request-list and /node-list) and
the fake clouds' records (their server lists, every create with its node id, the most
servers at once): 0 lost requests, 0 nodes handed to two requests, 0 servers launched
twice for one node, 0 leaked servers, max-servers never exceeded. See ha.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.support.zookeeper import ZooKeeper, start_ensemble, unique_chroot

from .ha import Churn, Launchers, check


def zk_store(hosts: str, session_timeout: float) -> dict[str, Any]:
    return {
        "zookeeper": {
            "hosts": hosts,
            "chroot": unique_chroot("/rackpool-ha"),
            "session-timeout": session_timeout,
            "op-timeout": 30,
        }
    }


def events(pool: Launchers, i: int) -> list[str]:
    out = []
    for line in pool.logs(i).splitlines():
        try:
            out.append(json.loads(line).get("event", ""))
        except ValueError:
            continue
    return out


def kill_while_handling(pool: Launchers, victim: int, orphans: list[str]) -> None:
    """Give the victim requests (f3's "slow" label: 3 s boots, no churn competing for
    it) and kill -9 it once they are pending and it holds at least one of them (any
    launcher may take a request; the one whose API got it usually does first)."""
    client = pool.client(victim)
    me = pool.launcher_id(victim)
    for _ in range(3):  # f3 has room for 3 such rounds (max-servers 9)
        ids = [client.request(["slow"], requestor="victim")["id"] for _ in range(3)]
        orphans.extend(ids)
        deadline = time.monotonic() + 10
        while True:
            states = [client.get_request(rid)["state"] for rid in ids]
            if states == ["pending"] * 3:
                break
            assert time.monotonic() < deadline and "fulfilled" not in states, states
            time.sleep(0.005)
        if me in pool.request_holders(ids).values():
            break
    else:
        raise AssertionError("the victim never held one of its requests")
    pool.kill(victim)


@pytest.mark.parametrize("n", [2, 3])
def test_launchers_share_the_pool_and_take_over_a_killed_one(
    tmp_path: Path, zookeeper_server: ZooKeeper, n: int
) -> None:
    pool = Launchers(tmp_path, zk_store(zookeeper_server.hosts, 3), n, boot_delay=0.1).start()
    try:
        orphans: list[str] = []
        cycles = 150 if n == 2 else 180
        churn = Churn(pool, cycles=cycles, workers=6)
        churn.run(at={cycles // 3: lambda: kill_while_handling(pool, 0, orphans)})
        # the victim's own requests were served by the others once its locks vanished
        until = time.monotonic() + 30
        for rid in orphans:
            done = churn.wait(rid, until)
            assert done is not None and done["state"] == "fulfilled", (rid, done)
            for nid in done["node_ids"]:
                churn.release(nid, until)
        report = check(pool, churn, extra=orphans)
        print(f"{n} launchers, one killed: {report}, {churn.seconds:.1f}s, retries {churn.retries}")
        taken = [e for i in pool.live() for e in events(pool, i) if e.endswith("_taken_over")]
        assert "request_taken_over" in taken, "no survivor took over the victim's requests"
        # every survivor did part of the work
        for i in pool.live():
            assert "request_fulfilled" in events(pool, i), f"launcher {i} fulfilled nothing"
        # the CLI works against any launcher: each lists the same live launchers
        seen = []
        for i in pool.live():
            out = subprocess.run(
                [sys.executable, "-m", "rackpool.cli", "pool", "launchers", "--json",
                 "--state-dir", str(pool.procs[i].state_dir)],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert out.returncode == 0, out.stderr
            rows = json.loads(out.stdout)
            assert [r["pid"] for r in rows if r["self"]] == [pool.procs[i].pid]
            seen.append(sorted(r["pid"] for r in rows))
        assert seen == [sorted(pool.procs[i].pid for i in pool.live())] * len(pool.live())
    finally:
        pool.stop()


def test_zookeeper_leader_killed_mid_churn(tmp_path: Path) -> None:
    ens = start_ensemble(tmp_path / "zk", 3)
    pool = None
    try:
        # sessions outlive the election (a new leader in ~1-2 s)
        pool = Launchers(tmp_path / "pool", zk_store(ens.hosts, 10), 2, boot_delay=0.05)
        pool.start()
        killed: list[ZooKeeper] = []

        def kill_leader() -> None:
            leader = ens.leader()
            leader.kill()
            killed.append(leader)

        churn = Churn(pool, cycles=150, workers=6)
        churn.run(at={50: kill_leader})
        alive = [s for s in ens.servers if s not in killed]
        ens.wait_quorum(30, alive)  # the other two elected a new leader
        assert killed and killed[0].mode() == ""
        report = check(pool, churn)
        print(f"leader {killed[0].myid} killed: {report}, {churn.seconds:.1f}s, {churn.retries}")
    finally:
        if pool is not None:
            pool.stop()
        ens.stop()
