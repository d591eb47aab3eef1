"""``rackpool deploy`` onto four "bare-metal" test hosts, as an operator runs it.

One rack for the module (deploying costs minutes), its tests in order:
controller ``ctl``, compute hosts ``c1`` and ``c2`` (container driver: instances nested
in the hosts, on the rack's instance network), ``svc`` with the pool and the ops index.

1. deploy from scratch → a node requested from the deployed pool answers SSH with the
   host keys the pool reported; every daemon's logs are in the ops index on ``svc``:
   the agents' and the controller's shipped from their hosts, the pool's indexed there;
2. deploy again → changed=0;
3. ``--check`` after an inventory edit shows exactly that edit and changes nothing;
4. upgrade A → B while a client keeps requesting and releasing nodes: no failed
   request, no instance lost or leaked, the nodes held across it answer with the same
   host keys after their agents were upgraded;
5. a broken batch (a bad config for c1, the second host of the rollout) stops the
   upgrade B → C naming the host, leaves c2 untouched, and ``--rollback`` restores c1;
6. ``--upgrade --drain`` of c1 while a node is held there: c1 is disabled (new nodes go
   to c2, the held one keeps running) until the node is released, then upgraded,
   enabled again, and it serves nodes; c1 is pruned to ``keep_versions: 1``;
7. a ``--drain`` of c2, which an admin had disabled: upgraded, left disabled.

Every upgrade's canary must land on its batch host (forced host), read from the
health gate's "canary … ACTIVE on HOST (batch host NAME)" lines.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.deploy_rack import Churn, Rack, deploy_rack

from rackpool.core.clock import wait_for

# The module's rack is deployed in the first test's setup (minutes on a busy machine).
pytestmark = [pytest.mark.root, pytest.mark.timeout(1200)]

COMPUTES = ("c1", "c2")


@pytest.fixture(scope="module")
def rack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rack]:
    with deploy_rack(tmp_path_factory.mktemp("deploy")) as r:
        r.write_inventory(r.inventory())
        first = r.deploy()
        assert first.rc == 0, first.stdout[-3000:] + first.stderr[-3000:]
        yield r


def _fail_text(run: Any) -> str:
    return f"rc={run.rc}\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"


def test_1_deploy_from_scratch_serves_nodes_over_ssh(rack: Rack) -> None:
    assert rack.runs[0].summary["failed"] == 0
    for name in rack.hosts.names:
        assert rack.running_version(name) == rack.versions[0]
    with rack.pool() as pool:
        node = rack.request_node(pool)
        try:
            # the pool reported the node's host keys; ssh trusts exactly those
            out = rack.node_ssh(node, "cat /etc/os-release; hostname")
            assert "bookworm" in out
        finally:
            rack.release(pool, node["id"])


def _search(rack: Rack, q: str) -> dict[str, Any]:
    """The ops index's public search API on svc, as anyone may ask it."""
    resp = httpx.get(f"http://{rack.address('svc')}:8090/api/search",
                     params={"q": q, "size": 100}, timeout=30, trust_env=False)  # fmt: skip
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    return body


def _found(rack: Rack, q: str, at_least: int = 1) -> list[dict[str, Any]]:
    """The hits of ``q`` once there are ``at_least`` (shipping takes a poll or two)."""
    wait_for(lambda: _search(rack, q)["total"] >= at_least, 120, f"{at_least} hit(s) of {q}")
    return list(_search(rack, q)["hits"])


