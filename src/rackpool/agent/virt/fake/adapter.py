"""The ``fake`` virt driver: instances are records with a fake host key; thousands cost nothing.

Without a state directory the records live in memory (benchmarks, unit tests). With
one (``rackpool agent`` passes ``<state_dir>/fake``) each instance is a JSON file
``<id>.json`` there, so instances outlive the agent process as real ones do and a
restarted agent adopts them. The directory is the truth and tests may change it:
a file ``<id>.stopped`` makes that instance "not running" (its text, if any, is the
detail the driver reports); removing ``<id>.json`` makes it vanish.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from pathlib import Path

from rackpool.agent.errors import SpawnCancelled, SpawnError
from rackpool.agent.virt.base import Capacity, ImageForm, InstanceState, LocalImage
from rackpool.agent.virt.fake.config import FakeConfig
from rackpool.core.instance import FlavorSpec, InstanceSpec, NetworkSpec

STOPPED_SUFFIX = ".stopped"


class FakeDriver:
    name = "fake"
    image_form: ImageForm = "host"

    def __init__(self, config: FakeConfig, state_dir: Path | None = None) -> None:
        self.config = config
        self._dir = state_dir
        self._instances: dict[str, InstanceState] = {}
        self._consoles: dict[str, str] = {}
        self._lock = threading.Lock()
        self._booting: dict[str, threading.Event] = {}  # id -> set when asked to cancel
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)

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
        if self.config.boot_seconds > 0:
            self._boot(instance.id)
        # a fresh key per boot, like a real first boot: a respawn would show a new key
        key = f"ssh-ed25519 FAKE{secrets.token_hex(20)}"
        state = InstanceState(instance.id, True, (key,))
        console = (
            f"fake boot of {instance.hostname} at {network.address}\n"
            "-----BEGIN SSH HOST KEY KEYS-----\n"
            f"{key} root@{instance.hostname}\n"
            "-----END SSH HOST KEY KEYS-----\n"
        )
        with self._lock:
            if self._dir is not None:
                record = {"id": instance.id, "host_keys": [key], "console": console}
                tmp = self._dir / f".{instance.id}.tmp"
                tmp.write_text(json.dumps(record))
                os.replace(tmp, self._dir / f"{instance.id}.json")
            self._instances[instance.id] = state
            self._consoles[instance.id] = console
        return state

    def _boot(self, instance_id: str) -> None:
        """Take ``boot_seconds``, unless :meth:`cancel_spawn` stops the boot first."""
        cancelled = threading.Event()
        with self._lock:
            self._booting[instance_id] = cancelled
        try:
            if cancelled.wait(self.config.boot_seconds):
                raise SpawnCancelled("spawn cancelled: the server was deleted during boot")
        finally:
            with self._lock:
                self._booting.pop(instance_id, None)

    def cancel_spawn(self, instance_id: str) -> bool:
        with self._lock:
            event = self._booting.get(instance_id)
        if event is None or event.is_set():
            return False
        event.set()
        return True

    def destroy(self, instance_id: str) -> None:
        with self._lock:
            if self._dir is not None:
                (self._dir / f"{instance_id}.json").unlink(missing_ok=True)
                (self._dir / f"{instance_id}{STOPPED_SUFFIX}").unlink(missing_ok=True)
            self._instances.pop(instance_id, None)
            self._consoles.pop(instance_id, None)

    def list(self) -> list[InstanceState]:
        with self._lock:
            if self._dir is not None:
                self._rescan(self._dir)
            return list(self._instances.values())

    def _rescan(self, directory: Path) -> None:
        """Bring the in-memory cache in line with the directory (one listdir per call)."""
        names = set(os.listdir(directory))
        present = {n[: -len(".json")] for n in names if n.endswith(".json")}
        for iid in set(self._instances) - present:
            self._instances.pop(iid, None)
            self._consoles.pop(iid, None)
        for iid in present:
            if iid not in self._instances:
                try:
                    record = json.loads((directory / f"{iid}.json").read_text())
                except (OSError, ValueError):
                    continue  # half-written or removed meanwhile: the next list sees it
                self._instances[iid] = InstanceState(iid, True, tuple(record["host_keys"]))
                self._consoles[iid] = str(record.get("console", ""))
            stopped = f"{iid}{STOPPED_SUFFIX}" in names
            state = self._instances[iid]
            if stopped:
                try:
                    detail = (directory / f"{iid}{STOPPED_SUFFIX}").read_text().strip()
                except OSError:
                    detail = ""
                self._instances[iid] = InstanceState(
                    iid, False, state.host_keys, detail or "fake instance stopped"
                )
            elif not state.running:
                self._instances[iid] = InstanceState(iid, True, state.host_keys)

    def console_log(self, instance_id: str) -> str:
        with self._lock:
            return self._consoles.get(instance_id, "")

    def capacity(self) -> Capacity:
        c = self.config
        return Capacity(c.vcpus, c.ram_mb, c.disk_gb)

    def close(self) -> None:
        """Instances stay: in memory they end with the process, on disk they are adopted."""
