"""``rackpool pool serve`` SIGKILLed while a server is being built, then started again."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.support.region import running_region

from rackpool.core.clock import wait_for

from .conftest import openstack_provider
from .daemon import PoolProcess

LEAKED = re.compile(r'^rackpool_pool_leaked_instances_total\{provider="r1"\} (\S+)$', re.M)


def leaked(pool: PoolProcess) -> float:
    found = LEAKED.search(pool.metrics())
    return float(found.group(1)) if found else 0.0


def daemon_config(tmp_path: Path, provider: dict[str, Any]) -> dict[str, Any]:
    return {
        "state-dir": str(tmp_path / "state"),
        "api": {"listen": "127.0.0.1", "port": 0, "token": "restart-test-token"},
        "timing": {"tick-interval": 0.05, "cleanup-interval": 0.3},
        "labels": [{"name": "default", "min-ready": 0}],
        "providers": [provider],
    }


def test_sigkilled_mid_launch_restart_completes_request_and_leaks_nothing(tmp_path: Path) -> None:
    # One fake host that keeps every server in BUILD for 3 s: time to kill mid-launch.
    slow = [{"name": "r1-slow", "build_delay": 3.0}]
    with running_region(tmp_path, "r1", fake_hosts=slow) as region:
        conn = region.connect()
        prov = openstack_provider("r1", region.clouds_yaml, "r1")
        pool = PoolProcess(tmp_path / "pool", daemon_config(tmp_path, prov)).start()
        try:
            req = pool.client().request(["default"], requestor="ci")

            def building() -> list[Any]:
                return [s for s in conn.compute.servers() if s.status == "BUILD"]

            server = wait_for(building, 30, "the pool's server in BUILD")[0]
            first_pid = pool.pid
            pool.kill()  # SIGKILL: no shutdown work at all
            assert conn.compute.get_server(server.id).status == "BUILD"

            pool.start()
            assert pool.pid != first_pid
            client = pool.client()
            done = client.wait(req["id"], 60)
            assert done["state"] == "fulfilled", done
            facts = done["nodes"][0]
            assert facts["interface_ip"].startswith("198.18.") and facts["region"] == "r1"
            node = next(n for n in client.nodes() if n["id"] == facts["id"])
            # The restarted daemon adopted the server it had asked for: no second create.
            assert node["external_id"] == server.id
            assert {s.id for s in conn.compute.servers()} == {server.id}
            assert leaked(pool) == 0  # and nothing was created twice and cleaned up

            client.release(facts["id"])
            wait_for(lambda: not list(conn.compute.servers()), 30, "the server deleted")
            wait_for(lambda: not client.nodes(), 30, "the node record gone")
            assert leaked(pool) == 0
        finally:
            pool.stop()
