"""The virt driver interface and the value objects it exchanges with the agent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from rackpool.core.instance import FlavorSpec, InstanceSpec, NetworkSpec

ImageForm = Literal["host", "rootfs", "disk"]


@dataclass(frozen=True)
class LocalImage:
    """An image ready on this host: the built-in host root, an unpacked rootfs or a disk file."""

    id: str
    form: ImageForm
    path: str | None = None


@dataclass(frozen=True)
class Capacity:
    vcpus: int
    ram_mb: int
    disk_gb: int


@dataclass(frozen=True)
class InstanceState:
    """What a driver sees of one instance on this host."""

    id: str
    running: bool
    host_keys: tuple[str, ...] = ()
    detail: str = ""


class VirtDriver(Protocol):
    """What the agent needs from a virt driver. Methods block; the agent runs them in threads.

    ``spawn`` returns once the instance is ready to accept SSH (or raises SpawnError after
    cleaning up what it created); ``destroy`` is idempotent and removes every trace.
    Instances must outlive the agent process: ``list`` finds them again after a restart.
    """

    name: str
    image_form: ImageForm  # what form of Glance image this driver consumes

    def spawn(
        self,
        instance: InstanceSpec,
        image: LocalImage,
        flavor: FlavorSpec,
        network: NetworkSpec,
        keys: tuple[str, ...],
        user_data: bytes | None,
    ) -> InstanceState: ...

    def destroy(self, instance_id: str) -> None: ...

    def cancel_spawn(self, instance_id: str) -> bool:
        """Ask a spawn running in another thread to stop, clean up and raise SpawnCancelled.

        True if a spawn of ``instance_id`` was running and is now asked to stop (only the
        first time); False otherwise. Drivers whose spawns finish at once need not act.
        """
        ...

    def list(self) -> list[InstanceState]: ...

    def console_log(self, instance_id: str) -> str: ...

    def capacity(self) -> Capacity: ...

    def close(self) -> None: ...
