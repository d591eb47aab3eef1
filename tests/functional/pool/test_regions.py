"""The pool across real rackpool regions: outages, quota, leaks, launcher restarts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.support.region import RegionProcess, connect, running_region

from rackpool.core.clock import wait_for
from rackpool.pool.launcher import Launcher
from rackpool.pool.store import SqliteStore

from .conftest import openstack_provider, pool_config

HEALTH = {"error-threshold": 2, "probe-interval": 0.5, "call-timeout": 3}


@contextlib.contextmanager
def regions(tmp_path: Path, names: tuple[str, ...]) -> Iterator[dict[str, RegionProcess]]:
    procs: dict[str, RegionProcess] = {}
    try:
        for n in names:
            procs[n] = RegionProcess(tmp_path, n).start()
        yield procs
    finally:
        for p in procs.values():
            p.stop()


def test_killed_region_load_moves_and_it_is_used_again_after_return(tmp_path: Path) -> None:
    with regions(tmp_path, ("r1", "r2", "r3")) as procs:
        providers = [
            openstack_provider(n, p.clouds_yaml, n, priority=1 if n == "r1" else 2, health=HEALTH)
            for n, p in procs.items()
        ]
        la = Launcher(pool_config(providers), SqliteStore(tmp_path / "pool.sqlite"))
        la.start()
        try:
            wait_for(lambda: all(p.quota_known for p in la.providers.values()), 30, "quota known")
            first = [la.submit(["default"], requestor="ci") for _ in range(3)]
            la.run_until(lambda: all(la.store.get_request(r.id).done for r in first), 30, "warm")
            assert {la.store.get_request(r.id).provider for r in first} == {"r1"}
            # r1's controller dies entirely while requests keep coming.
            more = [la.submit(["default"], requestor="ci") for _ in range(3)]
            procs["r1"].kill()
            more += [la.submit(["default"], requestor="ci") for _ in range(6)]
            la.run_until(lambda: all(la.store.get_request(r.id).done for r in more), 60, "served")
            served = [la.store.get_request(r.id) for r in more]
            assert all(r.state == "fulfilled" for r in served), [r.reason for r in served]
            late = served[3:]
            assert {r.provider for r in late} <= {"r2", "r3"}
            wait_for(lambda: not la.providers["r1"].health.in_service, 30, "r1 out of service")
            # It comes back on the same port and is used again.
            procs["r1"].start()
            wait_for(lambda: la.providers["r1"].health.in_service, 30, "r1 probed back")
            again = la.submit(["default"], requestor="ci")
            r = la.run_until(lambda: (x := la.store.get_request(again.id)).done and x, 30, "again")
            assert r.state == "fulfilled" and r.provider == "r1"
        finally:
            la.stop()


def test_tight_quota_requests_wait_instead_of_failing(tmp_path: Path) -> None:
    with running_region(tmp_path, "r1", default_quota={"instances": 2}) as region:
        cfg = pool_config([openstack_provider("r1", region.clouds_yaml, "r1")])
        la = Launcher(cfg, SqliteStore(tmp_path / "pool.sqlite"))
        la.start()
        try:
            reqs = [la.submit(["default"]) for _ in range(5)]
            la.run_until(
                lambda: sum(la.store.get_request(r.id).state == "fulfilled" for r in reqs) == 2,
                30,
                "two fulfilled",
            )
            for r in reqs:
                assert la.store.get_request(r.id).state != "failed"
            # Releasing makes room; every request is served in turn, none fails.
            released: set[str] = set()
            for want in (3, 4, 5):
                holder = next(
                    got.nodes[0]
                    for got in (la.store.get_request(r.id) for r in reqs)
                    if got.state == "fulfilled" and got.nodes[0] not in released
                )
                la.release(holder)
                released.add(holder)
                wait_for(
                    lambda w=want: (
                        sum(la.store.get_request(r.id).state == "fulfilled" for r in reqs) >= w
                    ),
                    30,
                    f"{want} fulfilled",
                )
            assert all(la.store.get_request(r.id).state == "fulfilled" for r in reqs)
            errors = la.metrics.errors.labels("r1", "quota")._value.get()
            assert errors <= 1  # no quota-error storm
        finally:
            la.stop()


def test_leaked_server_cleaned_and_restart_mid_launch_leaks_nothing(tmp_path: Path) -> None:
    """A second launcher in this process takes over a store mid-launch (the first one's
    threads still live); test_restart.py SIGKILLs a real ``rackpool pool serve``."""
    with running_region(tmp_path, "r1") as region:
        prov = openstack_provider("r1", region.clouds_yaml, "r1")
        cfg = pool_config([prov], timing={"cleanup-interval": 0.3, "tick-interval": 0.05})
        conn = region.connect()
        image = conn.image.find_image("host")
        flavor = conn.compute.find_flavor("m1.tiny")
        leak = conn.compute.create_server(
            name="behind-our-back", image_id=image.id, flavor_id=flavor.id,
            metadata={"rackpool_pool": "rackpool", "rackpool_node_id": "0000009999"},
        )  # fmt: skip
        foreign = conn.compute.create_server(
            name="not-ours", image_id=image.id, flavor_id=flavor.id
        )
        la = Launcher(cfg, SqliteStore(tmp_path / "pool.sqlite"))
        req = la.submit(["default"])
        # Tick until the create is submitted, then "kill" the launcher (no shutdown work).
        la.run_until(
            lambda: any(n.external_id for n in la.store.list_nodes() if n.state == "building"),
            30,
            "server submitted",
        )
        la2 = Launcher(cfg, SqliteStore(tmp_path / "pool.sqlite"))
        la2.start()
        try:
            r = la2.run_until(lambda: (x := la2.store.get_request(req.id)).done and x, 30, "done")
            assert r.state == "fulfilled"
            node = la2.store.get_node(r.nodes[0])

            def servers() -> set[str]:
                return {s.id for s in connect(region.clouds_yaml, "rackpool-r1").compute.servers()}

            wait_for(lambda: leak.id not in servers(), 30, "leak deleted")
            assert servers() == {node.external_id, foreign.id}
            counted = b'rackpool_pool_leaked_instances_total{provider="r1"} 1.0'
            assert counted in la.metrics.render() + la2.metrics.render()
        finally:
            la2.stop()
            la.stop()
