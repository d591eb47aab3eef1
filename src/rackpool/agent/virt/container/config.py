"""Settings of the ``container`` virt driver."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ContainerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    runc: str = Field("runc", description="runc binary (name on PATH or absolute path)")
    init: str = Field(
        "/usr/bin/tini-static",
        description="static init bind-mounted into every instance as PID 1 (reaps orphans)",
    )
    default_user: str | None = Field(
        "cloud",
        description="non-root login user with passwordless sudo and the keypair; null: none",
    )
    host_key_types: list[str] = Field(
        default_factory=lambda: ["ed25519", "ecdsa"],
        description="SSH host key types generated at first boot (rsa is slow to generate)",
    )
    scratch_mb_per_disk_gb: int = Field(
        1024, ge=16, description="tmpfs size of the writable layer per flavor disk GB"
    )
    ready_timeout: float = Field(30.0, gt=0, description="seconds to wait for sshd inside")
    enforce_limits: bool = Field(True, description="apply flavor CPU/memory limits via cgroups")
    hide_paths: list[str] = Field(
        default_factory=lambda: ["/root", "/home", "/tmp", "/var/tmp", "/var/lib/rackpool"],
        description="host directories that look empty inside instances of the host image",
    )
    cgroup_parent: str = Field("rackpool", description="cgroup directory holding instances")
