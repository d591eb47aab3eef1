"""Agents against a real region controller, driven by openstacksdk (needs root)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tests.functional.agent.agents import AgentProcess
from tests.functional.agent.helpers import known_hosts, leftovers, ssh, wait_no_leftovers
from tests.support.container_region import KEY_NAME, container_region, container_unavailable
from tests.support.rootfs import build_rootfs_tarball

from rackpool.agent.virt.container.boot import parse_host_keys
from rackpool.core.clock import wait_for

pytestmark = pytest.mark.root

CIDR = "198.19.240.0/24"


@pytest.fixture(scope="module")
def rack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A region with two container agents (see tests/support/container_region.py)."""
    why = container_unavailable()
    if why:
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("rack")
    with container_region(tmp, cidr=CIDR, hosts=2) as built:
        conn = built.region.connect()
        flavor = min(conn.compute.flavors(), key=lambda f: (f.vcpus, f.ram))
        yield {"region": built.region, "agents": built.agents, "conn": conn,
               "admin": built.admin, "key": built.key, "flavor": flavor, "tmp": tmp}  # fmt: skip


def _hosts_up(region: Any) -> list[str]:
    return [h["name"] for h in region.region.hosts.list_hosts() if h["state"] == "up"]


def _status(conn: Any, server_id: str) -> str:
    return str(conn.compute.get_server(server_id).status)


def _login(rack: dict[str, Any], server: Any, command: str = "hostname", user: str = "root") -> str:
    """Run ``command`` over SSH, trusting only the host keys the console log printed."""
    conn = rack["conn"]
    server = conn.compute.get_server(server.id)
    address = server.access_ipv4 or next(iter(server.addresses.values()))[0]["addr"]
    console = conn.compute.get_server_console_output(server)["output"]
    known = known_hosts(rack["tmp"] / f"known-{server.id}", address, parse_host_keys(console))
    out = ssh(address, rack["key"], known, command, user=user)
    assert out.returncode == 0, (out.stderr, console[-1500:])
    return out.stdout.strip()


def _create(rack: dict[str, Any], name: str, **kw: Any) -> Any:
    return rack["conn"].compute.create_server(
        name=name, image_id="host", flavor_id=rack["flavor"].id, key_name=KEY_NAME,
        networks="auto", **kw,
    )  # fmt: skip


def _agent_of(rack: dict[str, Any], server_id: str) -> AgentProcess:
    host = rack["admin"].compute.get_server(server_id).compute_host
    if not host:
        host = rack["region"].region.hosts.spec(server_id) and next(
            h["name"] for h in rack["region"].region.hosts.list_hosts()
            if server_id in (h.get("instances") or [])
        )  # fmt: skip
    return rack["agents"][host]


def test_server_survives_agent_restart_and_host_down(rack):
    conn = rack["conn"]
    server = _create(rack, "node-e2e", user_data="IyEvYmluL3NoCmVjaG8gdWQtb2sK")  # echo ud-ok
    wait_for(lambda: _status(conn, server.id) == "ACTIVE", 30, "server ACTIVE")
    assert _login(rack, server) == "node-e2e"
    wait_for(
        lambda: "ud-ok" in conn.compute.get_server_console_output(server)["output"],
        15, "user_data output in the console log",
    )  # fmt: skip

    agent = _agent_of(rack, server.id)
    agent.stop()  # graceful restart, as an upgrade does
    agent.start()
    assert _login(rack, server) == "node-e2e"
    assert _status(conn, server.id) == "ACTIVE"

    agent.kill()  # the host goes silent: the controller declares it down
    wait_for(lambda: _status(conn, server.id) == "ERROR", 30, "server ERROR after host down")
    assert _login(rack, server) == "node-e2e"  # the instance itself still runs
    agent.start()
    wait_for(lambda: len(_hosts_up(rack["region"])) == 2, 30, "host back up")
    assert _login(rack, server) == "node-e2e"
    # the returning agent reconciles: it reports the instance running, so it is ACTIVE again
    wait_for(lambda: _status(conn, server.id) == "ACTIVE", 30, "server ACTIVE after host returns")

    state_dir = Path(agent.config_path.parent / "state")
    conn.compute.delete_server(server)
    host = agent.config_path.parent.name
    wait_no_leftovers(
        state_dir, server.id, f"/rackpool/{host}/{server.id}", 60,
        "the instance removed from its host without a trace", agent.log,
    )  # fmt: skip
    assert conn.compute.find_server(server.id) is None


