"""The launcher on fake providers: what a CI user of the pool would notice."""

from __future__ import annotations

from rackpool.core.states import NodeState, RequestState
from rackpool.pool.launcher import Launcher
from rackpool.pool.model import META_NODE, META_POOL

from .conftest import fake_provider, pool_config


def nodes_in(launcher: Launcher, state: str, label: str | None = None) -> list:
    return [
        n
        for n in launcher.store.list_nodes()
        if n.state == state and (label is None or n.label == label)
    ]


def test_min_ready_then_request_fulfilled_release_deletes_and_refills(make_launcher):
    cfg = pool_config([fake_provider("f1")], [{"name": "small", "min-ready": 2}])
    la = make_launcher(cfg)
    la.run_until(lambda: len(nodes_in(la, "ready")) == 2, 5, "min-ready nodes")
    req = la.submit(["small"], requestor="ci")
    done = la.run_until(
        lambda: (r := la.store.get_request(req.id)).state == "fulfilled" and r, 5, "fulfilled"
    )
    node = la.store.get_node(done.nodes[0])
    assert node.state == NodeState.IN_USE and node.interface_ip.startswith("198.18.")
    la.release(node.id)
    la.run_until(lambda: node.id not in {n.id for n in la.store.list_nodes()}, 5, "node deleted")
    la.run_until(lambda: len(nodes_in(la, "ready")) == 2, 5, "min-ready refilled")
    assert len(la.ctx.providers["f1"].adapter.cloud.servers) == 2


def test_multi_node_request_comes_from_one_provider(make_launcher):
    cfg = pool_config(
        [fake_provider("a", ("small",)), fake_provider("b", ("small", "big"))],
        [{"name": "small"}, {"name": "big"}],
    )
    la = make_launcher(cfg)
    req = la.submit(["small", "big", "small"])
    r = la.run_until(
        lambda: (x := la.store.get_request(req.id)).state == "fulfilled" and x, 5, "fulfilled"
    )
    assert {la.store.get_node(n).provider for n in r.nodes} == {"b"}
    assert len(r.nodes) == 3


def test_unknown_label_fails_with_reason(make_launcher):
    la = make_launcher(pool_config([fake_provider("f1")], [{"name": "small"}, {"name": "gpu"}]))
    req = la.submit(["gpu"])
    r = la.run_until(lambda: (x := la.store.get_request(req.id)).done and x, 5, "failed")
    assert r.state == RequestState.FAILED and "no provider offers gpu" in r.reason


def test_failing_provider_declines_and_request_moves(make_launcher, world):
    cfg = pool_config(
        [
            fake_provider(
                "bad", priority=1, **{"launch-retries": 2, "health": {"error-threshold": 50}}
            ),
            fake_provider("good", priority=2),
        ],
        [{"name": "small"}],
    )
    la = make_launcher(cfg)
    world.clouds["bad"].fail_next = 100
    req = la.submit(["small"])
    r = la.run_until(lambda: (x := la.store.get_request(req.id)).done and x, 5, "done")
    assert r.state == "fulfilled" and r.provider == "good" and r.declined_by == ("bad",)
    # failed servers in the bad cloud are deleted, not leaked
    la.run_until(lambda: not world.clouds["bad"].servers, 5, "failed servers deleted")


def test_fails_only_when_every_provider_declined(make_launcher, world):
    cfg = pool_config(
        [
            fake_provider(n, **{"launch-retries": 1, "health": {"error-threshold": 50}})
            for n in ("a", "b")
        ],
        [{"name": "small"}],
    )
    la = make_launcher(cfg)
    for c in ("a", "b"):
        world.clouds[c].fail_next = 10
    req = la.submit(["small"])
    r = la.run_until(lambda: (x := la.store.get_request(req.id)).done and x, 5, "done")
    assert r.state == "failed" and set(r.declined_by) == {"a", "b"}


