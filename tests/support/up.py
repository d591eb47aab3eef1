"""``rackpool up`` as a child process, as a user starts it (no stdin), for e2e tests.

up = UpProcess(tmp_path / "state", ["--driver", "fake", "--regions", "2"]).start()
up.state / "clouds.yaml"
up.stop()            # SIGTERM; asserts that up exited 0
up.start()           # again, on the same state dir
up.launch()          # start without waiting for "rackpool is up"
up.children()        # {pid: cmdline} of the daemons up runs now
up.leftovers()       # {pid: cmdline} of any process (but up) naming the state dir
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from tests.support import procs


class UpProcess:
    def __init__(self, state: Path, args: list[str]) -> None:
        self.state = state
        self.args = args
        self.out = state.parent / f"{state.name}.out"
        self.proc: subprocess.Popen[bytes] | None = None
        self.mark = 0

    def launch(self) -> UpProcess:
        self.mark = self.out.stat().st_size if self.out.exists() else 0
        self.proc = procs.spawn(["up", "--state-dir", str(self.state), *self.args], self.out)
        return self

    def start(self, timeout: float = 60) -> UpProcess:
        proc = self.launch().proc
        assert proc is not None
        procs.wait_started(
            proc, lambda: b"rackpool is up" in self.text(self.mark), timeout,
            "rackpool up to start", self.out,
        )  # fmt: skip
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def text(self, mark: int = 0) -> bytes:
        return self.out.read_bytes()[mark:]

    def children(self) -> dict[int, str]:
        """The processes whose parent is up: its daemons (and short-lived helpers)."""
        return {pid: cmd for pid, cmd in _processes().items() if _ppid(pid) == self.pid}

    def leftovers(self) -> dict[int, str]:
        """Processes other than up itself whose command line names this state dir."""
        mine = {os.getpid(), self.pid if self.proc is not None else -1}
        needle = str(self.state)
        return {pid: cmd for pid, cmd in _processes().items() if needle in cmd and pid not in mine}

    def kill_leftovers(self) -> None:
        """Test cleanup: SIGKILL, by pid, what this up started and left behind."""
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

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


def _processes() -> dict[int, str]:
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if raw:
            out[int(entry.name)] = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return out


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])
