"""An instance's network namespace: a veth on the host bridge, the address inside."""

from __future__ import annotations

from pathlib import Path

from rackpool.agent.hostnet import check_address, link_exists, run_ip, short_name
from rackpool.core.instance import NetworkSpec

NETNS_DIR = Path("/run/netns")


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
    if not link_exists(veth):
        run_ip(["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
    run_ip(["link", "set", veth, "master", bridge, "up"])
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
    if link_exists(veth):
        run_ip(["link", "del", veth], check=False)


def exists(instance_id: str) -> bool:
    return (NETNS_DIR / netns_name(instance_id)).exists()
