"""What goes into an image, as a frozen value whose hash keys the build cache.

The same recipe gives the same package set from the same mirror (versions are whatever
the mirror serves on build day; the build records them). Changing anything here, or
``BUILDER_VERSION`` when the build steps change, changes the hash and so the cache key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

BUILDER_VERSION = 1
DEFAULT_CACHE = Path("/var/cache/rackpool/images")
DEFAULT_MIRROR = "http://deb.debian.org/debian"

# Debian's own packages; dbus or logind fails and the system is "degraded".
CLOUD_PACKAGES = (
    "systemd-sysv", "udev", "dbus", "linux-image-cloud-amd64", "cloud-init",
    "openssh-server", "ifupdown", "sudo", "iproute2", "netbase", "ca-certificates",
)  # fmt: skip

# cloud-init settings that mattered on these machines (docs/images.md says why).
CLOUD_CFG = """\
datasource_list: [ConfigDrive, None]
manage_etc_hosts: true
locale: C.UTF-8
ssh_genkeytypes: [ed25519]
disable_root: false
system_info:
  default_user:
    name: cloud
    lock_passwd: true
    gecos: rackpool default user
    groups: [sudo]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
"""


@dataclass(frozen=True)
class Recipe:
    """A Debian image: suite, mirror, packages, cloud-init settings and disk size."""

    name: str = "debian-12-cloud"
    suite: str = "bookworm"
    mirror: str = DEFAULT_MIRROR
    packages: tuple[str, ...] = CLOUD_PACKAGES
    cloud_cfg: str = CLOUD_CFG
    size_gb: int = 2
    kernel_args: str = "root=/dev/vda rw console=ttyS0,115200n8 net.ifnames=0"

    def digest(self) -> str:
        """sha256 over the recipe and the builder version: the cache key."""
        body = {"builder": BUILDER_VERSION, **asdict(self)}
        body.pop("name")  # the name labels an upload, it does not change the bytes
        raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(raw).hexdigest()


def debian_cloud(name: str = "debian-12-cloud", mirror: str = DEFAULT_MIRROR) -> Recipe:
    """The recipe ``rackpool image build`` and the VM tests use."""
    return Recipe(name=name, mirror=mirror)
