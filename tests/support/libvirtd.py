"""libvirtd for tests: used when it already answers, else started here and stopped after.

PID 1 is not systemd on these machines, so nothing socket-activates libvirtd: the
fixture starts ``virtlogd -d`` (qemu's console and log files go through it) and
``libvirtd -d``, and afterwards stops exactly the processes it started, by the PIDs in
their pid files. Debian packages: libvirt-daemon-system, qemu-system-x86 (./dev).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import libvirt

from rackpool.core.clock import iterate_timeout

URI = "qemu:///system"
KVM = Path("/dev/kvm")
DAEMONS = (("virtlogd", Path("/run/virtlogd.pid")), ("libvirtd", Path("/run/libvirtd.pid")))


def _answers() -> bool:
    try:
        libvirt.open(URI).close()
        return True
    except libvirt.libvirtError:
        return False


def _alive(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def kvm_device_as_udev_would() -> None:
    """Give /dev/kvm Debian's udev rule (group kvm, 0660) where no udev ran.

    Without it libvirt's qemu user cannot open /dev/kvm, libvirt finds its cached qemu
    capabilities (probed with KVM) inconsistent with that, and probes qemu again on
    every domain start: ~50 s each on these machines instead of ~2 s.
    """
    import grp

    if not KVM.exists():
        return
    try:
        gid = grp.getgrnam("kvm").gr_gid
    except KeyError:
        return
    st = KVM.stat()
    if st.st_gid != gid or st.st_mode & 0o060 != 0o060:
        os.chown(KVM, -1, gid)
        os.chmod(KVM, (st.st_mode & 0o7777) | 0o660)


@contextlib.contextmanager
def running_libvirtd(timeout: float = 60) -> Iterator[str]:
    """Yield the URI of a libvirtd that answers; stop what this started on exit."""
    started: list[int] = []
    kvm_device_as_udev_would()
    try:
        if not _answers():
            for name, pidfile in DAEMONS:
                if _alive(pidfile) is None:
                    subprocess.run([name, "-d"], check=True, timeout=30)
                    for _ in iterate_timeout(timeout, f"{name} pid file", interval=0.1):
                        pid = _alive(pidfile)
                        if pid is not None:
                            started.append(pid)
                            break
            for _ in iterate_timeout(timeout, f"libvirtd answering on {URI}", interval=0.2):
                if _answers():
                    break
        yield URI
    finally:
        for pid in reversed(started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
