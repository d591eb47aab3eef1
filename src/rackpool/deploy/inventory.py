"""``inventory.yaml``: the racks to deploy, declared once as pydantic models.

One file describes everything ``rackpool deploy`` puts onto hosts: the rackpool
version, SSH defaults, the regions (each a rack: a controller host, compute hosts, the
instance IP range, flavors, projects with their users and quotas), and where the pool,
the ops index and the web dashboard run. Errors name the YAML path
(``regions[0].hosts[1].address: ...``); ``rackpool config validate inventory.yaml``
reports them all. Passwords are never written here: ``rackpool deploy`` generates them
into its private state dir. Reference: docs/deploy.md.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rackpool.core.config import load_model

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_VERSION = re.compile(r"^[0-9]+(\.[0-9]+)*([a-z0-9.+-]*)$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _address(v: str) -> str:
    try:
        ipaddress.ip_address(v)
        return v
    except ValueError:
        pass
    if not _HOSTNAME.match(v):
        raise ValueError("must be an IP address or a DNS name the deploy machine can resolve")
    return v


class SshDefaults(_Strict):
    """How ``rackpool deploy`` logs in where a host does not say otherwise."""

    user: str = Field("root", min_length=1, description="SSH user; not root: sudo without password")
    key: str | None = Field(None, description="private key file; default: ssh's own")
    port: int = Field(22, ge=1, le=65535)
    host_key_checking: bool = Field(
        True, description="check hosts' SSH keys against known_hosts (off only for test rigs)"
    )
    known_hosts: str | None = Field(None, description="known_hosts file; default: ssh's own")


class Machine(_Strict):
    """A host reached over SSH. ``name`` is its Ansible inventory name."""

    address: str = Field(description="IP address or DNS name to SSH to")
    port: int | None = Field(None, ge=1, le=65535, description="SSH port; default ssh.port")
    user: str | None = Field(None, min_length=1, description="SSH user; default ssh.user")
    key: str | None = Field(None, description="SSH private key; default ssh.key")

    _addr = field_validator("address")(classmethod(lambda cls, v: _address(v)))


class ControllerHost(Machine):
    name: str | None = Field(None, pattern=NAME, description="default: <region>-controller")
    api_port: int = Field(8774, ge=1, le=65535, description="the region API's port")
    api_address: str | None = Field(
        None, description="address agents and the pool use for the API; default: address"
    )
    heartbeat_interval: float = Field(2.0, gt=0)
    heartbeat_timeout: float = Field(20.0, gt=0, description="seconds before a silent host is down")

    @property
    def url(self) -> str:
        return f"http://{self.api_address or self.address}:{self.api_port}"


class ComputeHost(Machine):
    name: str = Field(pattern=NAME, description="the host's name in the region (and Ansible)")
    availability_zone: str = Field("nova", min_length=1)
    driver: Literal["container", "libvirt", "fake"] = "container"
    vcpus: int | None = Field(None, ge=1, description="advertised vCPUs; default: detected")
    ram_mb: int | None = Field(None, ge=1, description="advertised RAM; default: detected")
    disk_gb: int | None = Field(None, ge=1, description="advertised disk; default: detected")
    uplink: str | None = Field(None, description="NIC to add to the instance bridge")
    bridge: str | None = Field(None, description="instance bridge; default: the region's")
    switch: str | None = Field(None, description="rack-switch bridge on this host to join")


class NetworkSpec(_Strict):
    """The region's instance IP range and the bridge instances plug into on each host."""

    cidr: str = Field(description="instance addresses, e.g. 198.18.32.0/20")
    gateway: str | None = Field(None, description="default: the first address of cidr")
    bridge: str = Field("rpbr0", description="instance bridge on every compute host")


class FlavorSpec(_Strict):
    name: str = Field(min_length=1)
    vcpus: int = Field(gt=0)
    ram: int = Field(gt=0, description="MiB")
    disk: int = Field(0, ge=0, description="GiB")
    id: str | None = None


class QuotaSpec(_Strict):
    cores: int | None = Field(None, ge=-1)
    ram: int | None = Field(None, ge=-1, description="MiB")
    instances: int | None = Field(None, ge=-1)


class UserSpec(_Strict):
    name: str = Field(min_length=1, max_length=64)
    role: Literal["member", "admin"] = "member"


class ProjectSpec(_Strict):
    name: str = Field(min_length=1, max_length=64)
    users: list[UserSpec] = Field(default_factory=list, description="passwords are generated")
    quota: QuotaSpec | None = None


class RegionSpec(_Strict):
    name: str = Field(pattern=NAME)
    controller: ControllerHost
    hosts: list[ComputeHost] = Field(default_factory=list, description="compute hosts")
    network: NetworkSpec
    flavors: list[FlavorSpec] = Field(default_factory=list, description="beyond the defaults")
    default_flavors: bool = Field(True, description="m1.tiny .. m1.large")
    projects: list[ProjectSpec] = Field(
        default_factory=list, description="besides 'admin' (always made) and the pool's project"
    )

    @field_validator("hosts")
    @classmethod
    def _unique_hosts(cls, v: list[ComputeHost]) -> list[ComputeHost]:
        _no_repeats([h.name for h in v], "compute host names")
        return v

    @field_validator("flavors")
    @classmethod
    def _unique_flavors(cls, v: list[FlavorSpec]) -> list[FlavorSpec]:
        _no_repeats([f.name for f in v], "flavor names")
        return v

    @field_validator("projects")
    @classmethod
    def _unique_projects(cls, v: list[ProjectSpec]) -> list[ProjectSpec]:
        _no_repeats([p.name for p in v], "project names")
        return v

    @property
    def controller_name(self) -> str:
        return self.controller.name or f"{self.name}-controller"


