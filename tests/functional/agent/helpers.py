"""Helpers for agent functional tests: SSH with verified host keys, leak checks."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from rackpool.core.clock import Timeout, iterate_timeout

CGROUP_ROOT = Path("/sys/fs/cgroup")


def make_keypair(directory: Path) -> tuple[Path, str]:
    key = directory / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30
    )
    return key, (directory / "id_ed25519.pub").read_text().strip()


def known_hosts(path: Path, address: str, host_keys: list[str] | tuple[str, ...]) -> Path:
    path.write_text("".join(f"{address} {k}\n" for k in host_keys))
    return path


def ssh(
    address: str, key: Path, known: Path, command: str, user: str = "root", timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` over SSH, verifying the host key strictly against ``known``."""
    return subprocess.run(
        [
            "ssh",
            "-i",
            str(key),
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={known}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
            f"{user}@{address}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def leftovers(state_dir: Path, instance_id: str, cgroup_rel: str) -> list[str]:
    """Everything an instance could leave behind on this machine; empty when clean."""
    found = []
    if Path(f"/run/netns/rp-{instance_id}").exists():
        found.append("netns")
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    from rackpool.agent.hostnet import short_name

    if short_name("rpv", instance_id) + "@" in links:
        found.append("veth")
    inst_dir = str(state_dir.resolve() / "containers" / instance_id)
    mounts = Path("/proc/self/mounts").read_text()
    if inst_dir in mounts:
        found.append("mount")
    for d in CGROUP_ROOT.iterdir():
        if (d / cgroup_rel.lstrip("/")).exists():
            found.append(f"cgroup {d.name}")
    if Path(inst_dir).exists():
        found.append("files")
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cg = (p / "cgroup").read_text()
            except OSError:
                continue
            if cgroup_rel in cg:
                status = (p / "status").read_text().splitlines()[:3]
                found.append(f"process {p.name} {status}")
    return found


def wait_no_leftovers(
    state_dir: Path,
    instance_id: str,
    cgroup_rel: str,
    timeout: float,
    purpose: str,
    log: Callable[[], str] = str,
) -> None:
    """Wait until :func:`leftovers` finds nothing; on timeout say what was still there."""
    found: list[str] = []
    try:
        for _ in iterate_timeout(timeout, purpose, 0.1):
            found = leftovers(state_dir, instance_id, cgroup_rel)
            if not found:
                return
    except Timeout:
        pass
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {purpose}: {found}\n{log()}")
