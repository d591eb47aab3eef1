"""Agents as child processes (``rackpool agent --config``) so tests can kill them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml
from tests.support import procs


class AgentProcess:
    def __init__(self, directory: Path, config: dict[str, Any]) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path = directory / "agent.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = directory / "agent.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        self.proc = procs.spawn(
            ["agent", "--config", str(self.config_path), "--log-format", "text",
             "--log-level", "INFO"],
            self.log_path,
        )  # fmt: skip
        return self

    def kill(self) -> None:
        procs.kill(self.proc)

    def stop(self) -> None:
        procs.stop(self.proc, timeout=15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]
