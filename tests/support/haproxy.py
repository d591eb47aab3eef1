"""HAProxy in front of region controllers, for tests (loopback only, stopped by PID).

    with haproxy(tmp_path, [c1.port, c2.port]) as lb:
        lb.url                        # one address for clients and agents

    with ha_region(tmp_path, database_url) as ha:   # two controllers on one PostgreSQL
        ha.url                        # HAProxy: the one address clients and agents use
        ha.controllers[0].kill()      # kill -9 one controller
        ha.engine                     # SQLAlchemy engine on the region's database (checks)

Every controller is ``rackpool cloud serve`` as a user starts it, on its own loopback
port, with the same region.yaml but its own ready file and log; they share the state
directory (image files), as controllers on one machine would. Everything is stopped by
PID when the block ends, even after a failure. Missing haproxy skips (a failure under
``CI=true``).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from rackpool.cli.localservices import HAProxy
from rackpool.cloud.config import RegionConfig
from tests.support import procs
from tests.support.region import (
    AGENT_TOKEN,
    bootstrap,
    clouds_entries,
    free_port,
    region_config,
    write_clouds_yaml,
)


@contextlib.contextmanager
def haproxy(directory: Path, ports: Sequence[int]) -> Iterator[HAProxy]:
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        pytest.skip("haproxy not installed (./dev installs it)")
    lb = HAProxy(directory, [("127.0.0.1", p) for p in ports]).start()
    try:
        yield lb
    finally:
        lb.stop()


class ControllerProcess:
    def __init__(self, directory: Path, config: RegionConfig, port: int, index: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.index = index
        data = config.model_dump(mode="json")
        data["listen"] = {"host": "127.0.0.1", "port": port}
        self.config_path = directory / f"controller{index}.yaml"
        self.config_path.write_text(yaml.safe_dump(data))
        self.config_path.chmod(0o600)  # holds the database password
        self.ready = directory / f"controller{index}.ready.json"
        self.log_path = directory / f"controller{index}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> ControllerProcess:
        self.ready.unlink(missing_ok=True)
        self.proc = procs.spawn(
            ["cloud", "serve", "--config", str(self.config_path), "--ready-file",
             str(self.ready), "--log-format", "json"],
            self.log_path,
        )  # fmt: skip
        return self

    def wait_started(self, timeout: float = 60) -> None:
        assert self.proc is not None
        procs.wait_started(
            self.proc, lambda: self.ready.exists() and _answers(self.url), timeout,
            f"controller {self.index}", self.log_path,
        )  # fmt: skip

    def kill(self) -> None:
        procs.kill(self.proc)

    def stop(self) -> None:
        procs.stop(self.proc, timeout=15)

    def log(self) -> str:
        return procs.tail(self.log_path, 4000)


@dataclass
class HARegion:
    name: str
    config: RegionConfig
    controllers: list[ControllerProcess]
    lb: HAProxy
    clouds_yaml: Path
    engine: Engine
    _extra: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.lb.url


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def ha_region(
    tmp_path: Path, database: str, name: str = "ha", controllers: int = 2, **overrides: Any
) -> Iterator[HARegion]:
    """``controllers`` controllers of region ``name`` on ``database`` behind HAProxy."""
    state = tmp_path / f"region-{name}"
    state.mkdir(parents=True, exist_ok=True)
    overrides.setdefault("fake_hosts", [])  # hosts are agents: in-process ones would run twice
    config = region_config(state, name, database=database, **overrides)
    bootstrap(config)
    procs_: list[ControllerProcess] = []
    engine = create_engine(config.database_url(), poolclass=NullPool)
    try:
        for i in range(controllers):
            procs_.append(ControllerProcess(state, config, free_port(), i + 1).spawn())
        for c in procs_:  # started together: they meet at the start-up lock
            c.wait_started()
        with haproxy(tmp_path / "haproxy", [c.port for c in procs_]) as lb:
            clouds = write_clouds_yaml(
                tmp_path / f"clouds-{name}.yaml", clouds_entries(name, lb.url)
            )
            yield HARegion(name, config, procs_, lb, clouds, engine)
    finally:
        for c in procs_:
            c.stop()
        engine.dispose()


__all__ = ["AGENT_TOKEN", "ControllerProcess", "HARegion", "ha_region", "haproxy"]