def test_1b_every_hosts_daemon_logs_reach_the_ops_index(rack: Rack) -> None:
    for c in COMPUTES:
        hits = _found(rack, f'message:"registered with" AND host:"r1-{c}"')
        assert all(h["source"].startswith(f"r1-{c}:/var/log/rackpool/agent-r1-{c}.jsonl#")
                   for h in hits), hits  # fmt: skip
        status = json.loads(
            rack.hosts.hosts[c].ssh("cat /var/lib/rackpool/shipper/shipper.json", check=True).stdout
        )
        assert status["state"] == "shipping" and status["host"] == f"r1-{c}"
        modes = rack.hosts.hosts[c].ssh(
            "stat -c '%a %n' /opt/rackpool/current/etc/shipper.yaml "
            "/var/lib/rackpool/shipper /var/lib/rackpool/shipper/checkpoint.json", check=True,
        ).stdout.split()  # fmt: skip
        assert modes[0::2] == ["600", "700", "600"], modes
    ctl = _found(rack, "component:cloud AND region:r1")
    assert all(h["source"].startswith("r1-ctl:/var/log/rackpool/cloud-r1.jsonl#") for h in ctl)
    # the pool's lines, on the index's own host, are indexed there without a shipper
    assert _found(rack, "component:pool")
    # the push token the shippers hold is in no line anyone can read
    token = rack.secret("ops/push_token")
    assert _search(rack, f'"{token}"')["total"] == 0


def test_2_deploy_again_changes_nothing(rack: Rack) -> None:
    again = rack.deploy()
    assert again.rc == 0, _fail_text(again)
    assert again.summary["changed"] == 0, again.changed_hosts()


def test_3_check_shows_exactly_an_inventory_edit(rack: Rack) -> None:
    inv = rack.inventory()
    inv["regions"][0]["controller"]["heartbeat_timeout"] = 25.0
    rack.write_inventory(inv)
    try:
        check = rack.deploy("--check")
        assert check.rc == 0, _fail_text(check)
        assert check.changed_hosts() == {"r1-ctl"}
        diff = [line for line in check.stdout.splitlines()
                if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]  # fmt: skip
        assert any("heartbeat_timeout" in line and "25" in line for line in diff), diff
        assert all("heartbeat_timeout" in line for line in diff), diff
        # nothing changed on the host
        region_yaml = (
            rack.hosts.hosts["ctl"]
            .ssh("cat /opt/rackpool/current/etc/region.yaml", check=True)
            .stdout
        )
        assert "heartbeat_timeout: 15.0" in region_yaml
    finally:
        rack.write_inventory(rack.inventory())


def _servers(rack: Rack) -> dict[str, str]:
    """Server id → compute host, as the region's admin sees them."""
    admin = rack.region_admin()
    try:
        r = admin.get("/compute/v2.1/servers/detail", params={"all_tenants": "1"})
        r.raise_for_status()
        return {s["id"]: s.get("OS-EXT-SRV-ATTR:host") or "" for s in r.json()["servers"]}
    finally:
        admin.close()


def _instances(rack: Rack) -> set[str]:
    return set().union(*(rack.instances_on(c) for c in COMPUTES))


CANARY = re.compile(r"canary \S+ ACTIVE on (\S+) \(batch host (\S+)\)")


def _canaries(run: Any) -> list[tuple[str, str]]:
    """(host the canary ran on, the batch host it was for), from the health gate's lines."""
    return CANARY.findall(run.stdout)


def test_4_rolling_upgrade_under_load_loses_nothing(rack: Rack) -> None:
    a, b = rack.versions[0], rack.versions[1]
    with rack.pool() as pool:
        held: list[dict[str, Any]] = []
        for _ in range(6):  # nodes held across the upgrade, until both computes run one
            held.append(rack.request_node(pool))
            if {h for h in _servers(rack).values()} >= {"r1-c1", "r1-c2"}:
                break
        assert set(_servers(rack).values()) == {"r1-c1", "r1-c2"}
        before = {n["id"]: rack.node_ssh(n, "cat /etc/ssh/ssh_host_*_key.pub") for n in held}

        churn = Churn(rack)
        client = threading.Thread(target=churn.run, daemon=True)
        client.start()
        wait_for(lambda: churn.done >= 1 or churn.failed, 120, "the client's first node")
        inv = rack.inventory(version=b)
        rack.write_inventory(inv)
        up = rack.deploy("--upgrade", "--batch", "1")
        churn.stop.set()
        client.join(300)
        assert up.rc == 0, _fail_text(up)
        # each batch's canary ran on that batch's host, not elsewhere in its zone
        assert sorted(_canaries(up)) == [("r1-c1", "r1-c1"), ("r1-c2", "r1-c2")], _fail_text(up)
        assert churn.failed == [], churn.failed
        assert churn.done >= 2
        for name in rack.hosts.names:
            assert rack.running_version(name) == b, name
        # held nodes: same instance, same host keys (strict known_hosts), still served
        for n in held:
            assert rack.node_ssh(n, "cat /etc/ssh/ssh_host_*_key.pub") == before[n["id"]]
        for n in held:
            rack.release(pool, n["id"])
    # the shippers run on B too: each agent's registration after its upgrade is indexed
    for c in COMPUTES:
        _found(rack, f'message:"registered with" AND host:"r1-{c}"', at_least=2)

    # nothing leaked: every server the region has runs, and everything running is known
    def settled() -> bool:
        servers, running = set(_servers(rack)), _instances(rack)
        return servers == running == set()

    wait_for(settled, 120, "servers and instances all gone after release")
    assert a != b


