"""A region with one ``rackpool agent`` on the libvirt driver: real VMs on this machine.

For tests/e2e/test_vm_boot.py and bench/vm_ready.py::

    with vm_region(tmp, cidr="198.18.244.0/24") as rack:
        server, keys = rack.boot("vm-one", user_data="#!/bin/sh\\n...")
        rack.login(server, keys, "hostname")        # ssh root@, host keys checked strictly

It builds the Debian cloud image (cached by recipe hash under
/var/cache/rackpool/images), starts libvirtd when it is not running, runs the region in
this process and the agent as a child process (qemu:///system, domain type probed).
Guests only get addresses in ``cidr`` (inside 198.18.0.0/15) on a bridge made here.
Cleanup runs when the body fails too: servers deleted through the API, leftover domains
and files destroyed with the driver, the agent stopped by PID, bridges removed, libvirtd
stopped if this started it.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import logging
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rackpool.agent.hostnet import remove_host_network
from rackpool.agent.virt.libvirt.adapter import parse_host_keys
from rackpool.core.clock import wait_for
from rackpool.deploy.images import DEFAULT_CACHE, BuiltImage, build_image, debian_cloud
from rackpool.deploy.images.upload import upload
from tests.functional.agent.agents import AgentProcess
from tests.functional.agent.helpers import known_hosts, make_keypair, ssh
from tests.support.libvirtd import running_libvirtd
from tests.support.region import AGENT_TOKEN, RegionHandle, running_region

log = logging.getLogger(__name__)
INSTANCE_RANGE = ipaddress.ip_network("198.18.0.0/15")
KEY_NAME = "vm-key"
FLAVOR = "3"  # m1.medium: 2 vCPUs (TCG boots faster with 2), 2 GiB, 10 GB disk


@dataclass
class VmRack:
    region: RegionHandle
    conn: Any  # openstacksdk, the ci project
    key: Path
    image: BuiltImage
    image_id: str
    agent: AgentProcess
    host: str
    bridge: str
    tmp: Path

    @property
    def state_dir(self) -> Path:
        return self.agent.dir / "state"

    def create(self, name: str, user_data: str | None = None) -> Any:
        ud = base64.b64encode(user_data.encode()).decode() if user_data else None
        return self.conn.compute.create_server(
            name=name, image_id=self.image_id, flavor_id=FLAVOR, key_name=KEY_NAME,
            networks="auto", user_data=ud,
        )  # fmt: skip

    def wait_active(self, server: Any, timeout: float = 900) -> tuple[Any, list[str]]:
        """The ACTIVE server and the host keys cloud-init printed on its console."""
        server = self.conn.compute.wait_for_server(server, wait=timeout, interval=1)
        console = self.conn.compute.get_server_console_output(server)["output"]
        return server, list(parse_host_keys(console))

    def boot(self, name: str, user_data: str | None = None) -> tuple[Any, list[str]]:
        return self.wait_active(self.create(name, user_data))

    @staticmethod
    def address(server: Any) -> str:
        address = str(server.access_ipv4 or server.addresses["public"][0]["addr"])
        if ipaddress.ip_address(address) not in INSTANCE_RANGE:
            raise ValueError(f"{address} is not an instance address (198.18.0.0/15)")
        return address

    def login(
        self, server: Any, keys: list[str], command: str, user: str = "root"
    ) -> subprocess.CompletedProcess[str]:
        address = self.address(server)
        known = known_hosts(self.tmp / f"known_hosts-{server.id}", address, keys)
        try:
            return ssh(address, self.key, known, command, user=user, timeout=60)
        except subprocess.TimeoutExpired as exc:  # a guest starved of CPU: try again later
            return subprocess.CompletedProcess(exc.cmd, 255, "", f"ssh timed out: {exc}")

    def qemu_pid(self, server_id: str) -> int:
        return int(Path(f"/run/libvirt/qemu/rackpool-{server_id}.pid").read_text())

    def qemu_alive(self, server_id: str) -> bool:
        return Path(f"/run/libvirt/qemu/rackpool-{server_id}.pid").exists()

    def tap(self, server_id: str) -> str:
        """The host-side tap device of the server's running domain (libvirt's vnetN)."""
        out = subprocess.run(
            ["virsh", "-c", "qemu:///system", "domiflist", f"rackpool-{server_id}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        taps = [line.split()[0] for line in out.splitlines()[2:] if line.strip()]
        if len(taps) != 1:
            raise AssertionError(f"expected one interface, virsh says:\n{out}")
        return taps[0]

    def leftovers(self, server_id: str, tap: str) -> list[str]:
        """What is still on this host of a deleted server; [] when delete left nothing."""
        name = f"rackpool-{server_id}"
        found = []
        domains = subprocess.run(
            ["virsh", "-c", "qemu:///system", "list", "--all", "--name"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        if name in domains:
            found.append(f"domain {name}")
        d = self.state_dir / "libvirt" / server_id
        if d.exists():  # disk.qcow2, config.iso, console.log
            found.append(f"instance dir {d}: {sorted(p.name for p in d.iterdir())}")
        for f in (Path(f"/run/libvirt/qemu/{name}.pid"), Path(f"/var/log/libvirt/qemu/{name}.log")):
            if f.exists():
                found.append(str(f))
        if Path(f"/sys/class/net/{tap}").exists():
            found.append(f"tap {tap}")
        ports = subprocess.run(["ip", "-o", "link", "show", "master", self.bridge],
                               capture_output=True, text=True, check=False).stdout  # fmt: skip
        if f" {tap}:" in ports or f" {tap}@" in ports:
            found.append(f"bridge port {tap} on {self.bridge}")
        return found


def _agent_config(url: str, host: str, state: Path, bridge: str, switch: str) -> dict[str, Any]:
    return {
        "controller": {"url": url, "token": AGENT_TOKEN},
        # room for 4 m1.medium guests at once (bench/vm_ready.py --parallel 4) and a spare
        "host": {"name": host, "vcpus": 16, "ram_mb": 16384, "disk_gb": 100},
        "state_dir": str(state),
        "driver": "libvirt",
        "network": {"bridge": bridge, "switch": switch},
        "poll_interval": 0.2,
        "libvirt": {"ready_timeout": 600},
    }


@contextlib.contextmanager
def vm_region(tmp: Path, cidr: str, name: str = "vm1") -> Iterator[VmRack]:
    if not ipaddress.ip_network(cidr).subnet_of(INSTANCE_RANGE):  # type: ignore[arg-type]
        raise ValueError(f"{cidr} is not inside 198.18.0.0/15")
    built = build_image(debian_cloud("debian-12-cloud"), "qcow2", DEFAULT_CACHE)
    tag = os.getpid() % 100000
    host, bridge, switch = f"{name}-h1", f"rpv{tag}b", f"rpv{tag}s"
    with running_libvirtd(), running_region(
        tmp, name, fake_hosts=[], network={"cidr": cidr},
        # generous: a loaded 2-core machine running TCG guests can delay a heartbeat
        hosts={"heartbeat_interval": 1.0, "heartbeat_timeout": 120, "check_interval": 0.5},
    ) as region:  # fmt: skip
        agent = AgentProcess(tmp / host, _agent_config(region.url, host, tmp / host / "state",
                                                       bridge, switch))  # fmt: skip
        conn = region.connect()
        try:
            agent.start()
            key, public = make_keypair(tmp)
            conn.compute.create_keypair(name=KEY_NAME, public_key=public)
            image_id = upload(built, "qcow2", conn)  # what rackpool image build --upload does
            up = lambda: any(h["state"] == "up" for h in region.region.hosts.list_hosts())  # noqa: E731
            wait_for(up, 180, "libvirt agent registered")
            yield VmRack(region, conn, key, built, image_id, agent, host, bridge, tmp)
        finally:
            _teardown(conn, agent, host, bridge, switch)


def _teardown(conn: Any, agent: AgentProcess, host: str, bridge: str, switch: str) -> None:
    try:
        for s in list(conn.compute.servers()):
            conn.compute.delete_server(s)
        wait_for(lambda: not list(conn.compute.servers()), 120, "servers deleted")
        instances = agent.dir / "state" / "libvirt"
        wait_for(lambda: not [p for p in instances.glob("*") if p.is_dir()], 120, "domains gone")
    except Exception as exc:  # noqa: BLE001 - cleanup must go on
        log.warning("vm region cleanup: %s", exc)
    agent.stop()
    try:
        _destroy_leftovers(agent.dir / "state", host, bridge)
    finally:
        remove_host_network(bridge, switch)


def _destroy_leftovers(state: Path, host: str, bridge: str) -> None:
    """Domains the agent did not remove (it died?) go with the driver directly."""
    from rackpool.agent.virt.libvirt import LibvirtConfig, LibvirtDriver

    # ready_timeout 0: list guests still booting too (a driver would leave them to a spawn)
    d = LibvirtDriver(LibvirtConfig(domain_type="qemu", ready_timeout=0), state, host, bridge)
    try:
        for inst in d.list():
            log.warning("destroying leftover domain of %s", inst.id)
            d.destroy(inst.id)
    finally:
        d.close()
