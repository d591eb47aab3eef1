"""What this machine can offer, for drivers that run instances on the local kernel."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rackpool.agent.virt.base import Capacity


def detect_capacity(disk_path: str | Path) -> Capacity:
    ram_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                ram_kb = int(line.split()[1])
                break
    disk = shutil.disk_usage(disk_path)
    return Capacity(
        vcpus=os.cpu_count() or 1,
        ram_mb=ram_kb // 1024,
        disk_gb=disk.total // (1024**3),
    )
