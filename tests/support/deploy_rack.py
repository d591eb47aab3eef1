"""A rack deployed by ``rackpool deploy`` onto test hosts, for the e2e tests and the bench.

    with deploy_rack(tmp_path) as rack:       # 4 hosts: ctl, c1, c2 (container driver), svc
        rack.deploy()                          # the CLI, as an operator runs it
        node = rack.request_node()             # through the deployed pool's REST API

Hosts come from tests/support/testhosts.py; compute hosts and the pool host are cabled to
the rack's instance network (instances of both computes on one segment, the pool host
and this machine reach them). Wheels: version A is built from this checkout with
``pip wheel`` (as ``rackpool deploy`` would); B and C are the same wheel re-versioned
(only the version differs: METADATA, dist-info, ``rackpool.__version__``, RECORD), so an
upgrade moves real hosts between real, different versions without three slow builds.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from rackpool.core.clock import wait_for
from tests.support.testhosts import HostSet, test_hosts

REPO = Path(__file__).resolve().parents[2]
HOSTS = ("ctl", "c1", "c2", "svc")
LABEL = "default"


def checkout_version() -> str:
    for line in (REPO / "pyproject.toml").read_text().splitlines():
        if line.startswith("version"):
            return line.split("=", 1)[1].strip().strip('"')
    raise RuntimeError("no version in pyproject.toml")


def build_wheel(out: Path) -> Path:
    """The checkout's wheel, built from a copy (nothing lands in the checkout)."""
    tree = out / "source"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(REPO / "src", tree / "src", ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, tree / name)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(tree)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    shutil.rmtree(tree, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pip wheel failed: {proc.stderr[-800:]}")
    return next(out.glob(f"rackpool-{checkout_version()}-*.whl"))


def reversion_wheel(wheel: Path, version: str, extra: dict[str, bytes] | None = None) -> Path:
    """``wheel`` as version ``version``: the same code, a different version everywhere
    (plus the ``extra`` files, e.g. a database migration only this version has)."""
    old = wheel.name.split("-")[1]
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            files[name.replace(f"rackpool-{old}.dist-info/", f"rackpool-{version}.dist-info/")] = (
                z.read(name)
            )
    files.update(extra or {})
    info = f"rackpool-{version}.dist-info"
    meta = files[f"{info}/METADATA"].decode()
    files[f"{info}/METADATA"] = meta.replace(
        f"\nVersion: {old}\n", f"\nVersion: {version}\n"
    ).encode()
    init = files["rackpool/__init__.py"].decode()
    files["rackpool/__init__.py"] = init.replace(f'"{old}"', f'"{version}"').encode()
    record = []
    for name, data in files.items():
        if name == f"{info}/RECORD":
            continue
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out = wheel.with_name(wheel.name.replace(f"rackpool-{old}-", f"rackpool-{version}-"))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out


@dataclass
class DeployRun:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def summary(self) -> dict[str, Any]:
        """The ``--json`` line: totals, per-host stats, errors."""
        for line in reversed(self.stdout.splitlines()):
            if line.startswith("{"):
                return dict(json.loads(line))
        raise AssertionError(f"no JSON summary in: {self.stdout[-1500:]} {self.stderr[-1500:]}")

    def changed_hosts(self) -> set[str]:
        return {h for h, r in self.summary["hosts"].items() if r.get("changed")}


@dataclass
class Rack:
    hosts: HostSet
    workdir: Path
    wheels: Path
    versions: tuple[str, str, str]
    state: Path = field(init=False)
    inventory_path: Path = field(init=False)
    runs: list[DeployRun] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = self.workdir / "deploy-state"
        self.inventory_path = self.workdir / "inventory.yaml"

    def address(self, name: str) -> str:
        return self.hosts.hosts[name].address

    def inventory(self, version: str | None = None, timeout: float = 90) -> dict[str, Any]:
        h = self.hosts

        def compute(name: str) -> dict[str, Any]:
            return {"name": f"r1-{name}", "address": self.address(name), "driver": "container",
                    "uplink": "eth1", "vcpus": 8, "ram_mb": 8192, "disk_gb": 40}  # fmt: skip

        return {
            "version": version or self.versions[0],
            "wheel": str(self.wheels),
            "ssh": {
                "user": "root",
                "key": str(h.key_path),
                "known_hosts": str(h.known_hosts),
                "host_key_checking": True,
            },  # fmt: skip
            "health": {"timeout": timeout},
            "regions": [
                {
                    "name": "r1",
                    "controller": {
                        "name": "r1-ctl",
                        "address": self.address("ctl"),
                        "heartbeat_interval": 1.0,
                        "heartbeat_timeout": 15.0,
                    },
                    "network": {"cidr": h.instance_cidr, "bridge": "rpbr0"},
                    "hosts": [compute("c1"), compute("c2")],
                    "projects": [
                        {
                            "name": "ci",
                            "users": [{"name": "ci"}],
                            "quota": {"instances": 40, "cores": 80, "ram": 163840},
                        }
                    ],
                }
            ],  # fmt: skip
            "pool": {
                "host": {"address": self.address("svc")},
                "name": "pool",
                "labels": [{"name": LABEL, "image": "host", "flavor": "m1.tiny", "min_ready": 0}],
                "boot_timeout": 60,
            },  # fmt: skip
            "ops": {"host": {"address": self.address("svc")}, "name": "ops"},
        }

    def write_inventory(self, data: dict[str, Any]) -> None:
        self.inventory_path.write_text(yaml.safe_dump(data, sort_keys=False))

    def deploy(self, *args: str, timeout: float = 900) -> DeployRun:
        """``rackpool deploy INVENTORY --json --state-dir STATE ARGS`` as a process."""
        argv = ["deploy", str(self.inventory_path), "--json", "--state-dir", str(self.state),
                *args]  # fmt: skip
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "rackpool.cli", *argv], capture_output=True, text=True,
            timeout=timeout, check=False, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        run = DeployRun(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)
        self.runs.append(run)
        (self.workdir / f"deploy-{len(self.runs)}.log").write_text(
            f"$ rackpool {' '.join(argv)}\nrc={run.rc} {run.seconds:.1f}s\n"
            f"{run.stdout}\n--- stderr\n{run.stderr}"
        )
        return run

    # -- the deployed services ---------------------------------------------------------
    def secret(self, name: str) -> str:
        return str(yaml.safe_load((self.state / "secrets.yaml").read_text())[name])

    @property
    def node_key(self) -> Path:
        return self.state / "keys" / "nodes_ed25519"

    @property
    def pool_url(self) -> str:
        return f"http://{self.address('svc')}:8005"

    def pool(self) -> httpx.Client:
        token = self.secret("pool/api_token")
        return httpx.Client(base_url=self.pool_url, timeout=30, trust_env=False,
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    @property
    def region_url(self) -> str:
        return f"http://{self.address('ctl')}:8774"

    def region_admin(self) -> httpx.Client:
        http = httpx.Client(base_url=self.region_url, timeout=30, trust_env=False)
        auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"},
            "password": self.secret("r1/users/admin")}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}  # fmt: skip
        r = http.post("/identity/v3/auth/tokens", json=auth)
        r.raise_for_status()
        http.headers["X-Auth-Token"] = r.headers["X-Subject-Token"]
        return http

    def request_node(self, pool: httpx.Client, timeout: float = 120) -> dict[str, Any]:
        """One node of LABEL, fulfilled: its connection facts (raises on failure)."""
        r = pool.post("/api/requests", json={"labels": [LABEL], "requestor": "e2e"})
        r.raise_for_status()
        rid = r.json()["id"]
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"request {rid} not fulfilled in {timeout}s")
            got = pool.get(f"/api/requests/{rid}", params={"wait": min(left, 30)},
                           timeout=min(left, 30) + 10)  # fmt: skip
            got.raise_for_status()
            req = got.json()
            if req["state"] == "fulfilled":
                return dict(req["nodes"][0])
            if req["state"] == "failed":
                raise RuntimeError(f"request {rid} failed: {req}")

    def node_ssh(self, node: dict[str, Any], cmd: str, timeout: float = 30) -> str:
        """Run ``cmd`` on a node, trusting exactly the host keys the pool reported."""
        known = self.workdir / f"known_hosts-{node['id']}"
        known.write_text("".join(f"{node['interface_ip']} {k}\n" for k in node["host_keys"]))
        proc = subprocess.run(
            ["ssh", "-i", str(self.node_key), "-o", f"UserKnownHostsFile={known}",
             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
             "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "-p", str(node["port"]),
             f"{node['username']}@{node['interface_ip']}", cmd],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"ssh to node {node['id']}: {proc.stderr.strip()[-300:]}")
        return proc.stdout

    def release(self, pool: httpx.Client, node_id: str) -> None:
        pool.post(f"/api/nodes/{node_id}/release").raise_for_status()

    def running_version(self, name: str) -> str:
        out = self.hosts.hosts[name].ssh("readlink /opt/rackpool/current", check=True).stdout
        return Path(out.strip()).name

    def instances_on(self, name: str) -> set[str]:
        """Instance ids runc runs on compute host ``name`` (what really runs there)."""
        out = (
            self.hosts.hosts[name]
            .ssh("runc --root /var/lib/rackpool/agent/runc list -q 2>/dev/null || true", check=True)
            .stdout
        )
        return {x for x in out.split() if x}

    def wait_pool_serving(self, timeout: float = 60) -> None:
        def up() -> bool:
            try:
                return httpx.get(self.pool_url + "/ready", timeout=2).status_code < 500
            except httpx.HTTPError:
                return False

        wait_for(up, timeout, "the pool API")