def test_twenty_concurrent_servers_across_two_hosts(rack):
    conn = rack["conn"]
    servers = [_create(rack, f"node-c{i}") for i in range(20)]
    wait_for(lambda: all(_status(conn, s.id) == "ACTIVE" for s in servers), 60, "20 servers ACTIVE")
    with ThreadPoolExecutor(10) as pool:
        names = list(pool.map(lambda s: _login(rack, s), servers))
    assert names == [f"node-c{i}" for i in range(20)]
    hosts = {rack["admin"].compute.get_server(s.id).compute_host for s in servers}
    assert len(hosts) == 2  # spread over both hosts (and reachable across the rack switch)

    for s in servers:
        conn.compute.delete_server(s)
    wait_for(lambda: not list(conn.compute.servers()), 60, "all deleted")

    def traces() -> list[str]:
        found = []
        for name in rack["agents"]:
            state_dir = rack["tmp"] / name / "state"
            for s in servers:
                found += leftovers(state_dir, s.id, f"/rackpool/{name}/{s.id}")
        return found

    wait_for(lambda: traces() == [], 60, "every instance removed without a trace")


def test_server_from_an_uploaded_rootfs_tarball(rack):
    """A Glance image (rootfs tarball) is fetched by the agent, verified and booted."""
    conn = rack["conn"]
    tarball = build_rootfs_tarball(rack["tmp"] / "mini-image")
    image = conn.create_image(
        "mini", filename=str(tarball), disk_format="raw", container_format="bare", wait=True
    )
    try:
        server = conn.compute.create_server(
            name="node-mini", image_id=image.id, flavor_id=rack["flavor"].id,
            key_name=KEY_NAME, networks="auto",
        )  # fmt: skip
        status = wait_for(
            lambda: (st := _status(conn, server.id)) in ("ACTIVE", "ERROR") and st, 60, "boot"
        )
        assert status == "ACTIVE", conn.compute.get_server(server.id).fault
        assert _login(rack, server) == "node-mini"
        # the root is the tarball's, not the host's
        assert "ID=rackpool-mini" in _login(rack, server, "cat /etc/os-release")
        # the default user was created from the image's own tools
        assert _login(rack, server, "id -un", user="cloud") == "cloud"
        agent = _agent_of(rack, server.id)
        cached = agent.config_path.parent / "state" / "images" / image.id / "image"
        assert cached.read_bytes() == tarball.read_bytes()
        conn.compute.delete_server(server)
        wait_for(lambda: conn.compute.find_server(server.id) is None, 30, "server deleted")
    finally:
        conn.delete_image(image.id, wait=True)


def test_restarted_agent_reconciles_what_changed_while_it_was_away(rack):
    """Deleted while the agent was stopped → removed on start; died meanwhile → ERROR."""
    conn = rack["conn"]
    doomed, dying = _create(rack, "node-doomed"), _create(rack, "node-dying")
    for s in (doomed, dying):
        wait_for(lambda s=s: _status(conn, s.id) == "ACTIVE", 30, "server ACTIVE")

    agent = _agent_of(rack, doomed.id)
    host = agent.config_path.parent.name
    state_dir = agent.config_path.parent / "state"
    agent.stop()
    conn.compute.delete_server(doomed)  # the controller wants it gone; nobody is listening
    agent.start()
    wait_for(lambda: conn.compute.find_server(doomed.id) is None, 30, "deleted after restart")
    wait_no_leftovers(
        state_dir, doomed.id, f"/rackpool/{host}/{doomed.id}", 60,
        "the doomed instance removed without a trace", rack["agents"][host].log,
    )  # fmt: skip

    agent = _agent_of(rack, dying.id)
    runc_root = agent.config_path.parent / "state" / "runc"
    agent.stop()
    killed = subprocess.run(
        ["runc", "--root", str(runc_root), "kill", dying.id, "KILL"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert killed.returncode == 0, killed.stderr
    agent.start()
    wait_for(lambda: _status(conn, dying.id) == "ERROR", 30, "stopped instance reported")
    fault = conn.compute.get_server(dying.id).fault
    assert "stopped on host" in fault["message"], fault
    conn.compute.delete_server(dying)
    wait_for(lambda: conn.compute.find_server(dying.id) is None, 30, "deleted")
