"""An instance's network namespace: a veth on the host bridge, the address inside."""

from __future__ import annotations

from pathlib import Path

from rackpool.agent.hostnet import check_address, run_ip, short_name
from rackpool.core.instance import NetworkSpec

NETNS_DIR = Path("/run/netns")
SYS_NET = Path("/sys/class/net")  # this (the host's) namespace's links


def netns_name(instance_id: str) -> str:
    return f"rp-{instance_id}"


def veth_name(instance_id: str) -> str:
    return short_name("rpv", instance_id)


def plug(instance_id: str, bridge: str, net: NetworkSpec) -> str:
    """Create the namespace and veth, configure the address; returns the netns path."""
    check_address(net.address)
    check_address(net.gateway)
    ns, veth = netns_name(instance_id), veth_name(instance_id)
    if not (NETNS_DIR / ns).exists():
        run_ip(["netns", "add", ns])
    host = f"link set {veth} master {bridge} up\n"
    if not _host_link(veth):
        host = f"link add {veth} type veth peer name eth0 netns {ns}\n" + host
    run_ip(["-batch", "-"], stdin=host)
    batch = (
        f"link set lo up\n"
        f"link set eth0 address {net.mac}\n"
        f"addr replace {net.address}/{net.prefix} dev eth0\n"
        f"link set eth0 up\n"
        f"route replace default via {net.gateway} dev eth0\n"
    )
    run_ip(["-n", ns, "-batch", "-"], stdin=batch)
    return str(NETNS_DIR / ns)


def unplug(instance_id: str) -> None:
    """Remove the namespace (and with it the veth); idempotent."""
    ns, veth = netns_name(instance_id), veth_name(instance_id)
    if (NETNS_DIR / ns).exists():
        run_ip(["netns", "del", ns], check=False)
    if _host_link(veth):
        run_ip(["link", "del", veth], check=False)


def _host_link(name: str) -> bool:
    """The link exists in the host's namespace (sysfs: no ``ip`` process to ask)."""
    return (SYS_NET / name).exists()


def exists(instance_id: str) -> bool:
    return (NETNS_DIR / netns_name(instance_id)).exists()