@dataclass
class Churn:
    """A client requesting, using and releasing nodes until stopped (bounded)."""

    rack: Rack
    max_cycles: int = 60
    max_seconds: float = 600
    done: int = 0
    failed: list[str] = field(default_factory=list)
    api_retries: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        t0 = time.monotonic()
        with self.rack.pool() as pool:
            while (not self.stop.is_set() and self.done < self.max_cycles
                   and time.monotonic() - t0 < self.max_seconds):  # fmt: skip
                try:
                    node = self._retry(lambda: self.rack.request_node(pool))
                    self.rack.node_ssh(node, "true")
                    self._retry(lambda n=node: self.rack.release(pool, n["id"]))
                    self.done += 1
                except Exception as exc:  # noqa: BLE001 (every failure is counted)
                    self.failed.append(f"{type(exc).__name__}: {exc}")

    def _retry(self, call: Any) -> Any:
        """An API call; a refused connection while the pool restarts is retried (60 s)."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return call()
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                code = getattr(getattr(exc, "response", None), "status_code", 0)
                if time.monotonic() > deadline or 400 <= code < 500:
                    raise
                self.api_retries += 1
                time.sleep(0.5)


@contextlib.contextmanager
def deploy_rack(workdir: Path, wheels: Path | None = None) -> Iterator[Rack]:
    """Four booted, cabled test hosts and the wheels A, B, C; nothing deployed yet."""
    workdir.mkdir(parents=True, exist_ok=True)
    a = checkout_version()
    versions = (a, f"{a}.post1", f"{a}.post2")
    if wheels is None:
        wheels = workdir / "wheels"
        wheels.mkdir(exist_ok=True)
        base = build_wheel(wheels)
        for v in versions[1:]:
            reversion_wheel(base, v)
    with test_hosts(workdir / "hosts", HOSTS) as hs:
        hs.instance_network(["c1", "c2", "svc"])
        yield Rack(hs, workdir, wheels, versions)