def test_5_broken_batch_stops_the_rollout_and_rollback_restores(rack: Rack) -> None:
    base, c = rack.running_version("c2"), rack.versions[2]  # B after test 4
    inv = rack.inventory(version=c, timeout=45)
    # c1, the second host of the rollout: a driver its host cannot run (no libvirt there);
    # the inventory is valid, the agent exits at start and never registers
    inv["regions"][0]["hosts"][0]["driver"] = "libvirt"
    rack.write_inventory(inv)
    broken = rack.deploy("--upgrade", "--batch", "1")
    assert broken.rc != 0, _fail_text(broken)
    assert "r1-c1" in broken.stderr
    assert rack.running_version("ctl") == c
    assert rack.running_version("c2") == base  # untouched
    assert rack.running_version("svc") == base

    rack.write_inventory(rack.inventory(version=base))
    back = rack.deploy("--rollback")
    assert back.rc == 0, _fail_text(back)
    for name in ("ctl", "c1", "c2", "svc"):
        assert rack.running_version(name) == base, name
    # c1 serves again: its agent is up and a canary-like server lands on it
    assert "r1-c1" in _servers_on_each_host(rack)


def _servers_on_each_host(rack: Rack) -> set[str]:
    """Request nodes until both computes run one (at most 6); the hosts they landed on."""
    with rack.pool() as pool:
        nodes = []
        try:
            for _ in range(6):
                nodes.append(rack.request_node(pool))
                rack.node_ssh(nodes[-1], "true")
                if set(_servers(rack).values()) >= {"r1-c1", "r1-c2"}:
                    break
            return set(_servers(rack).values())
        finally:
            for n in nodes:
                rack.release(pool, n["id"])


def _host_enabled(rack: Rack, name: str) -> bool:
    admin = rack.region_admin()
    try:
        hosts = admin.get("/admin/v1/hosts").json()["hosts"]
        return bool(next(h for h in hosts if h["name"] == name)["enabled"])
    finally:
        admin.close()


