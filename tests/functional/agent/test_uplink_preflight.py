"""A host whose agent config names a NIC it does not have refuses to register.

Before, the agent registered first and failed to join the NIC afterwards: the host
looked up to the controller (and to a deploy's health gate) while no instance on it
could be reached. Now ``rackpool agent`` exits 2 with one line naming
``network.uplink`` and the interfaces the host has, and the controller never hears of
the host.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.functional.agent.agents import AgentProcess
from tests.support.container_region import container_unavailable
from tests.support.region import AGENT_TOKEN, running_region

from rackpool.core.clock import wait_for


def test_agent_with_a_missing_uplink_refuses_before_registering(tmp_path: Path) -> None:
    why = container_unavailable()
    if why is not None:
        pytest.skip(f"the container driver cannot run here: {why}")
    with running_region(tmp_path, "r1", fake_hosts=[]) as region:
        agent = AgentProcess(
            tmp_path / "h1",
            {
                "controller": {"url": region.url, "token": AGENT_TOKEN, "timeout": 5},
                "host": {"name": "uplink-h1", "vcpus": 4, "ram_mb": 4096, "disk_gb": 20},
                "state_dir": str(tmp_path / "h1" / "state"),
                "driver": "container",
                "network": {"bridge": "rpupl0", "uplink": "rpnosuchnic0"},
                "poll_interval": 0.1,
            },
        ).start()
        try:
            wait_for(lambda: not agent.running(), 60, "the agent to exit")
            assert agent.proc is not None and agent.proc.returncode == 2, agent.log()
            log = agent.log()
            assert "network.uplink" in log and "rpnosuchnic0" in log, log
            assert "Traceback" not in log, log
            assert [h["name"] for h in region.region.hosts.list_hosts()] == []
        finally:
            agent.stop()
