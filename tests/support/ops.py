"""``rackpool ops serve`` as a child process over some log files, for end-to-end tests.

ops = OpsProcess(tmp_path / "ops", ["/path/to/logs/*.log"]).start()
httpx.get(ops.url + "/api/failures")
ops.stop()
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support import procs


class OpsProcess:
    def __init__(
        self,
        directory: Path,
        files: list[str],
        classify_interval: float = 0.2,
        log_path: Path | None = None,
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_dir = directory / "state"
        self.config_path = directory / "ops.yaml"
        config = {
            "index": {"path": str(directory / "index")},
            "shipper": {"files": files, "poll_interval": 0.1},
            "classifier": {"interval": classify_interval},
            "log": {"json": True, "path": str(log_path or directory / "ops.log")},
        }
        self.config_path.write_text(yaml.safe_dump(config))
        self.out_path = directory / "ops.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> OpsProcess:
        argv = [
            "ops",
            "serve",
            "--config",
            str(self.config_path),
            "--state-dir",
            str(self.state_dir),
        ]
        self.proc = procs.spawn(argv, self.out_path)
        procs.wait_started(
            self.proc, (self.state_dir / "ops.json").exists, timeout,
            "the ops daemon to write ops.json", self.out_path,
        )  # fmt: skip
        return self

    @property
    def info(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.state_dir / "ops.json").read_text())
        return data

    @property
    def url(self) -> str:
        return str(self.info["url"])

    def stop(self) -> None:
        procs.stop(self.proc, timeout=15)
