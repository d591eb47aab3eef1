"""Agents as child processes (``rackpool agent --config``) so tests can kill them.

``fake_rack`` needs no root: a region controller in this process on a loopback port
and ``rackpool agent`` processes with the ``fake`` driver talking to it over HTTP, with
short heartbeats so host down/up takes seconds::

    with fake_rack(tmp_path, hosts=1) as rack:
        rack.conn                          # openstacksdk, the ci project
        rack.agents["fk-h1"].kill()        # the host goes silent
        rack.instance_file("fk-h1", sid)   # the fake driver's record of one instance
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tests.support import procs
from tests.support.region import AGENT_TOKEN, RegionHandle, running_region

from rackpool.core.clock import wait_for

# Heartbeats every 0.2 s; a host silent for 2 s is down (checked every 0.1 s).
FAST_HOSTS = {"heartbeat_interval": 0.2, "heartbeat_timeout": 2.0, "check_interval": 0.1}


class AgentProcess:
    def __init__(self, directory: Path, config: dict[str, Any], log_format: str = "text") -> None:
        self.dir = directory
        self.log_format = log_format  # "json": lines for the ops index
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path = directory / "agent.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = directory / "agent.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        self.proc = procs.spawn(
            ["agent", "--config", str(self.config_path), "--log-format", self.log_format,
             "--log-level", "INFO"],
            self.log_path,
        )  # fmt: skip
        return self

    def kill(self) -> None:
        procs.kill(self.proc)

    def stop(self) -> None:
        procs.stop(self.proc, timeout=15)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def fake_agent_config(url: str, host: str, state_dir: Path) -> dict[str, Any]:
    return {
        "controller": {"url": url, "token": AGENT_TOKEN, "timeout": 5},
        "host": {"name": host, "vcpus": 16, "ram_mb": 32768, "disk_gb": 200},
        "state_dir": str(state_dir),
        "driver": "fake",
        "poll_interval": 0.05,
    }


@dataclass
class FakeRack:
    region: RegionHandle
    agents: dict[str, AgentProcess]
    conn: Any  # openstacksdk Connection, ci project
    admin: Any  # openstacksdk Connection, admin project

    def instance_file(self, host: str, server_id: str) -> Path:
        """The fake driver's record of ``server_id`` on ``host`` (exists while it runs)."""
        return self.agents[host].dir / "state" / "fake" / f"{server_id}.json"

    def host_states(self) -> dict[str, str]:
        """Host name → up/down, as an admin sees it through ``os-hypervisors``."""
        return {h.name: h.state for h in self.admin.compute.hypervisors(details=True)}

    def last_heartbeat(self, host: str) -> float:
        """When the controller last heard ``host`` (admin host API, controller clock)."""
        resp = self.admin.session.get(
            f"{self.region.url}/admin/v1/hosts", headers={"X-Auth-Token": self.admin.auth_token}
        )
        return float(next(h for h in resp.json()["hosts"] if h["name"] == host)["last_heartbeat"])

    def wait_heartbeats(self, host: str, count: int = 2, timeout: float = 10) -> None:
        """Wait until the controller has heard ``count`` more heartbeats from ``host``."""
        for _ in range(count):
            seen = self.last_heartbeat(host)
            wait_for(
                lambda seen=seen: self.last_heartbeat(host) > seen, timeout, f"heartbeat of {host}"
            )

    def wait_hosts(self, expected: dict[str, str], timeout: float = 20) -> None:
        wait_for(lambda: self.host_states() == expected, timeout, f"hosts {expected}")


@contextlib.contextmanager
def fake_rack(
    tmp: Path,
    hosts: int = 1,
    name: str = "fk",
    log_format: str = "text",
    fake: dict[str, Any] | None = None,
) -> Iterator[FakeRack]:
    """A region with ``hosts`` fake-driver agents (processes); all stopped afterwards.

    ``fake``: the agents' ``fake:`` driver settings (e.g. ``boot_seconds``)."""
    # the rack's tests create up to 30 servers at once in one project
    quota = {"instances": 100, "cores": 400, "ram": 409600}
    with running_region(tmp, name, fake_hosts=[], hosts=FAST_HOSTS, default_quota=quota) as region:
        agents: dict[str, AgentProcess] = {}
        rack = FakeRack(region, agents, region.connect(), region.connect(admin=True))
        try:
            for n in range(1, hosts + 1):
                host = f"{name}-h{n}"
                cfg = fake_agent_config(region.url, host, tmp / host / "state")
                if fake is not None:
                    cfg["fake"] = fake
                agents[host] = AgentProcess(tmp / host, cfg, log_format).start()
            rack.wait_hosts({h: "up" for h in agents})
            yield rack
        finally:
            for agent in agents.values():
                agent.stop()
