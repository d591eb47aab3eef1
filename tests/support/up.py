"""``rackpool up`` as a child process, as a user starts it (no stdin), for e2e tests.

up = UpProcess(tmp_path / "state", ["--driver", "fake", "--regions", "2"]).start()
up.state / "clouds.yaml"
up.stop()            # SIGTERM; asserts that up exited 0
up.start()           # again, on the same state dir
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import procs


class UpProcess:
    def __init__(self, state: Path, args: list[str]) -> None:
        self.state = state
        self.args = args
        self.out = state.parent / f"{state.name}.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> UpProcess:
        mark = self.out.stat().st_size if self.out.exists() else 0
        self.proc = procs.spawn(["up", "--state-dir", str(self.state), *self.args], self.out)
        procs.wait_started(
            self.proc, lambda: b"rackpool is up" in self.text(mark), timeout,
            "rackpool up to start", self.out,
        )  # fmt: skip
        return self

    def text(self, mark: int = 0) -> bytes:
        return self.out.read_bytes()[mark:]

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM and wait; up must exit 0 (it is killed if it does not exit)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            assert self.proc.wait(timeout) == 0, self.text()
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
