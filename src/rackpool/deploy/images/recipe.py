"""What goes into an image, as a frozen value whose hash keys the build cache.

A recipe pins its packages: ``pins`` holds every package the build installs with its
exact version (``debian-12-cloud.lock.yaml`` for the default recipe). The build makes apt
install exactly those versions and fails unless the result is exactly that list, so one
recipe always gives one package set, or no image. What the pins do not cover: the mirror
must still serve those versions (deb.debian.org drops superseded ones at each point
release: then the build fails and the lock is renewed, or ``mirror`` points at a
snapshot.debian.org timestamp). Changing anything here, or ``BUILDER_VERSION`` when the
build steps change, changes the hash and so the cache key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import yaml

BUILDER_VERSION = 2
DEFAULT_CACHE = Path("/var/cache/rackpool/images")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_LOCK = "debian-12-cloud.lock.yaml"
LOCK_HEADER = """\
# The exact Debian package set of the debian-12-cloud recipe (rackpool image build).
# Every package mmdebstrap installs, with the version apt must install: the build pins
# them (apt preferences, priority 1001) and fails unless the result is exactly this list.
# Made from a build without pins (rackpool image build --no-pins; the cache directory's
# packages.lock.yaml); renew it when the mirror stops serving these versions.
"""

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
    pins: tuple[tuple[str, str], ...] = ()  # (package, version) of every package; () = unpinned

    def digest(self) -> str:
        """sha256 over the recipe and the builder version: the cache key."""
        body = {"builder": BUILDER_VERSION, **asdict(self)}
        body.pop("name")  # the name labels an upload, it does not change the bytes
        raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(raw).hexdigest()


def load_lock(path: Path | None = None) -> tuple[tuple[str, str], ...]:
    """(package, version) pairs from a lock file (default: the bundled bookworm lock)."""
    if path is None:
        text = resources.files(__package__).joinpath(DEFAULT_LOCK).read_text()
    else:
        text = path.read_text()
    data = yaml.safe_load(text) or {}
    packages = data.get("packages") if isinstance(data, dict) else None
    if not isinstance(packages, dict) or not packages:
        raise ValueError(f"{path or DEFAULT_LOCK}: no 'packages:' mapping of name: version")
    return tuple(sorted((str(k), str(v)) for k, v in packages.items()))


def lock_text(packages: dict[str, str], suite: str) -> str:
    """A lock file for ``packages`` (what a build installed), for ``load_lock``."""
    body = {"suite": suite, "packages": dict(sorted(packages.items()))}
    return LOCK_HEADER + yaml.safe_dump(body, default_flow_style=False, width=200)


def debian_cloud(
    name: str = "debian-12-cloud",
    mirror: str = DEFAULT_MIRROR,
    pins: tuple[tuple[str, str], ...] | None = None,
) -> Recipe:
    """The recipe ``rackpool image build`` and the VM tests use: pinned by the bundled lock
    unless ``pins`` says otherwise (``()``: whatever the mirror serves)."""
    return Recipe(name=name, mirror=mirror, pins=load_lock() if pins is None else pins)
