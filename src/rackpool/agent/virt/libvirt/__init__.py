"""The ``libvirt`` virt driver: KVM guests from qcow2 images with an OpenStack config drive.

``LibvirtDriver`` is loaded on first use, so the agent's settings (``config``) import
on machines without libvirt-python; importing the driver there raises DriverUnavailable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rackpool.agent.virt.libvirt.config import LibvirtConfig

if TYPE_CHECKING:
    from rackpool.agent.virt.libvirt.adapter import LibvirtDriver

__all__ = ["LibvirtConfig", "LibvirtDriver"]


def __getattr__(name: str) -> Any:
    if name == "LibvirtDriver":
        from rackpool.agent.virt.libvirt.adapter import LibvirtDriver

        return LibvirtDriver
    raise AttributeError(name)
