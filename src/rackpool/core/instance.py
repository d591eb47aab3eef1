"""What a host should run: frozen value objects passed from the agent to its virt drivers.

The controller's wire format (docs/agent-api.md) is parsed into these by the agent;
drivers only ever see these objects, never JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ImageSpec:
    id: str
    name: str
    builtin: str | None = None  # "host" for the built-in host image, else None
    checksum: str | None = None  # md5 hex, as Glance stores it
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    size: int | None = None
    disk_format: str = "raw"
    container_format: str = "bare"
    file_url: str | None = None


@dataclass(frozen=True)
class FlavorSpec:
    id: str
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int


@dataclass(frozen=True)
class NetworkSpec:
    address: str
    prefix: int
    gateway: str
    mac: str
    network_name: str = "public"


@dataclass(frozen=True)
class InstanceSpec:
    """One instance as the controller wants it."""

    id: str
    name: str
    hostname: str
    image: ImageSpec
    flavor: FlavorSpec
    network: NetworkSpec
    keys: tuple[str, ...] = ()
    user_data: bytes | None = None
    project_id: str = ""
    metadata: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    config_drive: bool = False
    availability_zone: str = "nova"
