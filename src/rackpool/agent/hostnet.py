"""Host-level networking shared by the drivers: the host bridge and the rack switch.

Layout on one machine (see docs/agent.md)::

    instance netns eth0 ── veth ── <bridge> (one per agent/host) ── veth ── <switch> (one per region)
                                                                             └─ gateway address, e.g. 198.18.0.1/16

Every step is idempotent so several agents can start at once on one machine.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import subprocess
from collections.abc import Sequence

from rackpool.agent.errors import DriverError, HostNetworkBusy

log = logging.getLogger("rackpool.agent.hostnet")

_ALLOWED = ipaddress.ip_network("198.18.0.0/15")


def run_ip(args: Sequence[str], *, check: bool = True, stdin: str | None = None) -> str:
    """Run ``ip ARGS``; raise DriverError with ip's message on failure (when ``check``)."""
    proc = subprocess.run(
        ["ip", *args], input=stdin, capture_output=True, text=True, check=False, timeout=30
    )
    if check and proc.returncode != 0:
        raise DriverError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def link_exists(name: str) -> bool:
    return run_ip(["-o", "link", "show", "dev", name], check=False) != ""


def check_address(address: str) -> None:
    """Refuse any instance or gateway address outside 198.18.0.0/15."""
    if ipaddress.ip_address(address) not in _ALLOWED:
        raise DriverError(f"address {address} is outside 198.18.0.0/15; refusing to configure it")


def short_name(prefix: str, key: str) -> str:
    """A stable interface name of at most 15 characters derived from ``key``."""
    return prefix + hashlib.sha1(key.encode()).hexdigest()[: 15 - len(prefix)]


def ensure_bridge(name: str) -> None:
    if not link_exists(name):
        proc = subprocess.run(
            ["ip", "link", "add", name, "type", "bridge"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if proc.returncode != 0 and not link_exists(name):
            raise HostNetworkBusy(f"cannot create bridge {name}: {proc.stderr.strip()}")
        log.info("created bridge %s", name)
    run_ip(["link", "set", name, "up"])


def ensure_host_network(
    bridge: str,
    switch: str | None = None,
    gateway: str | None = None,
    prefix: int | None = None,
    uplink: str | None = None,
) -> None:
    """Create the host bridge; join it to the rack switch (with the gateway) or an uplink."""
    ensure_bridge(bridge)
    if uplink:
        run_ip(["link", "set", uplink, "master", bridge, "up"])
    if not switch:
        return
    ensure_bridge(switch)
    if gateway and prefix:
        check_address(gateway)
        cidr = f"{gateway}/{prefix}"
        have = run_ip(["-o", "addr", "show", "dev", switch])
        if f" {cidr} " not in have:
            run_ip(["addr", "replace", cidr, "dev", switch])
    host_end, switch_end = short_name("rph", bridge), short_name("rps", bridge)
    if not link_exists(host_end):
        run_ip(["link", "add", host_end, "type", "veth", "peer", "name", switch_end], check=False)
        if not link_exists(host_end):
            raise HostNetworkBusy(f"cannot create veth {host_end} between {bridge} and {switch}")
    run_ip(["link", "set", host_end, "master", bridge, "up"])
    run_ip(["link", "set", switch_end, "master", switch, "up"])


def remove_host_network(bridge: str, switch: str | None = None) -> None:
    """Remove what ``ensure_host_network`` made (``rackpool down``, tests); also a lone switch."""
    for name in (short_name("rph", bridge), bridge, *([switch] if switch else [])):
        if link_exists(name):
            run_ip(["link", "del", name], check=False)
