"""Child processes a test starts (``python -m rackpool.cli …``) and stops, by handle only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from rackpool.core.clock import wait_for


def spawn(argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """``rackpool ARGV`` as a user runs it: no stdin, stdout and stderr appended to a log."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "rackpool.cli", *argv],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip


def wait_started(
    proc: subprocess.Popen[bytes], ready: Callable[[], object], timeout: float, what: str,
    log_path: Path,
) -> None:  # fmt: skip
    """Wait until ``ready()``; if the process exits first, fail with its log's tail."""

    def started() -> object:
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: exited {proc.returncode}: {tail(log_path)}")
        return ready()

    wait_for(started, timeout, what)


def tail(path: Path, size: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except FileNotFoundError:
        return ""


def kill(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
