"""``rackpool agent`` with the fake driver against a real region over HTTP (no root).

The agent's whole HTTP path in the default suite: register, heartbeat (with the
instances it runs), pull, spawn, report ACTIVE with host keys and console log,
delete, restart with adoption, host down and back. Users look through openstacksdk.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack.exceptions
import pytest
from tests.functional.agent.agents import FakeRack, fake_rack

from rackpool.agent.virt.container.boot import parse_host_keys
from rackpool.core.clock import wait_for

HOST = "fk-h1"


@pytest.fixture
def rack(tmp_path: Path) -> Iterator[FakeRack]:
    with fake_rack(tmp_path, hosts=1) as built:
        yield built


def _create(rack: FakeRack, name: str) -> Any:
    flavor = min(rack.conn.compute.flavors(), key=lambda f: (f.vcpus, f.ram))
    return rack.conn.compute.create_server(
        name=name, image_id="host", flavor_id=flavor.id, networks="auto"
    )


def _server(rack: FakeRack, server_id: str) -> Any:
    return rack.conn.compute.get_server(server_id)


def _wait_status(rack: FakeRack, server_id: str, status: str, timeout: float = 15) -> Any:
    def reached() -> Any:
        s = _server(rack, server_id)
        return s if s.status == status else None

    return wait_for(reached, timeout, f"server {server_id} {status}")


def _gone(rack: FakeRack, server_id: str) -> bool:
    try:
        rack.conn.compute.get_server(server_id)
    except openstack.exceptions.NotFoundException:
        return True
    return False


def _running_vms(rack: FakeRack) -> int:
    return int(rack.admin.compute.get_hypervisor(HOST).running_vms)


def _console_keys(rack: FakeRack, server_id: str) -> tuple[str, ...]:
    return parse_host_keys(rack.conn.compute.get_server_console_output(server_id)["output"])


def _recorded_keys(rack: FakeRack, server_id: str) -> tuple[str, ...]:
    record = json.loads(rack.instance_file(HOST, server_id).read_text())
    return tuple(" ".join(k.split()[:2]) for k in record["host_keys"])


def test_agent_builds_and_deletes_a_server_over_http(rack):
    hv = next(rack.admin.compute.hypervisors(details=True))
    assert (hv.name, hv.state, hv.hypervisor_type) == (HOST, "up", "fake")

    server = _create(rack, "node-1")
    active = _wait_status(rack, server.id, "ACTIVE")
    assert rack.admin.compute.get_server(server.id).compute_host == HOST
    # the console log the agent reported carries the instance's own host key
    keys = _console_keys(rack, server.id)
    assert len(keys) == 1 and keys[0].startswith("ssh-ed25519 ")
    assert keys == _recorded_keys(rack, server.id)
    assert active.access_ipv4 in rack.conn.compute.get_server_console_output(server.id)["output"]

    rack.conn.compute.delete_server(server)
    wait_for(lambda: _gone(rack, server.id), 15, "server gone (404)")
    # the agent destroyed it and reported DELETED: the host holds nothing any more
    wait_for(lambda: _running_vms(rack) == 0, 15, "the host's instance released")
    assert not rack.instance_file(HOST, server.id).exists()
    assert rack.host_states() == {HOST: "up"}


def test_servers_built_at_once_all_stay_active(rack):
    """Heartbeats sent while spawns report never make a fresh server look gone."""
    servers = [_create(rack, f"node-{i}") for i in range(30)]

    def all_active() -> bool:
        statuses = {s.id: s.status for s in rack.conn.compute.servers()}
        assert "ERROR" not in statuses.values(), statuses
        return all(statuses.get(s.id) == "ACTIVE" for s in servers)

    wait_for(all_active, 30, "30 servers ACTIVE")
    rack.wait_heartbeats(HOST, 2)
    assert all_active()


def test_restarted_agent_adopts_running_instances(rack):
    kept, doomed = _create(rack, "node-kept"), _create(rack, "node-doomed")
    for s in (kept, doomed):
        _wait_status(rack, s.id, "ACTIVE")
    keys = _console_keys(rack, kept.id)

    agent = rack.agents[HOST]
    agent.stop()  # as an upgrade does: the instances keep running
    rack.conn.compute.delete_server(doomed)  # nobody listens until the agent is back
    assert rack.instance_file(HOST, doomed.id).exists()
    agent.start()

    wait_for(lambda: _gone(rack, doomed.id), 15, "deleted after the agent came back")
    wait_for(lambda: _running_vms(rack) == 1, 15, "the doomed instance released")
    assert not rack.instance_file(HOST, doomed.id).exists()
    # adopted, not rebuilt: same instance, same host key, still ACTIVE
    assert _server(rack, kept.id).status == "ACTIVE"
    assert _console_keys(rack, kept.id) == keys == _recorded_keys(rack, kept.id)


def test_host_goes_down_without_heartbeats_and_comes_back_when_it_registers(rack):
    server = _create(rack, "node-1")
    _wait_status(rack, server.id, "ACTIVE")
    agent = rack.agents[HOST]

    agent.kill()  # the host goes silent
    rack.wait_hosts({HOST: "down"})
    faulted = _wait_status(rack, server.id, "ERROR")
    assert faulted.fault["message"].startswith(f"Host {HOST} is down: no heartbeat"), faulted.fault
    assert rack.instance_file(HOST, server.id).exists()  # the instance itself still runs

    agent.start()  # registers again and reports what still runs
    rack.wait_hosts({HOST: "up"})
    back = _wait_status(rack, server.id, "ACTIVE")
    assert not back.fault
    # the host takes new servers again
    second = _create(rack, "node-2")
    _wait_status(rack, second.id, "ACTIVE")


def test_instance_that_stops_running_goes_error_with_the_hosts_fault(rack):
    crashed, vanished = _create(rack, "node-crashed"), _create(rack, "node-vanished")
    for s in (crashed, vanished):
        _wait_status(rack, s.id, "ACTIVE")

    # the fake guest dies under a running agent; its next heartbeat says so
    stopped = rack.instance_file(HOST, crashed.id).with_suffix(".stopped")
    stopped.write_text("guest kernel panic\n")
    fault = _wait_status(rack, crashed.id, "ERROR").fault
    assert fault["message"] == f"Instance stopped on host {HOST}: guest kernel panic", fault

    rack.instance_file(HOST, vanished.id).unlink()  # gone from the host altogether
    fault = _wait_status(rack, vanished.id, "ERROR").fault
    assert fault["message"] == f"Instance is no longer on host {HOST}", fault

    # an ERROR server is still deleted from its host like any other
    rack.conn.compute.delete_server(crashed)
    wait_for(lambda: _gone(rack, crashed.id), 15, "crashed server gone")
    wait_for(lambda: _running_vms(rack) == 1, 15, "the crashed instance released")
    assert not rack.instance_file(HOST, crashed.id).exists()
    assert not stopped.exists()


def test_instance_the_controller_does_not_know_is_removed_from_the_host(rack):
    server = _create(rack, "node-1")
    _wait_status(rack, server.id, "ACTIVE")
    stray = rack.instance_file(HOST, str(uuid.uuid4()))
    stray.write_text(json.dumps({"host_keys": ["ssh-ed25519 STRAY"], "console": "stray\n"}))

    wait_for(lambda: not stray.exists(), 15, "stray instance removed by the agent")
    assert _server(rack, server.id).status == "ACTIVE"  # the known one is untouched
    assert rack.instance_file(HOST, server.id).exists()


def test_a_server_deleted_while_it_boots_is_gone_without_waiting_for_the_boot(tmp_path):
    """The agent cancels a slow spawn (a VM under TCG takes minutes) when its server is
    deleted, instead of finishing the boot first and only then deleting it."""
    with fake_rack(tmp_path, hosts=1, fake={"boot_seconds": 300}) as rack:
        server = _create(rack, "node-slow")
        agent = rack.agents[HOST]
        log = agent.log_path.read_text
        wait_for(lambda: f"spawning instance {server.id}" in log(), 15, "spawn started")
        assert _server(rack, server.id).status == "BUILD"
        rack.conn.compute.delete_server(server)
        # well inside the 300 s boot: only a cancelled spawn can be gone this soon
        wait_for(lambda: _gone(rack, server.id), 20, "server gone (404) while it booted")
        wait_for(lambda: _running_vms(rack) == 0, 15, "the host's instance released")
        assert not rack.instance_file(HOST, server.id).exists()
        assert f"instance {server.id} destroyed before it finished booting" in log()
        assert "ERROR" not in {s.status for s in rack.conn.compute.servers()}
        # the host keeps building: the next server boots (and is cancelled in turn)
        again = _create(rack, "node-next")
        wait_for(lambda: f"spawning instance {again.id}" in log(), 15, "next spawn")
        rack.conn.compute.delete_server(again)
        wait_for(lambda: _gone(rack, again.id), 20, "second server gone")
