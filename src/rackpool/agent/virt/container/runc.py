"""A thin wrapper around the ``runc`` CLI: one runc root per agent, so agents never collide."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from rackpool.agent.errors import DriverError, DriverUnavailable


@dataclass(frozen=True)
class RuncContainer:
    id: str
    pid: int
    status: str  # created | running | paused | stopped


class Runc:
    def __init__(self, binary: str, root: Path) -> None:
        self.binary = binary
        self.root = root

    def _cmd(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.root), *args]

    def version(self) -> str:
        try:
            proc = subprocess.run(
                [self.binary, "--version"], capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise DriverUnavailable(f"runc ({self.binary}) is not usable: {exc}") from exc
        return proc.stdout.splitlines()[0] if proc.stdout else "runc"

    def run_detached(self, container_id: str, bundle: Path, console: Path) -> None:
        """Start the container; its init is not our child (runc exits, init is reparented).

        runc hands its stdio to the container, so both go to the console file (a pipe
        here would stay open for the container's lifetime).
        """
        with open(console, "ab", buffering=0) as out:
            proc = subprocess.run(
                self._cmd("run", "--detach", "--bundle", str(bundle), container_id),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                timeout=60,
                check=False,
                start_new_session=True,
            )
        if proc.returncode != 0:
            tail = console.read_text(errors="replace")[-500:].strip()
            raise DriverError(f"runc run {container_id} failed ({proc.returncode}): {tail}")

    def list(self) -> list[RuncContainer]:
        if not self.root.exists():
            return []
        proc = subprocess.run(
            self._cmd("list", "--format", "json"), capture_output=True, text=True, timeout=30
        )
        if proc.returncode != 0:
            raise DriverError(f"runc list: {proc.stderr.strip()}")
        items = json.loads(proc.stdout or "null") or []
        return [RuncContainer(i["id"], int(i.get("pid", 0)), i["status"]) for i in items]

    def init_pid(self, container_id: str) -> int:
        """The container's init PID from runc's state file (also known once it stopped)."""
        try:
            state = json.loads((self.root / container_id / "state.json").read_text())
        except (FileNotFoundError, ValueError):
            return 0
        return int(state.get("init_process_pid") or 0)

    def kill(self, container_id: str) -> None:
        """SIGKILL the container's init (its PID namespace dies with it); no wait.

        Errors are ignored: a container that is absent or stopped has nothing to kill.
        """
        subprocess.run(
            self._cmd("kill", container_id, "KILL"),
            capture_output=True,
            timeout=60,
            check=False,
        )

    def delete(self, container_id: str) -> None:
        """Kill every process of the container and remove its cgroups and state.

        On a running container ``runc delete --force`` sleeps 100 ms between its kill
        and its first check; on a stopped one it removes at once (see ``kill``).
        """
        proc = subprocess.run(
            self._cmd("delete", "--force", container_id),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0 and "does not exist" not in proc.stderr:
            raise DriverError(f"runc delete {container_id}: {proc.stderr.strip()}")