def test_6_drain_upgrade_waits_for_the_hosts_instances(rack: Rack) -> None:
    """``--upgrade --drain`` of c1 alone (``--limit``; to the version it runs: the drain,
    the wait, the re-enable and the gate are what is tested, not a new venv)."""
    with rack.pool() as pool:
        nodes: list[dict[str, Any]] = []
        held = None
        try:
            for _ in range(6):  # a node on r1-c1 to hold across the drain
                nodes.append(rack.request_node(pool))
                held = next((n for n in nodes if _node_host(rack, n) == "r1-c1"), None)
                if held:
                    break
            assert held is not None, "no node landed on r1-c1 in 6 requests"
            for n in nodes:
                if n is not held:
                    rack.release(pool, n["id"])
            nodes = [held]
            keys = rack.node_ssh(held, "cat /etc/ssh/ssh_host_*_key.pub")

            installed = _installed(rack, "c1")
            inv = rack.inventory(version=rack.running_version("c1"))
            inv["health"]["drain_timeout"] = 600
            inv["keep_versions"] = 1  # and prune c1 down to the current + 1 earlier version
            rack.write_inventory(inv)
            box: dict[str, Any] = {}
            upgrade = threading.Thread(
                target=lambda: box.update(run=rack.deploy("--upgrade", "--drain",
                                                          "--limit", "r1-c1")),
                daemon=True,
            )  # fmt: skip
            upgrade.start()
            wait_for(lambda: not _host_enabled(rack, "r1-c1") or not upgrade.is_alive(), 600,
                     "the drain to disable r1-c1")  # fmt: skip
            assert upgrade.is_alive(), _fail_text(box.get("run"))
            # while it waits: a new node goes to c2, the held one runs on, untouched
            nodes.append(rack.request_node(pool))
            assert _node_host(rack, nodes[-1]) == "r1-c2"
            assert rack.node_ssh(held, "cat /etc/ssh/ssh_host_*_key.pub") == keys
            assert upgrade.is_alive() and not _host_enabled(rack, "r1-c1")
            # the drain ends when the node is released (the pool deletes its server)
            rack.release(pool, held["id"])
            nodes.remove(held)
            upgrade.join(900)
            assert not upgrade.is_alive(), "the drain upgrade did not finish within 15 min"
            run = box["run"]
            assert run.rc == 0, _fail_text(run)
            assert "Drain r1-c1" in run.stdout and "Re-enable r1-c1" in run.stdout
            assert _canaries(run) == [("r1-c1", "r1-c1")], _fail_text(run)
            assert _host_enabled(rack, "r1-c1")
            assert held["id"] not in {n["id"] for n in nodes}
            # pruned: the running version and the most recently installed other one stay
            running, left = rack.running_version("c1"), _installed(rack, "c1")
            newest_other = sorted((v for v in installed if v != running),
                                  key=lambda v: -installed[v])[:1]  # fmt: skip
            assert set(left) == {running, *newest_other}, (installed, left)
        finally:
            for n in nodes:
                rack.release(pool, n["id"])
    # enabled again, c1 takes nodes
    assert "r1-c1" in _servers_on_each_host(rack)


def test_7_drain_leaves_a_host_an_admin_disabled_disabled(rack: Rack) -> None:
    """An admin disabled c2 (say, a bad disk) before a ``--drain`` upgrade: it is drained
    and upgraded but not re-enabled; its canary still runs there (forced host)."""
    admin = rack.region_admin()
    try:
        rack.write_inventory(rack.inventory(version=rack.running_version("c2")))
        assert admin.post("/admin/v1/hosts/r1-c2/disable").status_code == 200
        try:
            run = rack.deploy("--upgrade", "--drain", "--limit", "r1-c2")
            assert run.rc == 0, _fail_text(run)
            assert "r1-c2 was disabled before the drain (disable by admin)" in run.stdout
            assert not _host_enabled(rack, "r1-c2")
            assert _canaries(run) == [("r1-c2", "r1-c2")], _fail_text(run)
        finally:
            assert admin.post("/admin/v1/hosts/r1-c2/enable").status_code == 200
    finally:
        admin.close()


def _installed(rack: Rack, name: str) -> dict[str, int]:
    """Versions installed on host ``name`` → their install time (marker mtime)."""
    out = (
        rack.hosts.hosts[name].ssh("stat -c '%Y %n' /opt/rackpool/*/.installed", check=True).stdout
    )
    found = (ln.split(" ", 1) for ln in out.splitlines())
    return {Path(p).parent.name: int(t) for t, p in found if Path(p).parent.name != "current"}


def _node_host(rack: Rack, node: dict[str, Any]) -> str:
    """The compute host of a pool node: its server's (the one with the node's address),
    as the region's admin sees it."""
    admin = rack.region_admin()
    try:
        r = admin.get("/compute/v2.1/servers/detail", params={"all_tenants": "1"})
        r.raise_for_status()
        for s in r.json()["servers"]:
            addrs = {a["addr"] for net in (s.get("addresses") or {}).values() for a in net}
            if node["interface_ip"] in addrs:
                return str(s.get("OS-EXT-SRV-ATTR:host") or "")
        return ""
    finally:
        admin.close()


def test_module_budget(rack: Rack) -> None:
    """The figures of this run, for the record (printed; -s shows them)."""
    for run in rack.runs:
        print(f"{' '.join(run.argv[2:]) or 'deploy'}: rc={run.rc} {run.seconds:.1f}s")
    assert Path(rack.workdir).exists()
