"""Region controllers for tests: in a thread (fast) or as a subprocess (killable).

    with running_region(tmp_path) as r:
        conn = r.connect()            # openstacksdk Connection as the 'ci' project user
        admin = r.connect(admin=True)
        r.clouds_yaml                 # path of a clouds.yaml with rackpool-<region>[-admin]

``RegionProcess`` runs ``rackpool cloud serve`` in a child process so a test can
kill the whole controller (provider outage) and start it again on the same port.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rackpool.cloud.config import RegionConfig
from rackpool.cloud.region import Region
from rackpool.cloud.serve import ThreadedRegion
from rackpool.core.clock import Clock
from tests.support import procs

AGENT_TOKEN = "test-agent-token-0123456789"
ADMIN_PASSWORD = "admin-secret-pw"
CI_PASSWORD = "ci-secret-password"


def region_config(state_dir: Path, name: str = "r1", **overrides: Any) -> RegionConfig:
    data: dict[str, Any] = {
        "region": name,
        "state_dir": str(state_dir),
        "agent_token": AGENT_TOKEN,
        "fake_hosts": [
            {"name": f"{name}-fake1", "build_delay": 0.05},
            {"name": f"{name}-fake2", "build_delay": 0.05},
        ],
        "hosts": {"heartbeat_interval": 0.5, "heartbeat_timeout": 5, "check_interval": 0.25},
    }
    data.update(overrides)
    return RegionConfig.model_validate(data)


def bootstrap(config: RegionConfig) -> None:
    region = Region.open(config)
    try:
        region.ensure_project("admin", "admin", ADMIN_PASSWORD, "admin")
        region.ensure_project("ci", "ci", CI_PASSWORD, "member")
    finally:
        region.close()


def clouds_entries(region: str, url: str) -> dict[str, Any]:
    def entry(user: str, password: str, project: str) -> dict[str, Any]:
        return {
            "auth": {
                "auth_url": f"{url}/identity",
                "username": user,
                "password": password,
                "project_name": project,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            "region_name": region,
            "identity_api_version": 3,
            "interface": "public",
        }

    return {
        f"rackpool-{region}": entry("ci", CI_PASSWORD, "ci"),
        f"rackpool-{region}-admin": entry("admin", ADMIN_PASSWORD, "admin"),
    }


def write_clouds_yaml(path: Path, entries: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"clouds": entries}))
    return path


@dataclass
class RegionHandle:
    name: str
    url: str
    state_dir: Path
    clouds_yaml: Path
    config: RegionConfig
    threaded: ThreadedRegion | None = None
    _conns: list[Any] = field(default_factory=list)

    @property
    def region(self) -> Region:
        assert self.threaded is not None
        return self.threaded.region

    def connect(self, admin: bool = False, **kwargs: Any) -> Any:
        cloud = f"rackpool-{self.name}" + ("-admin" if admin else "")
        conn = connect(self.clouds_yaml, cloud, **kwargs)
        self._conns.append(conn)
        return conn

    def close(self) -> None:
        for c in self._conns:
            with contextlib.suppress(Exception):
                c.close()


@contextlib.contextmanager
def running_region(
    tmp_path: Path, name: str = "r1", clock: Clock | None = None, **overrides: Any
) -> Iterator[RegionHandle]:
    state = tmp_path / f"region-{name}"
    config = region_config(state, name, **overrides)
    bootstrap(config)
    threaded = ThreadedRegion(config, clock).start()
    clouds = write_clouds_yaml(tmp_path / f"clouds-{name}.yaml", clouds_entries(name, threaded.url))
    handle = RegionHandle(name, threaded.url, state, clouds, config, threaded)
    try:
        yield handle
    finally:
        handle.close()
        threaded.stop()


def connect(clouds_yaml: Path, cloud: str, **kwargs: Any) -> Any:
    """An openstacksdk Connection for ``cloud`` from one clouds.yaml, ignoring the environment."""
    import openstack.config
    import openstack.connection

    cfg = openstack.config.OpenStackConfig(
        config_files=[str(clouds_yaml)], vendor_files=[], load_envvars=False
    )
    return openstack.connection.Connection(config=cfg.get_one(cloud=cloud, **kwargs))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RegionProcess:
    """``rackpool cloud serve`` as a child process on a fixed loopback port."""

    def __init__(self, tmp_path: Path, name: str = "r1", **overrides: Any) -> None:
        self.name = name
        self.port = free_port()
        self.state_dir = tmp_path / f"region-{name}"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        overrides.setdefault("listen", {"host": "127.0.0.1", "port": self.port})
        self.config = region_config(self.state_dir, name, **overrides)
        self.config_path = self.state_dir / "region.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config.model_dump(mode="json")))
        bootstrap(self.config)
        self.url = f"http://127.0.0.1:{self.port}"
        self.clouds_yaml = write_clouds_yaml(
            tmp_path / f"clouds-{name}.yaml", clouds_entries(name, self.url)
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.state_dir / "region.log"

    def start(self, timeout: float = 20) -> RegionProcess:
        ready = self.state_dir / "ready.json"
        ready.unlink(missing_ok=True)
        argv = ["cloud", "serve", "--config", str(self.config_path), "--ready-file", str(ready)]
        self.proc = procs.spawn(argv, self.log_path)
        procs.wait_started(
            self.proc, lambda: ready.exists() and _answers(self.url), timeout,
            f"region {self.name} to start", self.log_path,
        )  # fmt: skip
        return self

    def kill(self) -> None:
        procs.kill(self.proc)

    def stop(self) -> None:
        procs.stop(self.proc)

    def info(self) -> dict[str, Any]:
        return json.loads((self.state_dir / "ready.json").read_text())


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + "/", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
