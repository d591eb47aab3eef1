"""A heartbeat's instance list never overtakes a spawn's ACTIVE report.

The agent class runs in this process, ticked by the test, with its real HTTP client
against a region on loopback; its fake driver holds a spawn until the heartbeat has
listed instances, so the list is stale when the spawn finishes. The agent must not let
that stale list reach the controller after the ACTIVE report (the new server would go
ERROR as "no longer on host").
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.region import AGENT_TOKEN, running_region

from rackpool.agent.config import AgentConfig
from rackpool.agent.daemon import Agent
from rackpool.agent.virt.base import InstanceState
from rackpool.agent.virt.fake import FakeConfig, FakeDriver
from rackpool.core.clock import Timeout, iterate_timeout, wait_for

HOST = "race-h1"


class StaleListDriver(FakeDriver):
    """Once armed, ``list`` takes its snapshot, lets the held spawn finish, and returns
    the snapshot only when the controller shows the server ACTIVE (or after 1 s)."""

    def __init__(self, state_dir: Path, server_active: Callable[[], bool]) -> None:
        super().__init__(FakeConfig(), state_dir)
        self.armed = False
        self.entered = threading.Event()  # a spawn started (and waits for ``listed``)
        self.listed = threading.Event()
        self.spawned = threading.Event()
        self._server_active = server_active

    def spawn(self, *args: Any) -> InstanceState:
        self.entered.set()
        assert self.listed.wait(10), "the armed heartbeat never listed"
        state = super().spawn(*args)
        self.spawned.set()
        return state

    def list(self) -> list[InstanceState]:
        snapshot = super().list()
        if self.armed:
            self.armed = False
            self.listed.set()
            assert self.spawned.wait(10), "the spawn never finished"
            # an agent that lets reports overtake its heartbeat shows ACTIVE within this
            # second; one that does not lets the deadline pass with the report held
            with contextlib.suppress(Timeout):
                wait_for(self._server_active, 1.0, "an ACTIVE report overtaking", 0.02)
        return snapshot


def _tick_until(agent: Agent, done: Callable[[], bool], what: str) -> None:
    for _ in iterate_timeout(10, what, 0.01):
        agent.tick()
        if done():
            return


def test_heartbeat_list_taken_before_a_spawn_finished_does_not_fault_it(tmp_path: Path):
    # every tick heartbeats, so the armed list is the heartbeat's
    hosts = {"heartbeat_interval": 0.001, "heartbeat_timeout": 30, "check_interval": 1}
    with running_region(tmp_path, "race", fake_hosts=[], hosts=hosts) as region:
        conn = region.connect()
        server_id: list[str] = []

        def status() -> str:
            return str(conn.compute.get_server(server_id[0]).status) if server_id else ""

        driver = StaleListDriver(tmp_path / "fake", lambda: status() == "ACTIVE")
        config = AgentConfig.model_validate(
            {"controller": {"url": region.url, "token": AGENT_TOKEN}, "host": {"name": HOST},
             "state_dir": str(tmp_path / "agent"), "driver": "fake", "spawn_workers": 2}
        )  # fmt: skip
        agent = Agent(config, driver=driver)
        try:
            agent.tick()  # registers
            flavor = min(conn.compute.flavors(), key=lambda f: (f.vcpus, f.ram))
            server = conn.compute.create_server(
                name="node-1", image_id="host", flavor_id=flavor.id, networks="auto"
            )
            server_id.append(server.id)
            _tick_until(agent, driver.entered.is_set, "spawn started")
            driver.armed = True
            _tick_until(agent, lambda: status() != "BUILD", "server built")
            for _ in range(3):  # a few more heartbeats, now listing the instance
                agent.tick()
            got = conn.compute.get_server(server.id)
            assert got.status == "ACTIVE", got.fault
        finally:
            agent.close()
