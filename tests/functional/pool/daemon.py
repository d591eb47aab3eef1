"""``rackpool pool serve`` as a child process, so a test can SIGKILL it and start it again.

pool = PoolProcess(tmp_path, config_dict).start()   # waits for STATE_DIR/pool.json
client = pool.client()                              # rackpool.pool.client.PoolClient
pool.kill(); pool.start()                           # same config, same store
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml
from tests.support import procs

from rackpool.pool.client import PoolClient


class PoolProcess:
    def __init__(self, directory: Path, config: dict[str, Any]) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_dir = Path(config["state-dir"])
        self.config_path = directory / "pool.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = directory / "pool.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._clients: list[PoolClient] = []

    def start(self, timeout: float = 20) -> PoolProcess:
        proc = self.proc = procs.spawn(["pool", "serve", "--config", str(self.config_path)],
                                       self.log_path)  # fmt: skip
        procs.wait_started(
            proc, lambda: self._discovery().get("pid") == proc.pid, timeout,
            "the pool daemon to write pool.json", self.log_path,
        )  # fmt: skip
        return self

    def _discovery(self) -> dict[str, Any]:
        """STATE_DIR/pool.json; a killed daemon's stale file names its old pid."""
        try:
            data: dict[str, Any] = json.loads((self.state_dir / "pool.json").read_text())
        except (OSError, ValueError):
            return {}
        return data

    @property
    def url(self) -> str:
        return str(self._discovery()["url"])

    def client(self) -> PoolClient:
        info = self._discovery()
        client = PoolClient(str(info["url"]), str(info["token"]))
        self._clients.append(client)
        return client

    def metrics(self) -> str:
        return httpx.get(self.url + "/metrics", timeout=10).text

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def kill(self) -> None:
        procs.kill(self.proc)

    def stop(self) -> None:
        for c in self._clients:
            c.close()
        procs.stop(self.proc, timeout=15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]
