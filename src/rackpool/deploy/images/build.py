"""Build a recipe into ``<cache>/<recipe hash>/``: mmdebstrap → rootfs → qcow2 / tarball.

Why mmdebstrap and no bootloader: it installs Debian's own packages (kernel, systemd,
cloud-init, openssh-server) as root in about 90 s with nothing but the package mirror,
and its output directory goes straight into an ext4 filesystem with ``mkfs.ext4 -d``
(no loop devices, no partitioning, no chroot'd grub-install, none of which these
machines allow). The disk is one ext4 filesystem without a partition table; the guest
boots by direct kernel boot, the kernel and initrd being copied next to the qcow2 (and
found in the filesystem's ``/boot`` by the libvirt driver, docs/images.md).

Each format has its own cache directory ``<cache>/<recipe hash>/<format>/`` holding
``disk.qcow2`` or ``rootfs.tar.gz``, ``vmlinuz``, ``initrd.img``, ``image.json``
(recipe, hash, package list with versions, step times) and ``packages.lock.yaml`` (the
same list as a lock file, to pin a recipe with), all from one build.

A pinned recipe (``Recipe.pins``) is built with an apt preferences file pinning each
package to its version (priority 1001, so apt takes exactly it), copied into the tree
before mmdebstrap resolves anything and removed again afterwards (the guest's apt may
upgrade as usual); the installed list must then equal the pins, else the build fails. A build runs
in a temporary directory renamed into place, under a lock, so concurrent builds of one
recipe build once and a killed build leaves no half image.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from rackpool.core.errors import RackpoolError
from rackpool.deploy.images.recipe import DEFAULT_CACHE, Recipe, lock_text

log = logging.getLogger("rackpool.deploy.images")

Format = Literal["qcow2", "rootfs"]
FILES: dict[str, str] = {"qcow2": "disk.qcow2", "rootfs": "rootfs.tar.gz"}
# Documentation and translations are not needed in a CI guest; they are a third of it.
DPKG_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*",
                 "/usr/share/info/*")  # fmt: skip
PINS_FILE = "rackpool-pins"
TOOLS = {"mmdebstrap": "mmdebstrap", "mkfs.ext4": "e2fsprogs", "qemu-img": "qemu-utils"}


class ImageBuildError(RackpoolError):
    """A build step failed; the message names the step and the tool's last output."""

    code = 1


@dataclass(frozen=True)
class BuiltImage:
    """A finished build in the cache; ``cached`` when nothing had to be built."""

    directory: Path
    recipe: Recipe
    digest: str
    packages: dict[str, str]
    cached: bool
    seconds: dict[str, float] = field(default_factory=dict)

    def path(self, fmt: Format) -> Path:
        return self.directory / FILES[fmt]

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    @property
    def kernel_version(self) -> str:
        return str(self.meta().get("kernel_version", ""))

    def meta(self) -> dict[str, Any]:
        return dict(json.loads((self.directory / "image.json").read_text()))


Progress = Callable[[str], None]


def build_image(
    recipe: Recipe,
    fmt: Format = "qcow2",
    cache: Path = DEFAULT_CACHE,
    progress: Progress | None = None,
) -> BuiltImage:
    """The image for ``recipe`` in ``fmt``, built unless the cache already holds it."""
    say = progress or (lambda msg: log.info(msg))
    digest = recipe.digest()
    final = cache / digest / fmt
    final.parent.mkdir(parents=True, exist_ok=True)
    with _locked(final.parent / f"{fmt}.lock"):
        if (final / FILES[fmt]).exists() and (final / "image.json").exists():
            meta = json.loads((final / "image.json").read_text())
            say(f"cached: {final / FILES[fmt]}")
            return BuiltImage(final, recipe, digest, meta["packages"], True, meta["seconds"])
        _check_tools(fmt)
        work = final.parent / f"{fmt}.tmp-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(mode=0o755)
        try:
            meta = _build(recipe, fmt, work, say)
            meta["digest"] = digest
            _install(work, final, meta)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return BuiltImage(final, recipe, digest, meta["packages"], False, meta["seconds"])


