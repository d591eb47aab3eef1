"""HAProxy in front of region controllers, for tests (loopback only, stopped by PID).

    with haproxy(tmp_path, [c1.port, c2.port]) as lb:
        lb.url          # one address for clients and agents

Missing haproxy skips (a failure under ``CI=true``).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from rackpool.cli.localservices import HAProxy


@contextlib.contextmanager
def haproxy(directory: Path, ports: Sequence[int]) -> Iterator[HAProxy]:
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        pytest.skip("haproxy not installed (./dev installs it)")
    lb = HAProxy(directory, [("127.0.0.1", p) for p in ports]).start()
    try:
        yield lb
    finally:
        lb.stop()
