"""A region controller with container-driver agents on this machine (root, runc, sshd).

For pool tests and ``bench/pool.py``: the same pieces ``rackpool up`` wires (a region,
``rackpool agent`` processes with the container driver on one rack switch, a keypair in
the ``ci`` project), built from the agent tests' helpers::

    why = container_unavailable()          # None when this machine can run containers
    with container_region(tmp_path, cidr="198.19.224.0/24", hosts=2) as rack:
        rack.region                        # RegionHandle (controller in this process)
        rack.clouds_yaml                   # rackpool-<region> / rackpool-<region>-admin
        rack.login(ip, host_keys, "hostname", tmp_path)   # ssh, host key checked strictly

Instances get addresses in ``cidr`` (inside 198.18.0.0/15, on this machine's rack
switch); :meth:`ContainerRack.login` refuses any other address. Cleanup runs even
when the body fails: every server is deleted through the API (the agents remove
containers, netns, veths, cgroups), what is still left is destroyed with the driver
directly, the agents are stopped by PID, and the bridges are removed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import logging
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rackpool.agent.config import AgentConfig
from rackpool.agent.hostnet import remove_host_network
from rackpool.agent.teardown import remove_container_host
from rackpool.cli.up import container_unavailable
from rackpool.core.clock import wait_for
from rackpool.core.config import load_model
from tests.functional.agent.agents import AgentProcess
from tests.functional.agent.helpers import known_hosts, make_keypair, ssh
from tests.support.region import AGENT_TOKEN, RegionHandle, running_region

log = logging.getLogger(__name__)

INSTANCE_RANGE = ipaddress.ip_network("198.18.0.0/15")
KEY_NAME = "ci-key"
_seq = itertools.count(1)

__all__ = ["KEY_NAME", "ContainerRack", "container_region", "container_unavailable"]


@dataclass
class ContainerRack:
    region: RegionHandle
    key: Path  # private key of the KEY_NAME keypair in the ci project
    agents: dict[str, AgentProcess]
    bridges: dict[str, str]  # host name -> its bridge
    switch: str
    tmp: Path
    _conn: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.region.name

    @property
    def clouds_yaml(self) -> Path:
        return self.region.clouds_yaml

    @property
    def admin(self) -> Any:
        if self._conn is None:
            self._conn = self.region.connect(admin=True)
        return self._conn

    def servers(self) -> list[Any]:
        """Every server in the region, all projects."""
        return list(self.admin.compute.servers(all_projects=True))

    def login(
        self, address: str, host_keys: tuple[str, ...] | list[str], command: str, tmp: Path
    ) -> subprocess.CompletedProcess[str]:
        """``ssh root@address command``, trusting exactly ``host_keys`` (StrictHostKeyChecking)."""
        if ipaddress.ip_address(address) not in INSTANCE_RANGE:
            raise ValueError(f"{address} is not an instance address (198.18.0.0/15)")
        known = known_hosts(tmp / f"known_hosts-{address}-{next(_seq)}", address, host_keys)
        return ssh(address, self.key, known, command)

    def instance_dirs(self, live_agents_only: bool = False) -> list[Path]:
        """Containers on this machine's hosts (those of running agents only, if asked)."""
        return [
            p
            for a in self.agents.values()
            if not live_agents_only or (a.proc is not None and a.proc.poll() is None)
            for p in (a.dir / "state" / "containers").glob("*")
        ]


def _agent_config(url: str, host: str, state: Path, bridge: str, switch: str) -> dict[str, Any]:
    return {
        "controller": {"url": url, "token": AGENT_TOKEN},
        "host": {"name": host, "vcpus": 32, "ram_mb": 32768, "disk_gb": 100},
        "state_dir": str(state),
        "driver": "container",
        "network": {"bridge": bridge, "switch": switch},
        "poll_interval": 0.1,
    }


def _hosts_up(region: RegionHandle) -> int:
    return sum(1 for h in region.region.hosts.list_hosts() if h["state"] == "up")


@contextlib.contextmanager
def container_region(
    tmp: Path, cidr: str, hosts: int = 1, name: str = "r1", start_timeout: float = 60
) -> Iterator[ContainerRack]:
    """A region ``name`` with ``hosts`` container agents; everything removed afterwards."""
    why = container_unavailable()
    if why is not None:
        raise RuntimeError(f"container regions are not possible here: {why}")
    if not ipaddress.ip_network(cidr).subnet_of(INSTANCE_RANGE):  # type: ignore[arg-type]
        raise ValueError(f"{cidr} is not inside 198.18.0.0/15")
    tag = f"{os.getpid() % 100000}{next(_seq)}"
    switch = f"rpp{tag}s"
    bridges = {f"p{tag}-h{n}": f"rpp{tag}h{n}" for n in range(1, hosts + 1)}
    with running_region(
        tmp, name, fake_hosts=[], network={"cidr": cidr},
        hosts={"heartbeat_interval": 0.5, "heartbeat_timeout": 5, "check_interval": 0.25},
        # the rack's tests create up to 20 servers at once in one project
        default_quota={"instances": 40, "cores": 160, "ram": 163840},
    ) as region:  # fmt: skip
        agents: dict[str, AgentProcess] = {}
        rack = ContainerRack(region, tmp / "id_ed25519", agents, bridges, switch, tmp)
        try:
            for host, bridge in bridges.items():
                cfg = _agent_config(region.url, host, tmp / host / "state", bridge, switch)
                agents[host] = AgentProcess(tmp / host, cfg).start()
            key, public = make_keypair(tmp)
            rack.key = key
            region.connect().compute.create_keypair(name=KEY_NAME, public_key=public)
            wait_for(lambda: _hosts_up(region) == hosts, start_timeout, "agents registered")
            yield rack
        finally:
            _teardown(rack)


def _teardown(rack: ContainerRack) -> None:
    """Delete every server, destroy leftovers directly, stop agents by PID, drop bridges."""
    try:
        for s in rack.servers():
            with contextlib.suppress(Exception):
                rack.admin.compute.delete_server(s)
        wait_for(lambda: not rack.servers(), 60, "servers deleted")
        wait_for(lambda: not rack.instance_dirs(True), 60, "agents removed their containers")
    except Exception as exc:  # noqa: BLE001 - a timeout or a dead API: cleanup must go on
        log.warning("container region cleanup: %s", exc)
    for agent in rack.agents.values():
        agent.stop()
    for host, agent in rack.agents.items():
        # containers an agent did not remove (it died?) go with the driver, as in rackpool down
        try:
            left = remove_container_host(load_model(agent.config_path, AgentConfig))
        except Exception as exc:  # noqa: BLE001 - the other hosts must still be removed
            log.warning("container region cleanup of %s: %s", host, exc)
            continue
        if left:
            log.warning("destroyed %d leftover container(s) on %s", left, host)
    remove_host_network(rack.switch)