class ServiceHost(_Strict):
    """Where a service runs and the port its API listens on."""

    host: Machine
    name: str | None = Field(None, pattern=NAME, description="Ansible name; default: the service")
    api_port: int = Field(ge=1, le=65535)


class PoolLabel(_Strict):
    name: str = Field(min_length=1)
    image: str = Field("host", min_length=1, description="image name in every region")
    flavor: str = Field("m1.small", min_length=1)
    username: str = "root"
    min_ready: int = Field(0, ge=0)


class PoolService(ServiceHost):
    api_port: int = Field(8005, ge=1, le=65535)
    project: str = Field("ci", min_length=1, description="the project the pool's nodes run in")
    user: str = Field("ci", min_length=1, description="the pool's user in that project")
    max_servers_per_host: int = Field(4, ge=0, description="pool max-servers per compute host")
    host_key_checking: bool = Field(True, description="scan nodes' SSH host keys")
    boot_timeout: float = Field(120.0, gt=0)
    labels: list[PoolLabel] = Field(
        default_factory=lambda: [PoolLabel(name="default", min_ready=1)],
        description="offered in every region",
    )

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, v: list[PoolLabel]) -> list[PoolLabel]:
        _no_repeats([lab.name for lab in v], "label names")
        return v


class OpsService(ServiceHost):
    api_port: int = Field(8090, ge=1, le=65535)
    max_age_days: float = Field(14.0, gt=0, description="index retention")


class WebService(ServiceHost):
    api_port: int = Field(8080, ge=1, le=65535)
    refresh: int = Field(30, ge=0, le=3600)


class HealthSpec(_Strict):
    """How long a deploy waits for a daemon to be healthy, and the upgrade's health gate."""

    timeout: float = Field(120.0, gt=0, le=3600, description="seconds per wait")
    canary: bool = Field(True, description="boot a canary on each upgraded batch")
    reach: bool = Field(
        True, description="instances and the canary must answer SSH from their compute host"
    )
    drain_timeout: float = Field(
        1800.0, gt=0, description="--drain: seconds to wait for a host to empty"
    )


class Inventory(_Strict):
    version: str = Field(
        description="the rackpool version to run, e.g. 0.1.0; 'checkout': this checkout's "
        "version plus its commit (0.1.0+g1a2b3c4d5e6), for daily deploys from a checkout"
    )
    wheel: str | None = Field(
        None,
        description="a rackpool wheel, or a directory holding rackpool-<version>-*.whl; "
        "default: build one from this checkout (pip wheel --no-deps)",
    )
    python: str = Field("/usr/bin/python3", description="the hosts' Python 3.11+")
    ssh: SshDefaults = Field(default_factory=lambda: SshDefaults.model_validate({}))
    apt_update: bool = Field(False, description="refresh apt's cache before installing")
    keep_versions: int = Field(
        3,
        ge=1,
        le=100,
        description="earlier versions kept installed on each host besides the running "
        "one (rollback targets); each deploy removes older ones",
    )
    health: HealthSpec = Field(default_factory=lambda: HealthSpec.model_validate({}))
    regions: list[RegionSpec] = Field(min_length=1)
    pool: PoolService | None = None
    ops: OpsService | None = None
    web: WebService | None = None

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        if v != "checkout" and not _VERSION.match(v):
            raise ValueError("must be a version such as 0.1.0 or 0.2.0.dev1, or 'checkout'")
        return v

    @field_validator("regions")
    @classmethod
    def _unique_regions(cls, v: list[RegionSpec]) -> list[RegionSpec]:
        _no_repeats([r.name for r in v], "region names")
        return v

    @model_validator(mode="after")
    def _cross_check(self) -> Inventory:
        problems: list[str] = []
        for i, r in enumerate(self.regions):
            if self.pool is not None and self.pool.project == "admin":
                problems.append("pool.project: the pool must not run in the admin project")
            for j, h in enumerate(r.hosts):
                if h.name == r.controller_name:
                    problems.append(
                        f"regions[{i}].hosts[{j}].name: {h.name!r} is the controller's name"
                    )
        names: dict[str, str] = {}
        for where, name, m in self.machines():
            key = f"{m.address}:{m.port or self.ssh.port}"
            if name in names and names[name] != key:
                problems.append(
                    f"{where}: the name {name!r} is used by another host ({names[name]})"
                )
            names.setdefault(name, key)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def machines(self) -> list[tuple[str, str, Machine]]:
        """(YAML path, Ansible name, machine) of every host entry, in file order."""
        out: list[tuple[str, str, Machine]] = []
        for i, r in enumerate(self.regions):
            out.append((f"regions[{i}].controller", r.controller_name, r.controller))
            out += [(f"regions[{i}].hosts[{j}]", h.name, h) for j, h in enumerate(r.hosts)]
        for svc, where in ((self.pool, "pool"), (self.ops, "ops"), (self.web, "web")):
            if svc is not None:
                out.append((f"{where}.host", svc.name or where, svc.host))
        return out


def _no_repeats(names: list[str], what: str) -> None:
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{what} must be unique; repeated: {', '.join(dup)}")


def load_inventory(path: str) -> Inventory:
    return load_model(path, Inventory)
