"""A real VM through the real region API: Debian cloud image, libvirtd, cloud-init.

The module fixture (tests/support/vm_region.py) builds the image once (cached in
/var/cache/rackpool/images/<recipe hash>; ~2 min cold), starts libvirtd when it is not
running, and runs a region with one ``rackpool agent`` process on the ``libvirt`` driver
(qemu:///system; kvm or qemu as its probe decides) on a bridge holding 198.18.244.0/24.
Under TCG a guest answers SSH ~1-2 min after the POST, so each guest serves several
checks; four boots in all (~9 min here with other work on the 2 cores): a shell-script
user_data guest (log in, host keys, agent restart, delete), a ``#cloud-config`` guest
whose agent is killed mid-boot, a guest deleted while it builds (the agent finishes the
boot first, so this one costs a whole boot too), and the pool's. Deadlines are generous
(900 s to ACTIVE, 600 s to log in) because the machine is shared.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.vm_region import KEY_NAME, VmRack, vm_region

from rackpool.agent.virt.libvirt.adapter import parse_host_keys
from rackpool.core.clock import wait_for

pytestmark = pytest.mark.root
USER_DATA = "#!/bin/sh\necho user-data-ran-$(hostname) > /root/user-data.out\n"
# Nova passes user_data verbatim: cloud-init tells the forms apart by the first line
CLOUD_CONFIG = """\
#cloud-config
write_files:
  - path: /etc/rackpool/written.conf
    permissions: "0640"
    content: |
      written-by-cloud-config
runcmd:
  - [sh, -c, "echo runcmd-ran-$(hostname) > /root/runcmd.out"]
"""
OPENSTACK = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "openstack")


@pytest.fixture(scope="module")
def rack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmRack]:
    with vm_region(tmp_path_factory.mktemp("vm"), cidr="198.18.244.0/24") as r:
        yield r


def _fingerprints(keys: list[str] | tuple[str, ...]) -> set[str]:
    """SHA256 fingerprints of public keys, as ssh-keygen -l prints them."""
    out = subprocess.run(["ssh-keygen", "-l", "-f", "-"], input="".join(k + "\n" for k in keys),
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return set(re.findall(r"SHA256:[A-Za-z0-9+/]+", out))


def _console_fingerprints(console: str) -> set[str]:
    """The fingerprints in cloud-init's last FINGERPRINTS block (ec2-style, on the console)."""
    begin = console.rfind("-----BEGIN SSH HOST KEY FINGERPRINTS-----")
    end = console.find("-----END SSH HOST KEY FINGERPRINTS-----", begin)
    assert begin >= 0 and end > begin, "no SSH HOST KEY FINGERPRINTS block on the console"
    return set(re.findall(r"SHA256:[A-Za-z0-9+/]+", console[begin:end]))


