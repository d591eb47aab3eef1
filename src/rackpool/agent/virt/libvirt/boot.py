"""Direct kernel boot: the kernel and initrd of a disk image that is one bare filesystem.

``rackpool image build`` writes Debian's root filesystem as ext4 straight onto the disk
(no partition table, no bootloader; docs/images.md). qemu boots such a disk from a
kernel and initrd on the host, which this module copies out of the image's ``/boot``
once per image with ``debugfs`` (e2fsprogs; no mount, no loop device). Images with a
partition table (any bootloader image) get None and boot from their disk as usual.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from rackpool.agent.errors import SpawnError

EXT_MAGIC_OFFSET = 1080  # superblock at 1024, s_magic at +56
EXT_MAGIC = b"\x53\xef"
_VERSION = re.compile(r"^vmlinuz-(.+)$")


@dataclass(frozen=True)
class BootFiles:
    kernel: Path
    initrd: Path


def boot_files(image_id: str, image: Path, cache: Path, qemu_img: str) -> BootFiles | None:
    """Kernel and initrd for ``image`` (cached under ``cache/<image_id>``), or None."""
    d = cache / image_id
    found = BootFiles(d / "vmlinuz", d / "initrd.img")
    if found.kernel.exists() and found.initrd.exists():
        return found
    if (d / "no-kernel").exists():
        return None
    d.mkdir(parents=True, exist_ok=True)
    raw = d / "disk.raw.tmp"
    try:
        _run([qemu_img, "convert", "-O", "raw", str(image), str(raw)])
        with open(raw, "rb") as f:
            f.seek(EXT_MAGIC_OFFSET)
            is_ext = f.read(2) == EXT_MAGIC
        if not is_ext:
            (d / "no-kernel").touch()
            return None
        version = _kernel_version(raw)
        if version is None:
            (d / "no-kernel").touch()
            return None
        for src, dst in ((f"vmlinuz-{version}", found.kernel),
                         (f"initrd.img-{version}", found.initrd)):  # fmt: skip
            tmp = dst.with_name(dst.name + ".tmp")
            _run(["debugfs", "-R", f"dump /boot/{src} {tmp}", str(raw)])
            if not tmp.exists() or tmp.stat().st_size == 0:
                raise SpawnError(f"image {image_id}: /boot/{src} could not be read")
            tmp.replace(dst)
    finally:
        raw.unlink(missing_ok=True)
    return found


def _kernel_version(raw: Path) -> str | None:
    """The newest kernel in /boot that has an initrd next to it."""
    listing = _run(["debugfs", "-R", "ls -p /boot", str(raw)])
    names = {line.strip("/").split("/")[4] for line in listing.splitlines()
             if line.count("/") >= 6}  # fmt: skip
    versions = sorted(
        (m.group(1) for n in names if (m := _VERSION.match(n))
         and f"initrd.img-{m.group(1)}" in names),
        key=_version_key,
    )  # fmt: skip
    return versions[-1] if versions else None


def _version_key(version: str) -> list[tuple[int, str]]:
    """6.1.0-50 sorts after 6.1.0-9."""
    return [(int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"(\d+)", version)]


def _run(cmd: list[str]) -> str:
    if shutil.which(cmd[0]) is None:
        raise SpawnError(f"{cmd[0]} not found (Debian packages qemu-utils, e2fsprogs)")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SpawnError(f"{cmd[0]} failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout
