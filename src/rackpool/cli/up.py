"""``rackpool up``: the embedded default on one machine.

N regions (each its own controller on a loopback port, with an ``admin`` and a
``ci`` project and default flavors), M hosts per region (container agents when
root with runc/sshd, in-process fake hosts otherwise), a pool over all regions,
and the ops index shipping every daemon's logs. Writes ``DIR/clouds.yaml`` with
``rackpool-<region>`` (ci) and ``rackpool-<region>-admin`` entries.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from rackpool.cli.down import UP_PID_FILE, running_up
from rackpool.core.errors import ConfigError, TemporaryError

STATE_ENV = "RACKPOOL_STATE_DIR"


@dataclass
class Daemon:
    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rackpool.cli", *self.argv],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
                start_new_session=True,
            )  # fmt: skip

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@dataclass
class RegionPlan:
    name: str
    port: int
    cidr: str
    state: Path
    admin_password: str
    ci_password: str
    agent_token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _write(path: Path, text: str, private: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    if private:
        os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def container_unavailable() -> str | None:
    """Why the container driver cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "not running as root (containers need namespaces, cgroups and bridges)"
    for tool in ("runc", "ip", "sshd", "ssh-keygen"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"'{tool}' is not installed (./dev install adds it)"
    return None


def _secrets_file(state: Path) -> dict[str, Any]:
    path = state / "secrets.json"
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    return {}


def plan_regions(state: Path, count: int) -> list[RegionPlan]:
    saved = _secrets_file(state)
    plans = []
    for i in range(1, count + 1):
        name = f"r{i}"
        s = saved.get(name) or {
            "admin_password": secrets.token_urlsafe(12),
            "ci_password": secrets.token_urlsafe(12),
            "agent_token": secrets.token_urlsafe(24),
        }
        saved[name] = s
        plans.append(
            RegionPlan(
                name=name, port=_free_port(), cidr=f"198.18.{16 * (i - 1)}.0/20",
                state=state / "regions" / name, **s,
            )
        )  # fmt: skip
    _write(state / "secrets.json", json.dumps(saved, indent=2), private=True)
    return plans


def region_config(plan: RegionPlan, hosts: int, driver: str) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "region": plan.name,
        "listen": {"host": "127.0.0.1", "port": plan.port},
        "state_dir": str(plan.state),
        "agent_token": plan.agent_token,
        "network": {"cidr": plan.cidr},
        "hosts": {"heartbeat_interval": 2.0, "heartbeat_timeout": 20.0},
    }
    if driver == "fake":
        cfg["fake_hosts"] = [
            {"name": f"{plan.name}-h{j}", "build_delay": 0.5} for j in range(1, hosts + 1)
        ]
    return cfg


def bootstrap_region(plan: RegionPlan, config: dict[str, Any]) -> None:
    from rackpool.cloud.config import RegionConfig
    from rackpool.cloud.region import Region

    region = Region.open(RegionConfig.model_validate(config))
    try:
        region.ensure_project("admin", "admin", plan.admin_password, "admin")
        region.ensure_project("ci", "ci", plan.ci_password, "member")
    finally:
        region.close()


def clouds(plans: list[RegionPlan]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in plans:
        for suffix, user, password in (
            ("", "ci", p.ci_password),
            ("-admin", "admin", p.admin_password),
        ):
            out[f"rackpool-{p.name}{suffix}"] = {
                "auth": {
                    "auth_url": f"{p.url}/identity", "username": user, "password": password,
                    "project_name": "admin" if suffix else "ci",
                    "user_domain_name": "Default", "project_domain_name": "Default",
                },
                "region_name": p.name, "identity_api_version": 3, "interface": "public",
            }  # fmt: skip
    return {"clouds": out}


def _wait_http(url: str, what: str, daemon: Daemon, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not daemon.alive():
            raise TemporaryError(f"{what} exited during start-up; see {daemon.log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise TemporaryError(f"{what} did not answer at {url} within {timeout:.0f}s; see {daemon.log}")


def _wait_file(path: Path, what: str, daemon: Daemon, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not daemon.alive():
            raise TemporaryError(f"{what} exited during start-up; see {daemon.log}")
        if path.exists():
            with contextlib.suppress(ValueError):
                data: dict[str, Any] = json.loads(path.read_text())
                return data
        time.sleep(0.1)
    raise TemporaryError(f"{what} did not start within {timeout:.0f}s; see {daemon.log}")


def ensure_keypair(plan: RegionPlan, state: Path) -> Path:
    """A 'default' keypair in every region's ci project; the private key in DIR/id_ed25519."""
    key = state / "id_ed25519"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rackpool-up", "-f", str(key)],
            check=True,
        )
    public = (state / "id_ed25519.pub").read_text().strip()
    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "ci", "domain": {"name": "Default"}, "password": plan.ci_password}}},
        "scope": {"project": {"name": "ci", "domain": {"name": "Default"}}}}}  # fmt: skip
    r = httpx.post(f"{plan.url}/identity/v3/auth/tokens", json=auth, timeout=10)
    r.raise_for_status()
    h = {"X-Auth-Token": r.headers["X-Subject-Token"]}
    if httpx.get(f"{plan.url}/compute/v2.1/os-keypairs/default", headers=h).status_code == 404:
        body = {"keypair": {"name": "default", "public_key": public}}
        httpx.post(f"{plan.url}/compute/v2.1/os-keypairs", json=body, headers=h).raise_for_status()
    return key


def agent_config(plan: RegionPlan, j: int, state: Path) -> dict[str, Any]:
    host = f"{plan.name}-h{j}"
    return {
        "controller": {"url": plan.url, "token": plan.agent_token},
        "host": {"name": host},
        "state_dir": str(state / "agents" / host),
        "driver": "container",
        "network": {"bridge": f"rpb-{host}"[:15], "switch": f"rps-{plan.name}"[:15]},
    }


def pool_config(
    plans: list[RegionPlan], state: Path, host_keys: bool, hosts: int
) -> dict[str, Any]:
    labels = [
        {"name": "default", "cloud-image": "host", "flavor-name": "m1.small",
         "key-name": "default", "username": "root"},
        {"name": "tiny", "cloud-image": "host", "flavor-name": "m1.tiny",
         "key-name": "default", "username": "root"},
    ]  # fmt: skip
    return {
        "pool-name": "rackpool-up",
        "state-dir": str(state),
        "store": str(state / "pool" / "pool.sqlite"),
        "api": {"listen": "127.0.0.1", "port": 0, "token": secrets.token_urlsafe(18)},
        "labels": [{"name": "default", "min-ready": 1}, {"name": "tiny", "min-ready": 0}],
        "providers": [
            {
                "name": p.name,
                "driver": "openstack",
                "cloud": f"rackpool-{p.name}",
                "region-name": p.name,
                "clouds-yaml": str(state / "clouds.yaml"),
                "host-key-checking": host_keys,
                "boot-timeout": 60,
                # a local controller: polling server status often is cheap and halves
                # the cold request latency (bench/pool.py --only container)
                "poll-interval": 0.2,
                "pools": [{"name": "main", "max-servers": 4 * hosts, "labels": labels}],
            }
            for p in plans
        ],  # fmt: skip
    }


def ops_config(state: Path) -> dict[str, Any]:
    return {
        "index": {"path": str(state / "ops" / "index")},
        "shipper": {"files": [str(state / "logs" / "*.jsonl")]},
        "api": {"listen": "127.0.0.1", "port": 0},
        "log": {"json": True, "path": str(state / "logs" / "ops.log")},
        "state_dir": str(state),
    }


class Up:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.state = Path(args.state_dir or os.environ.get(STATE_ENV) or "state").resolve()
        self.daemons: list[Daemon] = []
        self.logs = self.state / "logs"

    def _daemon(self, name: str, argv: list[str], jsonl: bool = True) -> Daemon:
        log = self.logs / (f"{name}.jsonl" if jsonl else f"{name}.log")
        d = Daemon(name, argv, log)
        d.start()
        self.daemons.append(d)
        return d

    def choose_driver(self) -> str:
        driver: str = self.args.driver
        if driver in ("auto", "container"):
            why = container_unavailable()
            if why is None:
                return "container"
            if driver == "container":
                raise ConfigError(f"--driver container is not possible here: {why}")
            print(f"rackpool up: using the fake driver: {why}", file=sys.stderr)
            return "fake"
        return driver

    def run(self) -> int:
        a = self.args
        if a.regions < 1 or a.hosts < 1:
            raise ConfigError("--regions and --hosts must be at least 1")
        self.state.mkdir(parents=True, exist_ok=True)
        other = running_up(self.state)
        if other is not None and other != os.getpid():
            raise ConfigError(f"rackpool up (pid {other}) already runs on {self.state}")
        _write(self.state / UP_PID_FILE, json.dumps({"pid": os.getpid()}))
        driver = self.choose_driver()
        plans = plan_regions(self.state, a.regions)
        for p in plans:
            cfg = region_config(p, a.hosts, driver)
            path = _write(p.state / "region.yaml", yaml.safe_dump(cfg), private=True)
            bootstrap_region(p, cfg)
            d = self._daemon(
                f"cloud-{p.name}",
                [
                    "cloud",
                    "serve",
                    "--config",
                    str(path),
                    "--log-file",
                    str(self.logs / f"cloud-{p.name}.jsonl"),
                ],
                jsonl=False,
            )
            _wait_http(p.url + "/", f"region {p.name}", d)
        clouds_yaml = _write(
            self.state / "clouds.yaml", yaml.safe_dump(clouds(plans)), private=True
        )
        key = None
        for p in plans:
            key = ensure_keypair(p, self.state)
        if driver == "container":
            for p in plans:
                for j in range(1, a.hosts + 1):
                    cfg = agent_config(p, j, self.state)
                    path = _write(
                        self.state / "agents" / f"{cfg['host']['name']}.yaml",
                        yaml.safe_dump(cfg),
                        True,
                    )
                    log = self.logs / f"agent-{cfg['host']['name']}.jsonl"
                    self._daemon(
                        f"agent-{cfg['host']['name']}",
                        ["agent", "--config", str(path), "--log-file", str(log)],
                        jsonl=False,
                    )
        pool_url = ops_url = None
        if not a.no_ops:
            path = _write(self.state / "ops.yaml", yaml.safe_dump(ops_config(self.state)), True)
            (self.state / "ops.json").unlink(missing_ok=True)
            d = self._daemon("ops", ["ops", "serve", "--config", str(path)], jsonl=False)
            ops_url = _wait_file(self.state / "ops.json", "ops daemon", d)["url"]
        if not a.no_pool:
            cfg = pool_config(plans, self.state, host_keys=driver == "container", hosts=a.hosts)
            path = _write(self.state / "pool.yaml", yaml.safe_dump(cfg), True)
            (self.state / "pool.json").unlink(missing_ok=True)
            d = self._daemon("pool", ["pool", "serve", "--config", str(path)])
            pool_url = _wait_file(self.state / "pool.json", "pool daemon", d)["url"]
        self._print(plans, clouds_yaml, driver, key, pool_url, ops_url)
        return self._supervise()

    def _print(self, plans, clouds_yaml, driver, key, pool_url, ops_url) -> None:  # type: ignore[no-untyped-def]
        st = self.state
        lines = [
            f"rackpool is up ({len(plans)} region(s), {self.args.hosts} {driver} host(s) each); state in {st}",
            *(f"  region {p.name}: {p.url}  (instances in {p.cidr})" for p in plans),
            f"  clouds.yaml: {clouds_yaml}",
            f"    export OS_CLIENT_CONFIG_FILE={clouds_yaml}",
            f"    openstack --os-cloud rackpool-{plans[0].name} server create --image host "
            f"--flavor m1.small --key-name default --wait node1",
        ]
        if key:
            lines.append(f"    ssh -i {key} root@<address>")
        if pool_url:
            lines += [f"  pool: {pool_url}",
                      f"    rackpool node request default --wait --state-dir {st}"]  # fmt: skip
        if ops_url:
            lines += [f"  log search: {ops_url}",
                      f"    rackpool logs search 'loglevel:ERROR' --state-dir {st}"]  # fmt: skip
        lines.append(f"  logs: {self.logs}")
        lines.append(
            "  Ctrl-C or SIGTERM stops every daemon; instances keep running and the next "
            f"up adopts them; rackpool down --state-dir {st} removes them"
        )
        print("\n".join(lines), flush=True)

    def _supervise(self) -> int:
        stopping = False

        def _stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        reported: set[str] = set()
        while not stopping:
            for d in self.daemons:
                if not d.alive() and d.name not in reported:
                    reported.add(d.name)
                    print(f"rackpool up: {d.name} exited; see {d.log}", file=sys.stderr, flush=True)
            time.sleep(0.2)
        self.shutdown()
        print("rackpool up: stopped", flush=True)
        return 0

    def shutdown(self) -> None:
        for d in reversed(self.daemons):
            d.stop()
        if running_up(self.state) == os.getpid():
            (self.state / UP_PID_FILE).unlink(missing_ok=True)


def _run(args: argparse.Namespace) -> int:
    up = Up(args)
    try:
        return up.run()
    except BaseException:
        up.shutdown()
        raise


def register(sub: Any) -> None:
    p = sub.add_parser("up", help="start the embedded default: regions, hosts, pool, log index")
    p.add_argument(
        "--state-dir", help=f"where state, configs and logs go (default ${STATE_ENV} or ./state)"
    )
    p.add_argument("--regions", type=int, default=1, help="number of regions (default 1)")
    p.add_argument("--hosts", type=int, default=2, help="hosts per region (default 2)")
    p.add_argument(
        "--driver", choices=("auto", "container", "fake"), default="auto",
        help="instance driver: container when root with runc/sshd, else fake (default auto)",
    )  # fmt: skip
    p.add_argument("--no-pool", action="store_true", help="do not start the node pool")
    p.add_argument("--no-ops", action="store_true", help="do not start the log index")
    p.set_defaults(handler=_run)
