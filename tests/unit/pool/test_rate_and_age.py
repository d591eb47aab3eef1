"""Time-driven behaviour on an injected clock: label max-ready-age and provider rate."""

from __future__ import annotations

from rackpool.core.clock import ManualClock
from rackpool.pool.drivers.fake import FakeCloud
from rackpool.pool.launcher import Launcher

from .conftest import fake_provider, pool_config

# The clock only moves when a test says so; API calls must not time out meanwhile.
PATIENT = {"health": {"call-timeout": 10_000}}


class InstantKeys:
    """Host keys at once: the scan itself is not what these tests are about."""

    def scan(self, ip: str, port: int, timeout: float) -> list[str]:
        return [f"ssh-ed25519 AAAAkey-of-{ip}"]


def ready(la: Launcher) -> list:
    return [n for n in la.store.list_nodes() if n.state == "ready"]


def settle(la: Launcher) -> None:
    """Tick until every create submitted so far was answered (the clock stands still)."""

    def answered() -> bool:
        return not any(
            n.state == "building"
            and ((n.launch_state or {}).get("machine") or {}).get("state") == "submitting"
            for n in la.store.list_nodes()
        )

    la.run_until(answered, 5, "submitted creates answered")


def test_ready_node_older_than_max_ready_age_is_replaced(make_launcher, world):
    clock = ManualClock()
    world.clouds["f1"] = FakeCloud(clock=clock)
    cfg = pool_config(
        [fake_provider("f1", **PATIENT)], [{"name": "small", "min-ready": 1, "max-ready-age": 60}]
    )
    la = make_launcher(cfg, clock=clock)
    first = la.run_until(lambda: ready(la), 5, "a min-ready node")[0]
    held_req = la.submit(["small"])
    held = la.run_until(
        lambda: (r := la.store.get_request(held_req.id)).state == "fulfilled" and r, 5, "in use"
    ).nodes[0]
    la.run_until(lambda: len(ready(la)) == 1, 5, "min-ready refilled")
    spare = ready(la)[0]

    clock.advance(59)  # younger than max-ready-age: kept
    for _ in range(20):
        la.tick()
    assert [n.id for n in ready(la)] == [spare.id]

    clock.advance(2)  # now older: deleted (server gone) and replaced by a fresh node
    la.run_until(lambda: (r := ready(la)) and r[0].id != spare.id, 5, "stale ready node replaced")
    cloud = world.clouds["f1"]

    def deleted() -> bool:
        clock.advance(0.01)  # the delete machine polls on the clock
        return spare.id not in {n.id for n in la.store.list_nodes()}

    la.run_until(deleted, 5, "stale node deleted")
    assert spare.external_id not in cloud.servers
    # a node in use is never expired, however old
    assert la.store.get_node(held).state == "in-use"
    assert la.store.get_node(held).external_id in cloud.servers
    assert len(cloud.servers) == 2 and first.id == held


def test_max_ready_age_zero_keeps_ready_nodes(make_launcher, world):
    clock = ManualClock()
    world.clouds["f1"] = FakeCloud(clock=clock)
    cfg = pool_config([fake_provider("f1", **PATIENT)], [{"name": "small", "min-ready": 1}])
    la = make_launcher(cfg, clock=clock)
    node = la.run_until(lambda: ready(la), 5, "a min-ready node")[0]
    clock.advance(10 * 86400)
    for _ in range(20):
        la.tick()
    assert [n.id for n in ready(la)] == [node.id]


def test_launches_to_a_provider_are_spaced_by_its_rate(make_launcher, world):
    clock = ManualClock()
    cloud = world.clouds["f1"] = FakeCloud(clock=clock)
    # Waiting for its turn must not count against boot-timeout (15 s < 2 x rate).
    prov = fake_provider(
        "f1", rate=10, **{"boot-timeout": 15, "host-key-checking": True}, **PATIENT
    )
    la = make_launcher(
        pool_config([prov], [{"name": "small"}]), clock=clock, keyscanner=InstantKeys()
    )
    la.run_until(lambda: la.providers["f1"].quota_known, 5, "quota known")
    reqs = [la.submit(["small"]) for _ in range(3)]

    def all_fulfilled() -> bool:
        return all(la.store.get_request(r.id).state == "fulfilled" for r in reqs)

    for _ in range(60):  # at most 60 s of manual time, 1 s a step
        settle(la)
        if all_fulfilled():
            break
        clock.advance(1)
    assert all_fulfilled(), [la.store.get_request(r.id).state for r in reqs]
    created = sorted(s.created for s in cloud.servers.values())
    assert len(created) == 3
    gaps = [b - a for a, b in zip(created, created[1:], strict=False)]
    assert all(g >= 10 for g in gaps), gaps
    assert gaps == [10, 10]  # and no slower than the rate allows
    assert b"rackpool_pool_launch_errors_total{" not in la.metrics.render()
    nodes = [la.store.get_node(la.store.get_request(r.id).nodes[0]) for r in reqs]
    assert all(n.host_keys == (f"ssh-ed25519 AAAAkey-of-{n.interface_ip}",) for n in nodes)


def test_rate_zero_launches_at_once(make_launcher, world):
    clock = ManualClock()
    cloud = world.clouds["f1"] = FakeCloud(clock=clock)
    la = make_launcher(
        pool_config([fake_provider("f1", **PATIENT)], [{"name": "small"}]), clock=clock
    )
    reqs = [la.submit(["small"]) for _ in range(3)]
    la.run_until(
        lambda: all(la.store.get_request(r.id).state == "fulfilled" for r in reqs), 5, "fulfilled"
    )
    assert len({s.created for s in cloud.servers.values()}) == 1  # all in the same instant


def test_no_more_than_max_concurrency_launches_in_flight(make_launcher, world):
    clock = ManualClock()
    cloud = world.clouds["f1"] = FakeCloud(clock=clock, boot_delay=5)
    prov = fake_provider("f1", **{"max-concurrency": 2}, **PATIENT)
    la = make_launcher(pool_config([prov], [{"name": "small"}]), clock=clock)
    reqs = [la.submit(["small"]) for _ in range(5)]

    def all_fulfilled() -> bool:
        return all(la.store.get_request(r.id).state == "fulfilled" for r in reqs)

    la.run_until(lambda: len(cloud.servers) == 2, 5, "two creates")
    for _ in range(30):
        la.tick()
    assert len(cloud.servers) == 2  # the other three wait for a slot
    peak = 0
    for _ in range(200):  # at most 100 s of manual time
        clock.advance(0.5)
        la.tick()
        peak = max(peak, sum(cloud.status(s) == "building" for s in cloud.servers.values()))
        if all_fulfilled():
            break
    assert all_fulfilled() and len(cloud.servers) == 5
    assert peak <= 2
