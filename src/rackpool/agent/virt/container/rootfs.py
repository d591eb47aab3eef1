"""The instance's writable root: a tmpfs holding overlay upper/work dirs over the image.

The tmpfs (sized from the flavor's disk) keeps each instance's writes private: other
instances see only the image through their own lower layer, never this tmpfs.
On the built-in ``host`` image, private host directories are hidden with overlay
opaque directories, and the instance's seed files (hostname, keys, user_data) are
written into the upper layer before the overlay is mounted.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from rackpool.agent.errors import DriverError
from rackpool.agent.virt.container.boot import USER_DATA_PATH

OPAQUE_XATTR = "trusted.overlay.opaque"


def _run(args: list[str]) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise DriverError(f"{' '.join(args)}: {proc.stderr.strip() or proc.returncode}")


def is_mounted(path: Path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == target for line in f)


def mount_scratch(scratch: Path, size_mb: int) -> None:
    scratch.mkdir(parents=True, exist_ok=True)
    if not is_mounted(scratch):
        _run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(scratch)])
    # Explicit modes, whatever the caller's umask (the CLI's is 077): the upper dir is
    # the guest's "/" (0700 would lock every non-root user out of the whole guest).
    (scratch / "upper").mkdir(exist_ok=True)
    os.chmod(scratch / "upper", 0o755)
    (scratch / "work").mkdir(mode=0o700, exist_ok=True)


def mount_overlay(lower: str, scratch: Path, rootfs: Path) -> None:
    rootfs.mkdir(parents=True, exist_ok=True)
    opts = f"lowerdir={lower},upperdir={scratch / 'upper'},workdir={scratch / 'work'}"
    _run(["mount", "-t", "overlay", "-o", opts, "overlay", str(rootfs)])


def unmount(path: Path) -> None:
    """Unmount ``path`` if mounted (lazily if busy); idempotent."""
    for _ in range(3):
        if not is_mounted(path):
            return
        proc = subprocess.run(["umount", str(path)], capture_output=True, timeout=60, check=False)
        if proc.returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=60)
    if is_mounted(path):
        raise DriverError(f"cannot unmount {path}")


def _mkdirs_like(lower: Path, upper: Path, rel: Path) -> None:
    """Create ``upper/rel``'s parents with the owner and mode they have in ``lower``."""
    cur_l, cur_u = lower, upper
    for part in rel.parts[:-1]:
        cur_l, cur_u = cur_l / part, cur_u / part
        if not cur_u.exists():
            st = cur_l.stat()
            cur_u.mkdir(mode=st.st_mode & 0o7777)
            os.chown(cur_u, st.st_uid, st.st_gid)
            os.chmod(cur_u, st.st_mode & 0o7777)


def hide(lower: Path, upper: Path, paths: Iterable[str]) -> None:
    """Make each existing lower directory look empty in the instance (opaque upper dir)."""
    done: list[Path] = []
    for p in sorted(paths):
        rel = Path(os.path.realpath(p)).relative_to("/")
        if any(rel == d or d in rel.parents for d in done) or not (lower / rel).is_dir():
            continue
        _mkdirs_like(lower, upper, rel)
        st = (lower / rel).stat()
        target = upper / rel
        target.mkdir(exist_ok=True)
        os.chown(target, st.st_uid, st.st_gid)
        os.chmod(target, st.st_mode & 0o7777)
        os.setxattr(target, OPAQUE_XATTR, b"y")
        done.append(rel)


def _write(upper: Path, path: str, data: bytes, mode: int) -> None:
    target = upper / path.lstrip("/")
    for d in reversed([d for d in (target.parent, *target.parent.parents) if upper in d.parents]):
        if not d.exists():
            d.mkdir()
            os.chmod(d, 0o755)  # a guest's /etc, /var/lib/...: not the agent's umask
    target.write_bytes(data)
    os.chmod(target, mode)


def seed(upper: Path, hostname: str, keys: tuple[str, ...], user_data: bytes | None) -> str:
    """Write the instance's identity into the upper layer; returns a console note."""
    (upper / "root").mkdir(mode=0o700, exist_ok=True)
    (upper / "root" / ".ssh").mkdir(mode=0o700, parents=True, exist_ok=True)
    _write(
        upper, "/root/.ssh/authorized_keys", "".join(k.strip() + "\n" for k in keys).encode(), 0o600
    )
    _write(upper, "/etc/hostname", f"{hostname}\n".encode(), 0o644)
    hosts = f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost ip6-localhost\n"
    _write(upper, "/etc/hosts", hosts.encode(), 0o644)
    if user_data is None:
        return ""
    if not user_data.startswith(b"#!"):
        return "rackpool: user_data is not a shell script (no #!); not run\n"
    _write(upper, USER_DATA_PATH, user_data, 0o700)
    return ""
