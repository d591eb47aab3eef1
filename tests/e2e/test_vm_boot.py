"""A real VM through the real region API: Debian cloud image, libvirtd, cloud-init.

The module fixture (tests/support/vm_region.py) builds the image once (cached in
/var/cache/rackpool/images/<recipe hash>; ~2 min cold), starts libvirtd when it is not
running, and runs a region with one ``rackpool agent`` process on the ``libvirt`` driver
(qemu:///system; kvm or qemu as its probe decides) on a bridge holding 198.18.244.0/24.
Under TCG on a loaded 2-core machine a guest answers SSH ~2 min after the POST, so one
guest serves the whole story (boot, log in, agent restart, delete): deadlines are
generous (900 s to ACTIVE, 600 s to log in).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.vm_region import KEY_NAME, VmRack, vm_region

from rackpool.core.clock import wait_for

pytestmark = pytest.mark.root
USER_DATA = "#!/bin/sh\necho user-data-ran-$(hostname) > /root/user-data.out\n"


@pytest.fixture(scope="module")
def rack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmRack]:
    with vm_region(tmp_path_factory.mktemp("vm"), cidr="198.18.244.0/24") as r:
        yield r


def _domains() -> list[str]:
    out = subprocess.run(
        ["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [n for n in out.split() if n.startswith("rackpool-")]


def _bridge_ports(bridge: str) -> str:
    return subprocess.run(["ip", "-o", "link", "show", "master", bridge],
                          capture_output=True, text=True, check=False).stdout  # fmt: skip


# a cold image build (~2 min) runs in the first test's setup; a TCG boot ~1-2 min
@pytest.mark.timeout(1800)
def test_a_vm_boots_runs_cloud_init_survives_an_agent_restart_and_goes(rack: VmRack) -> None:
    image = rack.conn.image.get_image(rack.image_id)
    assert (image.disk_format, image.container_format) == ("qcow2", "bare")
    assert (image.os_distro, image.hw_disk_bus) == ("debian", "virtio")
    assert "cloud-init=" in image.properties["rackpool_packages"]  # what went in
    server, keys = rack.boot("vm-one", USER_DATA)
    assert keys, "cloud-init printed no host keys on the serial console"
    address = rack.address(server)
    result: list[subprocess.CompletedProcess[str]] = []

    def login() -> bool:
        # cloud-init runs the user script in its final stage, after sshd started
        r = rack.login(server, keys, "hostname; cat /root/user-data.out; uname -r; "
                       "ip -4 -o addr show eth0; cat /home/cloud/.ssh/authorized_keys")  # fmt: skip
        result[:] = [r]
        return r.returncode == 0 and "user-data-ran" in r.stdout

    wait_for(login, 600, "ssh login and user_data output", interval=3)
    out = result[0].stdout.splitlines()
    assert out[0] == "vm-one"  # hostname = server name, from the config drive
    assert out[1] == "user-data-ran-vm-one"
    assert out[2] == rack.image.kernel_version  # the guest's own kernel
    assert f"inet {address}/24" in out[3]  # static address from network_data.json
    assert rack.key.with_suffix(".pub").read_text().split()[1] in out[4]  # default user too

    # an agent restart leaves the guest running and adopts it: the restarted agent's
    # heartbeats list it as running (else the controller would fault the server)
    (host,) = rack.region.region.hosts.list_hosts()
    assert host["driver"] in ("libvirt-kvm", "libvirt-qemu")  # the probed domain type
    pid = rack.qemu_pid(server.id)
    rack.agent.stop()
    restarted = time.time()
    rack.agent.start()
    beats = lambda: rack.region.region.hosts.list_hosts()[0]["last_heartbeat"]  # noqa: E731
    wait_for(lambda: beats() > restarted + 3, 180, "heartbeats of the restarted agent")
    assert rack.qemu_pid(server.id) == pid
    assert rack.conn.compute.get_server(server.id).status == "ACTIVE"
    assert rack.login(server, keys, "true").returncode == 0

    # delete leaves nothing: domain, disk, config drive, console, tap on the bridge
    rack.conn.compute.delete_server(server)
    rack.conn.compute.wait_for_delete(server, wait=180)
    wait_for(lambda: not _domains(), 60, "domain gone")
    assert not (rack.state_dir / "libvirt" / server.id).exists()
    assert "vnet" not in _bridge_ports(rack.bridge)
    assert not Path(f"/run/libvirt/qemu/rackpool-{server.id}.pid").exists()


@pytest.mark.timeout(1800)
def test_a_pool_label_on_the_vm_image_hands_out_a_vm_with_scanned_host_keys(
    rack: VmRack, tmp_path: Path
) -> None:
    from tests.functional.pool.conftest import openstack_provider, pool_config

    from rackpool.pool.launcher import Launcher
    from rackpool.pool.store import SqliteStore

    label = {"name": "default", "cloud-image": "debian-12-cloud", "flavor-name": "m1.medium",
             "key-name": KEY_NAME, "username": "root"}  # fmt: skip
    provider = openstack_provider(
        rack.region.name, rack.region.clouds_yaml, rack.region.name,
        **{"host-key-checking": True, "boot-timeout": 900, "launch-timeout": 900,
           "pools": [{"name": "main", "labels": [label]}]},
    )  # fmt: skip
    la = Launcher(pool_config([provider]), SqliteStore(tmp_path / "pool"))
    la.start()
    try:
        req = la.submit(["default"], requestor="ci")
        done = wait_for(lambda: (r := la.store.get_request(req.id)).done and r, 1200, "a VM node")
        assert done.state == "fulfilled"
        node = la.store.get_node(done.nodes[0])
        assert node.host_keys, "node handed out without scanned host keys"
        server = rack.conn.compute.get_server(node.external_id)
        out = rack.login(server, list(node.host_keys), "hostname")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == node.hostname
        la.release(node.id)
        wait_for(lambda: not list(rack.conn.compute.servers()), 180, "server deleted")
    finally:
        la.stop()
