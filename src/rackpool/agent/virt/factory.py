"""Build the configured virt driver; each backend is imported only when chosen."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rackpool.agent.virt.base import VirtDriver

if TYPE_CHECKING:
    from rackpool.agent.config import AgentConfig


def make_driver(config: AgentConfig) -> VirtDriver:
    state = Path(config.state_dir)
    if config.driver == "fake":
        from rackpool.agent.virt.fake import FakeDriver

        return FakeDriver(config.fake, state / "fake")
    if config.driver == "libvirt":
        # raises DriverUnavailable when libvirt-python is missing or libvirtd unreachable
        from rackpool.agent.virt.libvirt.adapter import LibvirtDriver

        return LibvirtDriver(config.libvirt, state, config.host.name, config.network.bridge)
    from rackpool.agent.virt.container import ContainerDriver

    return ContainerDriver(config.container, state, config.host.name, config.network.bridge)