def _build(recipe: Recipe, fmt: Format, work: Path, say: Progress) -> dict[str, Any]:
    rootfs = work / "rootfs"
    seconds: dict[str, float] = {}
    t0 = time.monotonic()
    steps = 4 if fmt == "qcow2" else 3

    def step(n: int, what: str) -> None:
        say(f"[{n}/{steps}] {what} (+{time.monotonic() - t0:.0f}s)")

    pinned = f", {len(recipe.pins)} pinned versions" if recipe.pins else ", unpinned"
    step(1, f"mmdebstrap {recipe.suite} minbase with {len(recipe.packages)} packages{pinned}")
    t = time.monotonic()
    _mmdebstrap(recipe, rootfs, work, say)
    seconds["mmdebstrap"] = time.monotonic() - t
    step(2, "configure cloud-init, fstab, host keys; copy out kernel and initrd")
    packages = _packages(rootfs)
    if recipe.pins:
        check_pins(dict(recipe.pins), packages)
    (work / "packages.lock.yaml").write_text(lock_text(packages, recipe.suite))
    kernel_version = _configure(recipe, rootfs, work)
    if fmt == "qcow2":
        step(3, f"mkfs.ext4 -d into a {recipe.size_gb} GiB disk")
        t = time.monotonic()
        raw = work / "disk.raw"
        with open(raw, "wb") as f:
            f.truncate(recipe.size_gb * 1024**3)
        _run(["mkfs.ext4", "-q", "-F", "-L", "rackpool-root", "-d", str(rootfs), str(raw)])
        seconds["mkfs"] = time.monotonic() - t
        step(4, "qemu-img convert to qcow2")
        t = time.monotonic()
        _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(work / FILES["qcow2"])])
        raw.unlink()
        seconds["convert"] = time.monotonic() - t
    else:
        step(3, "tar the root filesystem")
        t = time.monotonic()
        out = work / FILES["rootfs"]
        _run(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-czf", str(out), "."])
        seconds["tar"] = time.monotonic() - t
    shutil.rmtree(rootfs)
    seconds["total"] = time.monotonic() - t0
    say(f"built in {seconds['total']:.0f}s")
    return {
        "recipe": asdict(recipe),
        "packages": packages,
        "kernel_version": kernel_version,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _mmdebstrap(recipe: Recipe, rootfs: Path, work: Path, say: Progress) -> None:
    cmd = ["mmdebstrap", "--mode=root", "--variant=minbase",
           f"--include={','.join(recipe.packages)}"]  # fmt: skip
    cmd += [f"--dpkgopt=path-exclude={p}" for p in DPKG_EXCLUDES]
    if recipe.pins:
        prefs = work / PINS_FILE
        prefs.write_text(apt_preferences(recipe.pins))
        cmd += [f"--setup-hook=copy-in {prefs} /etc/apt/preferences.d/",
                f'--customize-hook=rm -f "$1/etc/apt/preferences.d/{PINS_FILE}"']  # fmt: skip
    cmd += [recipe.suite, str(rootfs), recipe.mirror]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    tail: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        line = line.rstrip()
        tail = (tail + [line])[-20:]
        if line.startswith("I: ") and not line.startswith("I: running"):
            say(f"  {line[3:]}")
    rc = proc.wait()
    (work / PINS_FILE).unlink(missing_ok=True)
    if rc != 0:
        raise ImageBuildError("mmdebstrap failed:\n" + "\n".join(tail))


def apt_preferences(pins: tuple[tuple[str, str], ...]) -> str:
    """apt_preferences(5) stanzas making apt install exactly these versions."""
    return "".join(
        f"Package: {name}\nPin: version {version}\nPin-Priority: 1001\n\n" for name, version in pins
    )


def check_pins(pins: dict[str, str], got: dict[str, str]) -> None:
    """The installed packages must be exactly the pinned ones, at the pinned versions."""
    diff = [f"{n}: pinned {pins.get(n, '-')}, installed {got.get(n, '-')}"
            for n in sorted(pins.keys() | got.keys()) if pins.get(n) != got.get(n)]  # fmt: skip
    if diff:
        raise ImageBuildError(
            f"the build did not install the pinned package set ({len(diff)} differences; "
            "the mirror no longer serves these versions? renew the lock from a --no-pins "
            "build or use a snapshot.debian.org mirror):\n  " + "\n  ".join(diff[:30])
        )


def _packages(rootfs: Path) -> dict[str, str]:
    out = _run(["dpkg-query", f"--admindir={rootfs}/var/lib/dpkg", "-W",
                "-f=${Package}\t${Version}\n"])  # fmt: skip
    return dict(sorted(line.split("\t", 1) for line in out.splitlines() if "\t" in line))


def _configure(recipe: Recipe, rootfs: Path, work: Path) -> str:
    """Guest settings the recipe implies; returns the kernel version copied out."""
    (rootfs / "etc/cloud/cloud.cfg.d/90-rackpool.cfg").write_text(recipe.cloud_cfg)
    (rootfs / "etc/fstab").write_text("LABEL=rackpool-root / ext4 defaults,errors=remount-ro 0 1\n")
    interfaces = rootfs / "etc/network/interfaces"
    interfaces.write_text("auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n")
    (rootfs / "etc/hostname").write_text("localhost\n")
    (rootfs / "etc/machine-id").write_text("")  # systemd makes a fresh one on first boot
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()  # cloud-init generates each guest's own keys
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise ImageBuildError("no kernel in /boot: the recipe must include a linux-image package")
    version = kernels[-1].name.removeprefix("vmlinuz-")
    initrd = rootfs / "boot" / f"initrd.img-{version}"
    if not initrd.exists():
        raise ImageBuildError(f"no initrd for kernel {version} (initramfs-tools missing?)")
    shutil.copyfile(kernels[-1], work / "vmlinuz")
    shutil.copyfile(initrd, work / "initrd.img")
    return version


def _install(work: Path, final: Path, meta: dict[str, Any]) -> None:
    """Record ``image.json`` and rename the finished build into place."""
    (work / "image.json").write_text(json.dumps(meta, indent=1) + "\n")
    for f in work.iterdir():
        f.chmod(0o644)
    work.chmod(0o755)
    shutil.rmtree(final, ignore_errors=True)  # a half-written one from before image.json
    work.rename(final)


def _check_tools(fmt: Format) -> None:
    needed = dict(TOOLS) if fmt == "qcow2" else {"mmdebstrap": "mmdebstrap"}
    missing = [f"{tool} (Debian package {pkg})" for tool, pkg in needed.items()
               if shutil.which(tool) is None]  # fmt: skip
    if missing:
        raise ImageBuildError("image build needs " + ", ".join(missing))
    if os.geteuid() != 0:
        raise ImageBuildError("image build runs mmdebstrap --mode=root: run it as root")


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ImageBuildError(f"{cmd[0]} failed: {(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc.stdout


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
