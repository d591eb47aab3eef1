"""Settings of the ``libvirt`` virt driver."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LibvirtConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str = Field("qemu:///system", description="libvirt connection URI")
    domain_type: str = Field("kvm", description="domain type: kvm (production), qemu, test")
    emulator: str | None = Field(None, description="emulator path; default: libvirt's choice")
    machine: str = Field("pc", description="machine type")
    domain_prefix: str = Field("rackpool-", description="prefix of every domain this agent owns")