def test_dead_provider_goes_out_of_service_and_load_moves_at_once(make_launcher, world):
    cfg = pool_config(
        [
            fake_provider(
                "a", priority=1, **{"health": {"error-threshold": 2, "probe-interval": 0.2}}
            ),
            fake_provider("b", priority=2),
        ],
        [{"name": "small"}],
    )
    la = make_launcher(cfg)
    la.run_until(lambda: la.providers["a"].quota_known, 5, "a known")
    world.clouds["a"].down = True
    reqs = [la.submit(["small"]) for _ in range(4)]
    la.run_until(
        lambda: all(la.store.get_request(r.id).state == "fulfilled" for r in reqs),
        5,
        "all fulfilled",
    )
    assert not la.providers["a"].health.in_service
    assert all(la.store.get_request(r.id).provider == "b" for r in reqs)
    world.clouds["a"].down = False
    la.run_until(lambda: la.providers["a"].health.in_service, 5, "probed back in")
    req = la.submit(["small"])
    r = la.run_until(lambda: (x := la.store.get_request(req.id)).done and x, 5, "served by a again")
    assert r.provider == "a"


def test_hung_provider_times_out_and_is_taken_out(make_launcher, world):
    cfg = pool_config(
        [
            fake_provider(
                "a",
                priority=1,
                **{"health": {"error-threshold": 1, "call-timeout": 0.3, "probe-interval": 0.2}},
            ),
            fake_provider("b", priority=2),
        ],
        [{"name": "small"}],
    )
    la = make_launcher(cfg)
    world.clouds["a"].hang.set()
    try:
        req = la.submit(["small"])
        r = la.run_until(lambda: (x := la.store.get_request(req.id)).done and x, 5, "moved")
        assert r.state == "fulfilled" and r.provider == "b"
        la.run_until(lambda: not la.providers["a"].health.in_service, 5, "a taken out")
        assert "no answer" in la.provider_status()["a"].reason
    finally:
        world.clouds["a"].hang.clear()


def test_quota_error_aborts_and_relaunches_without_failing(make_launcher, world):
    cfg = pool_config(
        [fake_provider("a", priority=1, quota={"instances": 1}), fake_provider("b", priority=2)],
        [{"name": "small"}],
    )
    la = make_launcher(cfg)
    la.run_until(lambda: la.providers["a"].quota_known, 5, "quota known")
    # Someone else's server fills the quota after the pool looked.
    world.clouds["a"].add_foreign({"owner": "someone-else"})
    reqs = [la.submit(["small"]) for _ in range(3)]
    la.run_until(
        lambda: all(la.store.get_request(r.id).state == "fulfilled" for r in reqs), 5, "fulfilled"
    )
    assert world.clouds["a"].quota_errors <= 1  # no quota-error storm
    assert la.providers["a"].health.in_service
    assert not any(la.store.get_request(r.id).declined_by for r in reqs)


def test_at_capacity_requests_wait_and_min_ready_does_not_churn(make_launcher, world):
    cfg = pool_config(
        [fake_provider("a", pool={"max-servers": 2})],
        [{"name": "small", "min-ready": 1}],
    )
    la = make_launcher(cfg)
    held = [la.submit(["small"]) for _ in range(2)]
    la.run_until(lambda: all(la.store.get_request(r.id).state == "fulfilled" for r in held), 5, "2")
    waiting = la.submit(["small"])
    for _ in range(20):
        la.tick()
    assert la.store.get_request(waiting.id).state == "requested"
    assert world.clouds["a"].calls.get("create", 0) == 2  # nothing launched over the limit
    la.release(la.store.get_request(held[0].id).nodes[0])
    la.run_until(lambda: la.store.get_request(waiting.id).state == "fulfilled", 5, "served later")


def test_leaked_instance_deleted_after_two_passes_and_counted(make_launcher, world):
    cfg = pool_config([fake_provider("a")], [{"name": "small"}])
    la = make_launcher(cfg)
    la.tick()
    cloud = world.clouds["a"]
    leak = cloud.add_foreign({META_POOL: "rackpool", META_NODE: "9999999999"})
    other = cloud.add_foreign({"owner": "not-us"})
    la.run_until(lambda: leak not in cloud.servers, 5, "leak deleted")
    assert other in cloud.servers
    assert b'rackpool_pool_leaked_instances_total{provider="a"} 1.0' in la.metrics.render()


