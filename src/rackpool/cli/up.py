"""``rackpool up``: the embedded default on one machine.

N regions (each its own controller on a loopback port, with an ``admin`` and a
``ci`` project and default flavors), M hosts per region (container agents when
root with runc/sshd, in-process fake hosts otherwise), a pool over all regions,
and the ops index shipping every daemon's logs. Writes ``DIR/clouds.yaml`` with
``rackpool-<region>`` (ci) and ``rackpool-<region>-admin`` entries.

``--ha``: the scale-out engines on one machine (see ``up_ha``): each region's database
on PostgreSQL with two controllers behind HAProxy (the region's URL is HAProxy's), its
hosts as agents (``fake`` or ``container`` driver) reaching the region through HAProxy,
and two pool launchers on a ZooKeeper store behind their own HAProxy (``pool.json``
names it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import BaseModel

from rackpool.agent.config import AgentConfig
from rackpool.cli import readiness, up_ha
from rackpool.cli.down import UP_PID_FILE, running_up
from rackpool.cli.supervise import Daemon, StopSignal, Supervisor
from rackpool.cloud.config import RegionConfig
from rackpool.core.errors import ConfigError
from rackpool.core.files import write_private
from rackpool.core.logs import setup_logging
from rackpool.deploy.render import dump
from rackpool.ops.config import OpsConfig
from rackpool.pool.config import PoolConfig
from rackpool.web.config import WebConfig

STATE_ENV = "RACKPOOL_STATE_DIR"
READER_USER = "web-reader"
log = logging.getLogger("rackpool.up")


@dataclass
class RegionPlan:
    name: str
    port: int
    cidr: str
    state: Path
    admin_password: str
    ci_password: str
    agent_token: str
    reader_password: str  # web-reader: the dashboard's read-only account (reader role)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


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
        s.setdefault("reader_password", secrets.token_urlsafe(12))  # state of an older up
        saved[name] = s
        plans.append(
            RegionPlan(
                name=name, port=_free_port(), cidr=f"198.18.{16 * (i - 1)}.0/20",
                state=state / "regions" / name, **s,
            )
        )  # fmt: skip
    write_private(state / "secrets.json", json.dumps(saved, indent=2))
    return plans


def typed(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` checked by the daemon's own config model (a mistake here fails ``up``
    before any daemon starts, naming the option), then written in the short forms the
    docs show (``store: FILE``): the model reads it back to the same config, which
    :func:`same_config` asserts. The deploy writes the model's dump (deploy/render.py)."""
    config = model.model_validate(data)
    same_config(config, data)
    return data


def same_config(config: BaseModel, data: dict[str, Any]) -> None:
    """``data`` and the dump of ``config`` are one config to the daemon."""
    again = type(config).model_validate(dump(config))
    if again != config or type(config).model_validate(data) != config:
        raise AssertionError(f"{type(config).__name__} does not round-trip")  # a bug in up


def region_config(
    plan: RegionPlan, hosts: int, driver: str, database: str | None = None, port: int = 0
) -> dict[str, Any]:
    """The region's config; with ``database`` (PostgreSQL, ``--ha``) one controller's, on
    ``port``, and no in-process hosts (the hosts are agents that outlive a controller)."""
    cfg: dict[str, Any] = {
        "region": plan.name,
        "listen": {"host": "127.0.0.1", "port": port or plan.port},
        "state_dir": str(plan.state),
        "agent_token": plan.agent_token,
        "network": {"cidr": plan.cidr},
        "hosts": {"heartbeat_interval": 2.0, "heartbeat_timeout": 20.0},
    }
    if database is not None:
        cfg["database"] = database
    elif driver == "fake":
        cfg["fake_hosts"] = [
            {"name": f"{plan.name}-h{j}", "build_delay": 0.5} for j in range(1, hosts + 1)
        ]
    return typed(RegionConfig, cfg)


def pool_max_servers(hosts: int) -> int:
    return 4 * hosts


def bootstrap_region(plan: RegionPlan, config: dict[str, Any], max_servers: int) -> None:
    """Admin and ci projects; ci (the pool's tenant) gets a quota that fits the pool's
    max-servers of the largest default flavor, other projects the region's default; a
    ``web-reader`` user with the reader role on admin (cloud-wide reads only) for the
    public dashboard, which must never hold an admin password."""
    from rackpool.cloud.region import Region

    cfg = RegionConfig.model_validate(config)
    region = Region.open(cfg)
    try:
        region.ensure_project("admin", "admin", plan.admin_password, "admin")
        region.ensure_project("admin", READER_USER, plan.reader_password, "reader")
        ci = region.ensure_project("ci", "ci", plan.ci_password, "member")
        q = cfg.default_quota
        region.compute.set_quota(
            ci,
            {"instances": max(q.instances, max_servers), "cores": max(q.cores, 4 * max_servers),
             "ram": max(q.ram, 4096 * max_servers)},
        )  # fmt: skip
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


def ensure_keypair(plan: RegionPlan, state: Path) -> Path:
    """A 'default' keypair in every region's ci project; the private key in DIR/id_ed25519."""
    key = state / "id_ed25519"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rackpool-up", "-f", str(key)],
            check=True,
        )
    public = (state / "id_ed25519.pub").read_text().strip()
    h = {"X-Auth-Token": readiness.token(plan.url, "ci", plan.ci_password, "ci")}
    if httpx.get(f"{plan.url}/compute/v2.1/os-keypairs/default", headers=h).status_code == 404:
        body = {"keypair": {"name": "default", "public_key": public}}
        httpx.post(f"{plan.url}/compute/v2.1/os-keypairs", json=body, headers=h).raise_for_status()
    return key


def agent_config(
    plan: RegionPlan, j: int, state: Path, driver: str = "container"
) -> dict[str, Any]:
    host = f"{plan.name}-h{j}"
    cfg: dict[str, Any] = {
        "controller": {"url": plan.url, "token": plan.agent_token},
        "host": {"name": host},
        "state_dir": str(state / "agents" / host),
        "driver": driver,
    }
    if driver == "container":
        cfg["network"] = {"bridge": f"rpb-{host}"[:15], "switch": f"rps-{plan.name}"[:15]}
    else:  # the size of an in-process fake host
        cfg["host"].update(vcpus=64, ram_mb=262144, disk_gb=4000)
    return typed(AgentConfig, cfg)


def pool_config(
    plans: list[RegionPlan], state: Path, host_keys: bool, hosts: int, port: int,
    store: dict[str, Any] | None = None, own_dir: Path | None = None, token: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The pool over every region; ``port`` is picked once per ``up`` so a restarted
    pool answers at the same URL. ``--ha``: one launcher's, on the shared ``store``
    (ZooKeeper) with its own ``own_dir`` (its pool.json) and the launchers' ``token``."""
    labels = [
        {"name": "default", "cloud-image": "host", "flavor-name": "m1.small",
         "key-name": "default", "username": "root"},
        {"name": "tiny", "cloud-image": "host", "flavor-name": "m1.tiny",
         "key-name": "default", "username": "root"},
    ]  # fmt: skip
    return typed(PoolConfig, {
        "pool-name": "rackpool-up",
        "state-dir": str(own_dir or state),
        "store": store or str(state / "pool" / "pool.sqlite"),
        "api": {"listen": "127.0.0.1", "port": port,
                "token": token or secrets.token_urlsafe(18)},  # fmt: skip
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
                "pools": [
                    {"name": "main", "max-servers": pool_max_servers(hosts), "labels": labels}
                ],
            }
            for p in plans
        ],  # fmt: skip
    })  # fmt: skip


def ops_config(state: Path, port: int) -> dict[str, Any]:
    return typed(OpsConfig, {
        "index": {"path": str(state / "ops" / "index")},
        "shipper": {"files": [str(state / "logs" / "*.jsonl")]},
        "api": {"listen": "127.0.0.1", "port": port},
        "log": {"json": True, "path": str(state / "logs" / "ops.log")},
        "state_dir": str(state),
    })  # fmt: skip


def web_config(plans: list[RegionPlan], state: Path, port: int) -> dict[str, Any]:
    """The dashboard: finds the pool and the index through their discovery files."""
    return typed(WebConfig, {
        "listen": {"host": "127.0.0.1", "port": port},
        "state_dir": str(state),
        "regions": [
            {"name": p.name, "url": p.url,
             "reader": {"username": READER_USER, "password": p.reader_password,
                        "project": "admin", "quota_project": "ci"}}
            for p in plans
        ],  # fmt: skip
        "log": {"json": True, "path": str(state / "logs" / "web.jsonl")},
    })  # fmt: skip


