"""The ``fake`` virt driver: instances are dict entries; thousands cost nothing."""

from __future__ import annotations

import threading

from rackpool.agent.errors import SpawnError
from rackpool.agent.virt.base import Capacity, ImageForm, InstanceState, LocalImage
from rackpool.agent.virt.fake.config import FakeConfig
from rackpool.core.instance import FlavorSpec, InstanceSpec, NetworkSpec


class FakeDriver:
    name = "fake"
    image_form: ImageForm = "host"

    def __init__(self, config: FakeConfig) -> None:
        self.config = config
        self._instances: dict[str, InstanceState] = {}
        self._consoles: dict[str, str] = {}
        self._lock = threading.Lock()

    def spawn(
        self,
        instance: InstanceSpec,
        image: LocalImage,
        flavor: FlavorSpec,
        network: NetworkSpec,
        keys: tuple[str, ...],
        user_data: bytes | None,
    ) -> InstanceState:
        if instance.image.name in self.config.fail_images:
            raise SpawnError(f"fake driver: image {instance.image.name} is set to fail")
        key = f"ssh-ed25519 FAKE{instance.id.replace('-', '')[:40]}"
        state = InstanceState(instance.id, True, (key,))
        console = (
            f"fake boot of {instance.hostname} at {network.address}\n"
            "-----BEGIN SSH HOST KEY KEYS-----\n"
            f"{key} root@{instance.hostname}\n"
            "-----END SSH HOST KEY KEYS-----\n"
        )
        with self._lock:
            self._instances[instance.id] = state
            self._consoles[instance.id] = console
        return state

    def destroy(self, instance_id: str) -> None:
        with self._lock:
            self._instances.pop(instance_id, None)
            self._consoles.pop(instance_id, None)

    def list(self) -> list[InstanceState]:
        with self._lock:
            return list(self._instances.values())

    def console_log(self, instance_id: str) -> str:
        with self._lock:
            return self._consoles.get(instance_id, "")

    def capacity(self) -> Capacity:
        c = self.config
        return Capacity(c.vcpus, c.ram_mb, c.disk_gb)

    def close(self) -> None:
        """In-memory instances end with the process."""
