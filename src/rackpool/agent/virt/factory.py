"""Build the configured virt driver; each backend is imported only when chosen."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rackpool.agent.errors import DriverUnavailable
from rackpool.agent.virt.base import VirtDriver

if TYPE_CHECKING:
    from rackpool.agent.config import AgentConfig


def make_driver(config: AgentConfig) -> VirtDriver:
    state = Path(config.state_dir)
    if config.driver == "fake":
        from rackpool.agent.virt.fake import FakeDriver

        return FakeDriver(config.fake)
    if config.driver == "libvirt":
        raise DriverUnavailable(
            "the libvirt driver is not implemented yet (only its settings exist); "
            "use driver: container or fake"
        )
    from rackpool.agent.virt.container import ContainerDriver

    return ContainerDriver(config.container, state, config.host.name, config.network.bridge)
