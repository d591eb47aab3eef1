"""The agent's config file (``rackpool agent --config agent.yaml``), one typed model.

Example::

    controller:
      url: http://127.0.0.1:8774
      token: <the region's agent_token (enrolls once), or this host's own credential>
    host:
      name: r1-h1
      availability_zone: nova
    state_dir: /var/lib/rackpool/agent/r1-h1
    driver: container
    network:
      bridge: rpb-r1-h1
      switch: rps-r1
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from rackpool.agent.virt.container.config import ContainerConfig
from rackpool.agent.virt.fake.config import FakeConfig
from rackpool.agent.virt.libvirt.config import LibvirtConfig

_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


def _ifname(value: str | None) -> str | None:
    if value is not None and not _IFNAME.match(value):
        raise ValueError("must be a Linux interface name: 1-15 of A-Z a-z 0-9 _ . -")
    return value


class ControllerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="region controller base URL, e.g. http://127.0.0.1:8774")
    token: SecretStr = Field(
        description="the region's agent token, which enrolls this host once (the credential "
        "it gets back is kept in state_dir/host-credential and used from then on), or this "
        "host's own credential from 'rackpool cloud admin host credential NAME' (X-Agent-Token)"
    )
    timeout: float = Field(10.0, gt=0, description="seconds per HTTP request")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class HostSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    availability_zone: str = "nova"
    vcpus: int | None = Field(None, ge=1, description="advertised vCPUs; default: detected")
    ram_mb: int | None = Field(None, ge=1, description="advertised RAM; default: detected")
    disk_gb: int | None = Field(None, ge=1, description="advertised disk; default: detected")


class NetworkSettings(BaseModel):
    """The host bridge instances plug into, and how it reaches the rest of the rack.

    ``switch``: a region-wide "rack switch" bridge on this machine (simulated racks and
    single-machine clouds); the agent connects its own bridge to it with a veth pair and,
    with ``switch_gateway``, puts the region gateway address on it so the machine can
    reach every instance. ``uplink``: a physical NIC enslaved to the bridge (real racks).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bridge: str = Field("rpbr0", description="this host's instance bridge")
    switch: str | None = Field(None, description="region rack-switch bridge to join")
    switch_gateway: bool = Field(True, description="put the region gateway on the switch")
    uplink: str | None = Field(None, description="physical interface to add to the bridge")

    _check = field_validator("bridge", "switch", "uplink")(classmethod(lambda cls, v: _ifname(v)))


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    controller: ControllerSettings
    host: HostSettings
    state_dir: str = Field(description="where this agent keeps instance records and images")
    driver: Literal["container", "libvirt", "fake"] = "container"
    network: NetworkSettings = Field(default_factory=lambda: NetworkSettings.model_validate({}))
    poll_interval: float = Field(0.25, gt=0, le=60, description="seconds between pulls")
    spawn_workers: int = Field(8, ge=1, le=256, description="concurrent spawns/destroys")
    container: ContainerConfig = Field(default_factory=lambda: ContainerConfig.model_validate({}))
    libvirt: LibvirtConfig = Field(default_factory=lambda: LibvirtConfig.model_validate({}))
    fake: FakeConfig = Field(default_factory=lambda: FakeConfig.model_validate({}))
