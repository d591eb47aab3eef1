"""Agents as child processes (``rackpool agent --config``) so tests can kill them."""

from __future__ import annotations

import os
import subprocess
import sys
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
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rackpool.cli", "agent", "--config", str(self.config_path),
                 "--log-format", "text", "--log-level", "INFO"],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        return self

    def kill(self) -> None:
        procs.kill(self.proc)

    def stop(self) -> None:
        procs.stop(self.proc, timeout=15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]
