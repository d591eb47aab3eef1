"""Direct kernel boot files and the KVM probe, on real tools (mkfs.ext4, qemu-img,
debugfs, libvirtd with qemu:///system), without building a whole image."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.libvirtd import running_libvirtd

from rackpool.agent.virt.libvirt.boot import boot_files
from rackpool.agent.virt.libvirt.probe import MARKER, boot_sector, boots


def _disk(tmp: Path, files: dict[str, bytes], fs: bool = True) -> Path:
    root = tmp / "root"
    (root / "boot").mkdir(parents=True)
    for name, data in files.items():
        (root / "boot" / name).write_bytes(data)
    raw = tmp / "disk.raw"
    with open(raw, "wb") as f:
        f.truncate(64 * 1024**2)
    if fs:
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(raw)], check=True)
    qcow2 = tmp / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(qcow2)], check=True)
    return qcow2


def test_kernel_and_initrd_come_out_of_a_bare_filesystem_image(tmp_path: Path) -> None:
    image = _disk(tmp_path, {
        "vmlinuz-6.1.0-9-cloud-amd64": b"old kernel", "initrd.img-6.1.0-9-cloud-amd64": b"old rd",
        "vmlinuz-6.1.0-50-cloud-amd64": b"kernel", "initrd.img-6.1.0-50-cloud-amd64": b"initrd",
        "vmlinuz-7.0-no-initrd": b"not bootable without its initrd",
    })  # fmt: skip
    found = boot_files("img-1", image, tmp_path / "boot", "qemu-img")
    assert found is not None
    assert found.kernel.read_bytes() == b"kernel"  # the newest kernel that has an initrd
    assert found.initrd.read_bytes() == b"initrd"
    assert not list((tmp_path / "boot" / "img-1").glob("*.tmp"))
    assert boot_files("img-1", image, tmp_path / "boot", "qemu-img") == found  # cached


def test_a_disk_with_a_bootloader_boots_from_its_disk(tmp_path: Path) -> None:
    image = _disk(tmp_path, {}, fs=False)  # no ext4 superblock: partitioned/bootloader disk
    assert boot_files("img-2", image, tmp_path / "boot", "qemu-img") is None


def test_the_probe_is_one_boot_sector() -> None:
    sector = boot_sector()
    assert len(sector) == 512 and sector.endswith(b"\x55\xaa") and MARKER in sector


@pytest.fixture(scope="module")
def qemu_conn() -> Iterator[Any]:
    import libvirt

    with running_libvirtd() as uri:
        conn = libvirt.open(uri)
        try:
            yield conn
        finally:
            conn.close()


@pytest.mark.root
def test_the_probe_guest_boots_under_tcg(qemu_conn: Any, tmp_path: Path) -> None:
    # the same guest under domain type kvm decides kvm vs qemu for the driver; TCG always
    # works, so this checks the probe itself (boot sector, serial console, cleanup)
    assert boots(qemu_conn, "qemu", tmp_path, "rptest-", timeout=120)
    assert not [d for d in qemu_conn.listAllDomains(0) if d.name().startswith("rptest-")]
    assert not list(tmp_path.iterdir())