class Up:
    def __init__(self, args: argparse.Namespace, stop: StopSignal) -> None:
        self.args = args
        self.stop = stop
        self.state = Path(args.state_dir or os.environ.get(STATE_ENV) or "state").resolve()
        self.logs = self.state / "logs"
        self.sup = Supervisor(stop)
        self.engines: up_ha.Engines | None = None
        self.backends: dict[str, list[int]] = {}  # --ha: each proxy's backend ports

    def _daemon(
        self, name: str, argv: list[str], discovery: Path | None = None, jsonl: bool = False
    ) -> Daemon:
        """Start a supervised daemon; a restart first drops its dead predecessor's
        discovery file, so ``pool.json``/``ops.json`` never name a dead pid."""
        before = None if discovery is None else lambda: discovery.unlink(missing_ok=True)
        log = self.logs / (f"{name}.jsonl" if jsonl else f"{name}.log")
        return self.sup.start(name, argv, log, before)

    def _wait(self, check: Callable[[], list[str]], what: str, timeout: float = 60) -> None:
        readiness.wait_until(check, what, self.stop, self.sup.daemons, timeout)

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

    def claim_state(self) -> None:
        a = self.args
        if a.regions < 1 or a.hosts < 1:
            raise ConfigError("--regions and --hosts must be at least 1")
        self.state.mkdir(parents=True, exist_ok=True)
        other = running_up(self.state)
        if other is not None and other != os.getpid():
            raise ConfigError(f"rackpool up (pid {other}) already runs on {self.state}")
        write_private(self.state / UP_PID_FILE, json.dumps({"pid": os.getpid()}))
        self.logs.mkdir(parents=True, exist_ok=True)
        setup_logging("up", json=True, path=str(self.logs / "up.jsonl"))
        for noisy in ("httpx", "httpcore", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)

    def run(self) -> int:
        """Start everything, wait until it is usable, say so, then supervise until stopped."""
        self.claim_state()
        driver = self.choose_driver()
        if self.args.ha:
            if why := up_ha.unavailable(pool=not self.args.no_pool):
                raise ConfigError(f"--ha is not possible here: {why}")
            self.engines = up_ha.Engines(self.state, self.sup)
            self.engines.start_postgres()
            self.stop.check()
        plans = plan_regions(self.state, self.args.regions)
        since = {p.name: self.start_region(p, driver) for p in plans}
        clouds_yaml = write_private(self.state / "clouds.yaml", yaml.safe_dump(clouds(plans)))
        key = None
        for p in plans:
            key = ensure_keypair(p, self.state)
            self.stop.check()
        if driver == "container" or self.engines is not None:
            self.start_agents(plans, driver)
        ops = None if self.args.no_ops else self.start_ops()
        disabled = self.wait_hosts(plans, since)
        start_pool = self.start_pool if self.engines is None else self.start_pool_ha
        pool_url = None if self.args.no_pool else start_pool(plans, driver)
        if self.engines is not None:
            self.engines.write_summary(self.backends)
        ops_url = None if ops is None else self.wait_ops(ops)
        web_url = None if self.args.no_web else self.start_web(plans)
        self._print(plans, clouds_yaml, driver, key, pool_url, ops_url, disabled, web_url)
        log.info("rackpool is up", extra={"event": "up_ready"})
        self.sup.run()

    def start_region(self, p: RegionPlan, driver: str) -> float:
        """Start region ``p``; returns the time from which its hosts' reports count."""
        if self.engines is not None:
            return self.start_region_ha(p, driver, self.engines)
        cfg = region_config(p, self.args.hosts, driver)
        path = write_private(p.state / "region.yaml", yaml.safe_dump(cfg))
        bootstrap_region(p, cfg, pool_max_servers(self.args.hosts))
        self.stop.check()
        since = time.time()
        log_file = str(self.logs / f"cloud-{p.name}.jsonl")
        self._daemon(
            f"cloud-{p.name}", ["cloud", "serve", "--config", str(path), "--log-file", log_file]
        )
        self._wait(partial(readiness.http_missing, p.url + "/"), f"region {p.name}", 30)
        return since

    def start_region_ha(self, p: RegionPlan, driver: str, engines: up_ha.Engines) -> float:
        """Region ``p`` on its PostgreSQL database: two controllers, HAProxy on ``p.port``."""
        database = engines.database(p.name)
        ports = [_free_port() for _ in range(up_ha.CONTROLLERS)]
        cfgs = [region_config(p, self.args.hosts, driver, database, port) for port in ports]
        bootstrap_region(p, cfgs[0], pool_max_servers(self.args.hosts))
        self.stop.check()
        since = time.time()
        for i, cfg in enumerate(cfgs, 1):
            path = write_private(p.state / f"controller{i}.yaml", yaml.safe_dump(cfg))
            log_file = str(self.logs / f"cloud-{p.name}-c{i}.jsonl")
            self._daemon(
                f"cloud-{p.name}-c{i}",
                ["cloud", "serve", "--config", str(path), "--log-file", log_file],
            )  # fmt: skip
        for i, port in enumerate(ports, 1):
            url = f"http://127.0.0.1:{port}/"
            self._wait(partial(readiness.http_missing, url), f"region {p.name} controller {i}", 60)
        engines.start_proxy(p.name, ports, p.port, "/")
        self.backends[p.name] = ports
        self._wait(partial(readiness.http_missing, p.url + "/"), f"region {p.name}", 30)
        return since

    def start_agents(self, plans: list[RegionPlan], driver: str) -> None:
        for p in plans:
            for j in range(1, self.args.hosts + 1):
                cfg = agent_config(p, j, self.state, driver)
                name = cfg["host"]["name"]
                path = write_private(self.state / "agents" / f"{name}.yaml", yaml.safe_dump(cfg))
                log_file = str(self.logs / f"agent-{name}.jsonl")
                self._daemon(
                    f"agent-{name}", ["agent", "--config", str(path), "--log-file", log_file]
                )
                self.stop.check()

    def wait_hosts(self, plans: list[RegionPlan], since: dict[str, float]) -> list[str]:
        """Wait until every planned host can take servers; returns disabled ones."""
        disabled: list[str] = []
        for p in plans:
            admin = readiness.token(p.url, "admin", p.admin_password, "admin")
            names = [f"{p.name}-h{j}" for j in range(1, self.args.hosts + 1)]
            check = partial(readiness.hosts_missing, p.url, admin, names, since[p.name])
            self._wait(check, f"region {p.name}'s hosts")
            disabled += readiness.disabled_hosts(p.url, admin)
        return disabled

    def start_ops(self) -> Daemon:
        cfg = ops_config(self.state, _free_port())
        path = write_private(self.state / "ops.yaml", yaml.safe_dump(cfg))
        state_file = self.state / "ops.json"
        state_file.unlink(missing_ok=True)
        return self._daemon("ops", ["ops", "serve", "--config", str(path)], state_file)

    def wait_ops(self, d: Daemon) -> str:
        url = str(self._discovery(d, self.state / "ops.json", "the log index")["url"])
        self._wait(partial(readiness.ops_missing, url), "the log index")
        return url

    def start_pool(self, plans: list[RegionPlan], driver: str) -> str:
        cfg = pool_config(plans, self.state, driver == "container", self.args.hosts, _free_port())
        path = write_private(self.state / "pool.yaml", yaml.safe_dump(cfg))
        state_file = self.state / "pool.json"
        state_file.unlink(missing_ok=True)
        d = self._daemon("pool", ["pool", "serve", "--config", str(path)], state_file, jsonl=True)
        info = self._discovery(d, state_file, "the pool")
        self._wait(partial(readiness.pool_missing, info["url"], info["token"]), "the pool")
        return str(info["url"])

    def start_pool_ha(self, plans: list[RegionPlan], driver: str) -> str:
        """Two launchers on ZooKeeper, HAProxy in front; ``pool.json`` names HAProxy."""
        assert self.engines is not None
        self.engines.start_zookeeper()
        token = secrets.token_urlsafe(18)
        discovery = self.state / "pool.json"
        discovery.unlink(missing_ok=True)
        started: list[tuple[Daemon, Path]] = []
        ports = [_free_port() for _ in range(up_ha.LAUNCHERS)]
        for i, port in enumerate(ports, 1):
            own = self.state / "pool" / f"launcher{i}"
            cfg = pool_config(
                plans, self.state, driver == "container", self.args.hosts, port,
                self.engines.pool_store(), own, token,
            )  # fmt: skip
            path = write_private(self.state / f"pool-launcher{i}.yaml", yaml.safe_dump(cfg))
            state_file = own / "pool.json"
            state_file.unlink(missing_ok=True)
            argv = ["pool", "serve", "--config", str(path)]
            started.append((self._daemon(f"pool-{i}", argv, state_file, jsonl=True), state_file))
        for i, (d, state_file) in enumerate(started, 1):
            self._discovery(d, state_file, f"pool launcher {i}")
        lb = self.engines.start_proxy("pool", ports, _free_port(), "/ready")
        self.backends["pool"] = ports
        write_private(discovery, json.dumps({"url": lb.url, "token": token, "pid": os.getpid()}))
        self._wait(partial(readiness.pool_missing, lb.url, token), "the pool")
        return lb.url

    def start_web(self, plans: list[RegionPlan]) -> str:
        cfg = web_config(plans, self.state, _free_port())
        path = write_private(self.state / "web.yaml", yaml.safe_dump(cfg))
        state_file = self.state / "web.json"
        state_file.unlink(missing_ok=True)
        d = self._daemon("web", ["web", "serve", "--config", str(path)], state_file)
        url = str(self._discovery(d, state_file, "the dashboard")["url"])
        self._wait(partial(readiness.http_missing, url + "/health"), "the dashboard")
        return url

    def _discovery(self, d: Daemon, path: Path, what: str) -> dict[str, Any]:
        def missing() -> list[str]:
            return [] if readiness.discovery(path, d.pid) else [f"{path.name} not written yet"]

        self._wait(missing, what)
        info = readiness.discovery(path, d.pid)
        assert info is not None
        return info

    def _print(
        self, plans: list[RegionPlan], clouds_yaml: Path, driver: str, key: Path | None,
        pool_url: str | None, ops_url: str | None, disabled: list[str], web_url: str | None = None,
    ) -> None:  # fmt: skip
        st = self.state
        lines = [
            f"rackpool is up ({len(plans)} region(s), {self.args.hosts} {driver} host(s) each); state in {st}",
            *(f"  region {p.name}: {p.url}  (instances in {p.cidr})" for p in plans),
            *self._ha_lines(plans),
            *(f"  host {h} is disabled: it takes no new servers" for h in disabled),
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
        if web_url:
            lines.append(f"  dashboard: {web_url}/")
        lines.append(f"  logs: {self.logs}")
        lines.append(
            "  Ctrl-C or SIGTERM stops every daemon; instances keep running and the next "
            f"up adopts them; rackpool down --state-dir {st} removes them"
        )
        print("\n".join(lines), flush=True)

    def _ha_lines(self, plans: list[RegionPlan]) -> list[str]:
        e = self.engines
        if e is None or e.postgres is None:
            return []
        lines = [f"  PostgreSQL: 127.0.0.1:{e.postgres.port} (one database per region, "
                 f"region_<name>; password in {self.state / 'secrets.json'})"]  # fmt: skip
        lines += [
            f"    {p.name}: HAProxy {p.url} -> controllers on ports "
            + ", ".join(map(str, self.backends.get(p.name, [])))
            for p in plans
        ]
        if e.zookeeper is not None:
            lines.append(f"  ZooKeeper: {e.zookeeper.hosts} (pool store under {up_ha.ZK_CHROOT})")
            lines.append(
                f"    pool: HAProxy {e.proxies['pool'].url} -> launchers on ports "
                + ", ".join(map(str, self.backends.get("pool", [])))
            )
        lines.append(f"    ports of all of these: {self.state / 'ha.json'}")
        return lines

    def shutdown(self) -> None:
        self.sup.stop_all()
        if self.engines is not None:
            (self.state / "pool.json").unlink(missing_ok=True)  # it names up's HAProxy
        if running_up(self.state) == os.getpid():
            (self.state / UP_PID_FILE).unlink(missing_ok=True)


def _run(args: argparse.Namespace) -> int:
    stop = StopSignal()
    stop.install()  # first: a signal at any later moment still reaches shutdown()
    up = Up(args, stop)
    try:
        return up.run()
    except BaseException:
        if stop.signum is not None:
            print(f"rackpool up: {signal.Signals(stop.signum).name}: stopping", flush=True)
        up.shutdown()
        if not stop.requested:
            raise
    print("rackpool up: stopped", flush=True)
    return 0


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
    p.add_argument("--no-web", action="store_true", help="do not start the web dashboard")
    p.add_argument(
        "--ha", action="store_true",
        help="scale-out engines: PostgreSQL with two controllers per region behind HAProxy, "
        "two pool launchers on ZooKeeper behind HAProxy",
    )  # fmt: skip
    p.set_defaults(handler=_run)
