"""Build a small rootfs tarball (a "cloud image" for the container driver) from this host.

It holds just what an instance needs to boot and be used over SSH: a shell, coreutils
used by the boot script, ``ssh-keygen``, ``sshd``, ``useradd``, their shared libraries
(found with ``ldd``), and a minimal ``/etc``. Its ``/etc/os-release`` says
``ID=rackpool-mini`` so a test can tell it apart from the built-in ``host`` image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

BINARIES = (
    "sh", "dash", "cat", "chmod", "chown", "cp", "cut", "getent", "hostname", "id", "ls",
    "mkdir", "rm", "touch", "uname", "ssh-keygen", "sshd", "useradd", "nologin",
)  # fmt: skip
OS_RELEASE = 'ID=rackpool-mini\nNAME="rackpool minimal test image"\n'
SSHD_CONFIG = """\
UsePAM no
PermitRootLogin prohibit-password
AuthorizedKeysFile .ssh/authorized_keys
PrintMotd no
"""
ETC = {
    "passwd": (
        "root:x:0:0:root:/root:/bin/sh\n"
        "sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    ),
    "group": "root:x:0:\nsudo:x:27:\nusers:x:100:\nnogroup:x:65534:\n",
    "shadow": "root:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\nnobody:*:19000::::::\n",
    "gshadow": "root:*::\nsudo:*::\nusers:*::\nnogroup:*::\n",
    "nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
    "os-release": OS_RELEASE,
    "ssh/sshd_config": SSHD_CONFIG,
}


def _libraries(binary: str) -> set[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30, check=False)
    libs = set()
    for line in out.stdout.splitlines():
        parts = line.split()
        for p in parts:
            if p.startswith("/"):
                libs.add(p)
    return libs


def _copy(src: str, root: Path) -> None:
    """Copy ``src`` (following symlinks) to the same path under ``root``."""
    dest = root / os.path.realpath(src).lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        shutil.copy2(os.path.realpath(src), dest)
    alias = root / src.lstrip("/")
    if not alias.exists() and not alias.is_symlink():
        alias.parent.mkdir(parents=True, exist_ok=True)
        # relative to where the link really lives (its parent may be behind a symlink)
        alias.symlink_to(os.path.relpath(dest, os.path.realpath(alias.parent)))


def build_rootfs(root: Path) -> Path:
    """Populate ``root`` with a bootable minimal system; returns ``root``."""
    root.mkdir(parents=True)
    for d in ("usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc/ssh", "etc/skel", "root",
              "home", "var/empty", "var/lib", "run", "proc", "sys", "dev"):  # fmt: skip
        (root / d).mkdir(parents=True, exist_ok=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"),
                         ("lib64", "usr/lib64")):  # fmt: skip
        (root / link).symlink_to(target)
    (root / "tmp").mkdir(mode=0o1777)
    os.chmod(root / "tmp", 0o1777)
    os.chmod(root / "root", 0o700)
    wanted: set[str] = set()
    for name in BINARIES:
        path = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if path is None:
            raise FileNotFoundError(f"{name} not found on this host")
        wanted.add(path)
        wanted |= _libraries(path)
    for path in sorted(wanted):
        _copy(path, root)
    for name, text in ETC.items():
        (root / "etc" / name).write_text(text)
    os.chmod(root / "etc" / "shadow", 0o640)
    os.chmod(root / "etc" / "gshadow", 0o640)
    if Path("/etc/login.defs").exists():
        shutil.copy2("/etc/login.defs", root / "etc" / "login.defs")
    return root


def build_rootfs_tarball(workdir: Path) -> Path:
    """``workdir/rootfs.tar``: a tar of :func:`build_rootfs`, owned by root."""
    tree = build_rootfs(workdir / "rootfs-tree")
    out = workdir / "rootfs.tar"
    subprocess.run(
        ["tar", "--numeric-owner", "--owner=0", "--group=0", "-C", str(tree), "-cf", str(out), "."],
        check=True,
        timeout=120,
    )
    shutil.rmtree(tree)
    return out