def _openstack_console(rack: VmRack, server_id: str) -> str:
    """``openstack console log show SERVER``, the real client, as a user runs it."""
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(rack.region.clouds_yaml)}
    r = subprocess.run([OPENSTACK, "--os-cloud", f"rackpool-{rack.region.name}", "console",
                        "log", "show", server_id], env=env, capture_output=True, text=True,
                       timeout=120, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r.stdout


def _keyscan(address: str) -> set[str]:
    out = subprocess.run(["ssh-keyscan", "-T", "10", address], capture_output=True, text=True,
                         timeout=60, check=False).stdout  # fmt: skip
    return {" ".join(line.split()[1:3]) for line in out.splitlines() if not line.startswith("#")}


def _delete_and_check_nothing_left(
    rack: VmRack, server: Any, tap: str, within: float = 900
) -> None:
    """Delete through the API; then no domain, disk, config drive, console, qemu log or
    pid file, and no tap (on the bridge or at all) is left on the host (``within``)."""
    rack.conn.compute.delete_server(server)
    rack.conn.compute.wait_for_delete(server, wait=900)
    # the API forgets a BUILD server at once; the agent removes the guest (cancelling
    # its spawn if it still boots)
    wait_for(lambda: not rack.leftovers(server.id, tap), within, "nothing left on the host",
             interval=0.5)  # fmt: skip


# a cold image build (~2 min) runs in the first test's setup; a TCG boot ~1-2 min
@pytest.mark.timeout(1800)
def test_a_vm_boots_runs_cloud_init_survives_an_agent_restart_and_goes(rack: VmRack) -> None:
    image = rack.conn.image.get_image(rack.image_id)
    assert (image.disk_format, image.container_format) == ("qcow2", "bare")
    assert (image.os_distro, image.hw_disk_bus) == ("debian", "virtio")
    # what went in: exactly the recipe's pinned package set, with versions
    pinned = [f"{n}={v}" for n, v in rack.image.recipe.pins]
    assert image.properties["rackpool_packages"].splitlines() == pinned
    server, keys = rack.boot("vm-one", USER_DATA)
    assert keys, "cloud-init printed no host keys on the serial console"
    address = rack.address(server)
    tap = rack.tap(server.id)
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

    # one set of host keys everywhere: the KEYS and FINGERPRINTS blocks cloud-init printed
    # on the serial console, `openstack console log show`, and what sshd presents
    shown = _openstack_console(rack, server.id)
    assert list(parse_host_keys(shown)) == keys
    assert _console_fingerprints(shown) == _fingerprints(keys)
    assert _keyscan(address) == set(keys)

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
    _delete_and_check_nothing_left(rack, server, tap)


@pytest.mark.timeout(1800)
def test_cloud_config_user_data_and_an_agent_killed_while_the_vm_boots(rack: VmRack) -> None:
    server = rack.create("vm-two", CLOUD_CONFIG)
    wait_for(lambda: rack.qemu_alive(server.id), 300, "the domain started")
    assert rack.conn.compute.get_server(server.id).status == "BUILD"
    pid = rack.qemu_pid(server.id)
    rack.agent.kill()  # SIGKILL while cloud-init has not printed the host keys yet
    assert not parse_host_keys((rack.state_dir / "libvirt" / server.id / "console.log")
                               .read_text(errors="replace")), "booted before the kill"  # fmt: skip
    rack.agent.start()
    # the new agent adopts the boot in progress: the same qemu, ACTIVE once the keys show
    server, keys = rack.wait_active(server)
    assert keys and rack.qemu_pid(server.id) == pid
    assert "adopting the boot in progress" in rack.agent.log_path.read_text()
    result: list[subprocess.CompletedProcess[str]] = []

    def login() -> bool:
        r = rack.login(server, keys, "cat /root/runcmd.out /etc/rackpool/written.conf; "
                       "stat -c %a /etc/rackpool/written.conf; cloud-init status")  # fmt: skip
        result[:] = [r]
        return "runcmd-ran" in r.stdout and "status: running" not in r.stdout

    wait_for(login, 600, "ssh login, the runcmd output and cloud-init finished", interval=3)
    out = result[0].stdout.splitlines()
    assert out[:3] == ["runcmd-ran-vm-two", "written-by-cloud-config", "640"]
    assert out[-1] == "status: done"  # every cloud-init module ran without error
    _delete_and_check_nothing_left(rack, server, rack.tap(server.id))


@pytest.mark.timeout(1800)
def test_a_vm_deleted_while_it_builds_leaves_nothing(rack: VmRack) -> None:
    server = rack.create("vm-gone")
    wait_for(lambda: rack.qemu_alive(server.id), 300, "the domain started")
    tap = rack.tap(server.id)
    assert rack.conn.compute.get_server(server.id).status == "BUILD"
    # the agent cancels the boot (minutes under TCG): the host is clean within seconds
    _delete_and_check_nothing_left(rack, server, tap, within=60)
    assert "destroyed before it finished booting" in rack.agent.log_path.read_text()


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
        # the pool's keyscan found exactly the keys cloud-init printed on the console
        console = rack.conn.compute.get_server_console_output(server)["output"]
        assert set(node.host_keys) == set(parse_host_keys(console))
        out = rack.login(server, list(node.host_keys), "hostname")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == node.hostname
        la.release(node.id)
        wait_for(lambda: not list(rack.conn.compute.servers()), 180, "server deleted")
    finally:
        la.stop()
