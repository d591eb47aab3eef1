"""Settings of the ``libvirt`` virt driver."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LibvirtConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str = Field("qemu:///system", description="libvirt connection URI")
    domain_type: str = Field(
        "auto",
        description="domain type: auto (kvm if a probe guest boots under KVM, else qemu), "
        "kvm, qemu (TCG emulation), test (for test:///default)",
    )
    emulator: str | None = Field(None, description="emulator path; default: libvirt's choice")
    machine: str = Field("pc", description="machine type")
    domain_prefix: str = Field("rackpool-", description="prefix of every domain this agent owns")
    qemu_img: str = Field("qemu-img", description="qemu-img binary (name on PATH or path)")
    kernel_args: str = Field(
        "root=/dev/vda rw console=ttyS0,115200n8 net.ifnames=0",
        description="kernel command line for images booted by direct kernel boot "
        "(a bare-filesystem disk with /boot inside, as rackpool image build makes)",
    )
    disk_cache: str = Field(
        "unsafe",
        description="qemu disk cache mode of instance disks; unsafe: CI guests are "
        "throwaway, a host crash loses them anyway",
    )
    tcg_tb_cache_mb: int = Field(256, ge=0, description="TCG translation cache (qemu domains)")
    run_as_root: bool = Field(
        True,
        description="run qemu as root (static DAC label): the disks live in the agent's "
        "0700 state dir, which libvirt's qemu user cannot enter",
    )
    qemu_log_dir: str = Field(
        "/var/log/libvirt/qemu",
        description="where libvirtd writes each domain's qemu log (<domain>.log); destroy "
        "removes the instance's log there, as it removes everything else; '' keeps them",
    )
    ready_timeout: float = Field(
        900.0,
        ge=0,
        description="seconds to wait for SSH host keys on the serial console after start "
        "(cloud-init prints them; ~70 s under TCG here); the spawn fails after that. "
        "0: report the instance as soon as the domain runs",
    )
