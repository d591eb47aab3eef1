"""Region controller configuration (region.yaml), declared once as pydantic models."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rackpool.cloud.db import url as db_url
from rackpool.core.config import load_model
from rackpool.core.httpguard import DEFAULT_MAX_BODY


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Listen(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port")


class NetworkConfig(_Strict):
    cidr: str = "198.18.0.0/16"
    gateway: str | None = Field(None, description="default: first address of cidr")

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        try:
            net = ipaddress.ip_network(v, strict=True)
        except ValueError as exc:
            raise ValueError(
                f"not an IPv4 network in CIDR form (e.g. 198.18.0.0/16): {exc}"
            ) from None
        if net.version != 4 or net.num_addresses < 4:
            raise ValueError("must be an IPv4 network with at least 4 addresses")
        return v

    @model_validator(mode="after")
    def _gateway(self) -> NetworkConfig:
        net = ipaddress.ip_network(self.cidr)
        if self.gateway is None:
            self.gateway = str(net.network_address + 1)
        elif ipaddress.ip_address(self.gateway) not in net:
            raise ValueError(f"gateway {self.gateway} is not inside cidr {self.cidr}")
        return self


class SchedulerConfig(_Strict):
    weigher: Literal["spread", "pack"] = "spread"
    cpu_allocation_ratio: float = Field(4.0, gt=0)
    ram_allocation_ratio: float = Field(1.0, gt=0)
    disk_allocation_ratio: float = Field(1.0, gt=0)


class HostsConfig(_Strict):
    heartbeat_interval: float = Field(2.0, gt=0)
    heartbeat_timeout: float = Field(20.0, gt=0, description="seconds before a silent host is down")
    check_interval: float = Field(1.0, gt=0)


class FakeHost(_Strict):
    name: str
    availability_zone: str = "nova"
    vcpus: int = Field(64, gt=0)
    ram_mb: int = Field(262144, gt=0)
    disk_gb: int = Field(4000, gt=0)
    build_delay: float = Field(0.2, ge=0, description="seconds from BUILD to ACTIVE")
    fail_names: list[str] = Field(
        default_factory=list, description="regexes; matching server names fault"
    )


class FlavorSpec(_Strict):
    name: str
    vcpus: int = Field(gt=0)
    ram: int = Field(gt=0, description="MiB")
    disk: int = Field(ge=0, description="GiB")
    id: str | None = None


class QuotaSpec(_Strict):
    """A project's compute quota unless an admin set its own (-1 = unlimited).

    Nova's defaults: a project that never asked for more cannot take the whole region.
    """

    cores: int = Field(20, ge=-1)
    ram: int = Field(51200, ge=-1, description="MiB")
    instances: int = Field(10, ge=-1)


class ImageLimits(_Strict):
    """Glance's image_size_cap and per-project image quotas (-1 = unlimited)."""

    max_size: int = Field(
        16 * 1024**3, gt=0, description="bytes; an upload is refused (413) once it passes this"
    )
    project_count: int = Field(100, ge=-1, description="images a project may own")
    project_bytes: int = Field(
        50 * 1024**3, ge=-1, description="bytes of image data a project may store"
    )


class WorkersConfig(_Strict):
    """Threads that run request handlers off the event loop (cloud/workers.py)."""

    api: int = Field(16, gt=0, le=256, description="tenant and admin requests")
    agent: int = Field(4, gt=0, le=64, description="agent reports and pulls, health check")
    heartbeat: int = Field(2, gt=0, le=64, description="agent heartbeats alone")


class RegionConfig(_Strict):
    region: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    listen: Listen = Field(default_factory=Listen)
    public_url: str | None = Field(
        None, description="URL clients reach this controller at; default: the request's own"
    )
    state_dir: str = Field("state", description="directory for the database and image files")
    database: str | None = Field(
        None,
        description="sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB; "
        "default: SQLite at <state_dir>/region.db",
    )
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    hosts: HostsConfig = Field(default_factory=HostsConfig)
    agent_token: str = Field(min_length=16, description="shared secret agents present")
    token_ttl: float = Field(3600.0, gt=0, description="Keystone token lifetime, seconds")
    admin_project: str = Field(
        "admin",
        min_length=1,
        description="project whose admin role is cloud-wide admin (Keystone's "
        "admin_project_name); the admin role on any other project acts only inside it",
    )
    page_limit: int = Field(1000, gt=0, description="largest page of a list call")
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY,
        gt=0,
        description="largest request body (413 above); image uploads have their own cap",
    )
    fake_hosts: list[FakeHost] = Field(default_factory=list)
    default_flavors: bool = True
    default_quota: QuotaSpec = Field(default_factory=QuotaSpec)
    images: ImageLimits = Field(default_factory=ImageLimits)
    workers: WorkersConfig = Field(default_factory=WorkersConfig)
    host_image: bool = Field(True, description="offer the built-in 'host' image")

    @field_validator("database")
    @classmethod
    def _database(cls, v: str | None) -> str | None:
        if v is not None:
            db_url.normalize(v)  # the message names the problem, never the URL (a password)
        return v

    @field_validator("fake_hosts")
    @classmethod
    def _unique_hosts(cls, v: list[FakeHost]) -> list[FakeHost]:
        names = [h.name for h in v]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"fake host names must be unique; repeated: {', '.join(sorted(dup))}")
        return v

    def database_url(self) -> str:
        """The SQLAlchemy URL (PostgreSQL through psycopg 3); may hold a password."""
        if self.database:
            return db_url.normalize(self.database)
        from pathlib import Path

        return f"sqlite:///{Path(self.state_dir).resolve() / 'region.db'}"


DEFAULT_FLAVORS = (
    FlavorSpec(id="1", name="m1.tiny", vcpus=1, ram=256, disk=1),
    FlavorSpec(id="2", name="m1.small", vcpus=1, ram=512, disk=5),
    FlavorSpec(id="3", name="m1.medium", vcpus=2, ram=2048, disk=10),
    FlavorSpec(id="4", name="m1.large", vcpus=4, ram=4096, disk=20),
)


def load_region_config(path: str) -> RegionConfig:
    return load_model(path, RegionConfig)
