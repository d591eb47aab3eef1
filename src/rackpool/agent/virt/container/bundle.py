"""The OCI runtime config (``config.json``) for one instance: pure data, no I/O."""

from __future__ import annotations

import resource
from typing import Any

from rackpool.agent.virt.container.boot import BOOT_PATH, INIT_PATH

_CAPS = [
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
]

_CPU_PERIOD = 100_000


def _mount(dest: str, typ: str, source: str, options: list[str]) -> dict[str, Any]:
    return {"destination": dest, "type": typ, "source": source, "options": options}


def oci_config(
    *,
    rootfs: str,
    hostname: str,
    netns_path: str,
    init_binary: str,
    boot_script: str,
    cgroups_path: str,
    limits: bool,
    vcpus: int,
    ram_mb: int,
    pids_limit: int = 8192,
) -> dict[str, Any]:
    """A runc config for a system container whose PID 1 runs the boot script."""
    nofile = min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    resources: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if limits:
        resources.update(
            memory={"limit": ram_mb * 1024 * 1024},
            cpu={"quota": vcpus * _CPU_PERIOD, "period": _CPU_PERIOD},
            pids={"limit": pids_limit},
        )
    linux: dict[str, Any] = {
        "resources": resources,
        "namespaces": [
            {"type": "pid"},
            {"type": "network", "path": netns_path},
            {"type": "ipc"},
            {"type": "uts"},
            {"type": "mount"},
        ],
        "maskedPaths": [
            "/proc/acpi",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi",
        ],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sysrq-trigger"],
        "cgroupsPath": cgroups_path,
    }
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            # the guest's umask is its own, not the agent's (the CLI runs with 077)
            "user": {"uid": 0, "gid": 0, "umask": 0o022},
            "args": [INIT_PATH, "--", "/bin/sh", BOOT_PATH],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {k: _CAPS for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
            "noNewPrivileges": False,
        },
        "root": {"path": rootfs, "readonly": False},
        "hostname": hostname,
        "mounts": [
            _mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
            _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            _mount(
                "/dev/pts",
                "devpts",
                "devpts",
                ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            ),
            _mount("/dev/shm", "tmpfs", "shm", ["nosuid", "nodev", "mode=1777", "size=65536k"]),
            _mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
            _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
            _mount("/run", "tmpfs", "tmpfs", ["nosuid", "nodev", "mode=755", "size=65536k"]),
            _mount(INIT_PATH, "bind", init_binary, ["bind", "ro"]),
            _mount(BOOT_PATH, "bind", boot_script, ["bind", "ro"]),
        ],
        "linux": linux,
    }
