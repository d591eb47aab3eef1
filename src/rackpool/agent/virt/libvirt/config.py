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
    qemu_img: str = Field("qemu-img", description="qemu-img binary (name on PATH or path)")
    ready_timeout: float = Field(
        0.0,
        ge=0,
        description="seconds to wait for SSH host keys on the serial console after start "
        "(cloud-init prints them); 0: report the instance as soon as the domain runs",
    )
