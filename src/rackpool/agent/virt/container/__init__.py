"""The ``container`` virt driver: runc system containers with sshd, on the host bridge."""

from rackpool.agent.virt.container.adapter import ContainerDriver
from rackpool.agent.virt.container.config import ContainerConfig

__all__ = ["ContainerConfig", "ContainerDriver"]