def test_restart_mid_launch_resumes_and_leaks_nothing(make_launcher, world):
    cfg = pool_config([fake_provider("a", **{"boot-delay": 0.3})], [{"name": "small"}])
    la = make_launcher(cfg)
    req = la.submit(["small"])
    la.run_until(lambda: world.clouds["a"].servers, 5, "server submitted")
    # "kill": drop this launcher without any shutdown work, start another on the same store
    la2 = make_launcher(cfg)
    r = la2.run_until(lambda: (x := la2.store.get_request(req.id)).done and x, 5, "fulfilled")
    assert r.state == "fulfilled"
    for _ in range(30):
        la2.tick()
    assert len(world.clouds["a"].servers) == 1
    assert la2.store.get_node(r.nodes[0]).external_id in world.clouds["a"].servers


def test_paused_provider_gets_no_new_work(make_launcher):
    cfg = pool_config(
        [fake_provider("a", priority=1), fake_provider("b", priority=2)], [{"name": "small"}]
    )
    la = make_launcher(cfg)
    la.set_paused("a", True)
    req = la.submit(["small"])
    r = la.run_until(lambda: (x := la.store.get_request(req.id)).done and x, 5, "done")
    assert r.provider == "b"
    assert la.provider_status()["a"].paused
    la2_status = la.set_paused("a", False)
    assert not la2_status.paused


def test_hold_keeps_node_until_released(make_launcher):
    la = make_launcher(pool_config([fake_provider("a")], [{"name": "small"}]))
    req = la.submit(["small"])
    r = la.run_until(lambda: (x := la.store.get_request(req.id)).done and x, 5, "done")
    nid = r.nodes[0]
    la.hold(nid, comment="debugging")
    for _ in range(10):
        la.tick()
    assert la.store.get_node(nid).state == "hold"
    la.release(nid)
    la.run_until(lambda: nid not in {n.id for n in la.store.list_nodes()}, 5, "deleted")


def test_static_hosts_are_handed_out_one_node_each(make_launcher):
    hosts = [{"name": f"192.0.2.{i}", "labels": ["small"], "username": "ci"} for i in (1, 2)]
    static = {"name": "lab", "driver": "static", "host-key-checking": False,
              "pools": [{"nodes": hosts}]}  # fmt: skip
    la = make_launcher(pool_config([static], [{"name": "small"}]))
    reqs = [la.submit(["small"]) for _ in range(3)]
    la.run_until(
        lambda: sum(la.store.get_request(r.id).state == "fulfilled" for r in reqs) == 2, 5, "two"
    )
    for _ in range(20):
        la.tick()
    served = [la.store.get_request(r.id) for r in reqs]
    assert [r.state for r in served].count("requested") == 1  # the third waits for a host
    ips = {la.store.get_node(r.nodes[0]).interface_ip for r in served if r.state == "fulfilled"}
    assert ips == {"192.0.2.1", "192.0.2.2"}
    first = next(r for r in served if r.state == "fulfilled")
    la.release(first.nodes[0])
    waiting = next(r for r in served if r.state == "requested")
    done = la.run_until(
        lambda: (x := la.store.get_request(waiting.id)).state == "fulfilled" and x, 5, "third"
    )
    assert la.store.get_node(done.nodes[0]).interface_ip in ips


def test_node_left_allocated_to_a_missing_request_is_freed(make_launcher):
    """A launcher that died between allocating a node and saving its request leaves the
    node allocated to a request that does not list it: it is freed, then handed out."""
    la = make_launcher(pool_config([fake_provider("f1")], [{"name": "small", "min-ready": 1}]))
    node = la.run_until(lambda: nodes_in(la, "ready"), 5, "a ready node")[0]
    la.store.update_node(node.evolve(allocated_to="100-0999999999"))
    la.run_until(lambda: not la.store.get_node(node.id).allocated_to, 5, "freed")
    req = la.submit(["small"])
    done = la.run_until(lambda: (r := la.store.get_request(req.id)).done and r, 5, "fulfilled")
    assert done.nodes == (node.id,)
