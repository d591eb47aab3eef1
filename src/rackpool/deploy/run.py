"""``rackpool deploy``: inventory → typed configs → Ansible's files → ``ansible-playbook``.

Everything that can be wrong with the inventory fails here, before any host is
touched: the inventory model, then each daemon's own config model, then the wheel.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rackpool.core.config import parse_model, read_yaml
from rackpool.core.errors import ConfigError, RackpoolError
from rackpool.core.files import write_private
from rackpool.deploy import ansible_run, render, wheelhouse
from rackpool.deploy.inventory import Inventory
from rackpool.deploy.secrets import Secrets, all_secrets, node_key

STATE_ENV = "RACKPOOL_DEPLOY_STATE"


class DeployFailed(RackpoolError):
    """The playbook failed on some host (exit 1)."""

    code = 500


@dataclass
class DeployOptions:
    inventory: str
    state_dir: str | None = None
    check: bool = False
    upgrade: bool = False
    version: str | None = None
    batch: int = 1
    drain: bool = False
    rollback: bool = False
    json: bool = False
    verbose: int = 0
    limit: str | None = None


def state_dir(opts: DeployOptions) -> Path:
    """``--state-dir``, ``$RACKPOOL_DEPLOY_STATE`` or ``<inventory>.state`` beside it."""
    chosen = opts.state_dir or os.environ.get(STATE_ENV)
    if chosen:
        return Path(chosen).expanduser().resolve()
    inv = Path(opts.inventory).resolve()
    return inv.with_name(inv.stem + ".state")


def load(opts: DeployOptions) -> Inventory:
    data = read_yaml(opts.inventory)
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "kind"}
        if opts.version:
            data = {**data, "version": opts.version}
        if data.get("version") == wheelhouse.CHECKOUT and not data.get("wheel"):
            data = {**data, "version": wheelhouse.checkout_version()}
    return parse_model(data, Inventory, opts.inventory)


def check_options(opts: DeployOptions) -> None:
    if opts.batch < 1:
        raise ConfigError("--batch must be at least 1")
    if opts.rollback and opts.upgrade:
        raise ConfigError("--rollback and --upgrade exclude each other")
    if (opts.drain or opts.batch != 1) and not opts.upgrade:
        raise ConfigError("--drain and --batch apply to --upgrade only")


class Versions:
    """``<state>/versions.yaml``: the version last deployed and the one before it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        data = yaml.safe_load(path.read_text()) if path.exists() else None
        data = data if isinstance(data, dict) else {}
        self.deployed: str | None = data.get("deployed")
        self.previous: str | None = data.get("previous")

    def starting(self, version: str) -> None:
        """A deploy of ``version`` begins: what ran so far becomes the rollback target."""
        if self.deployed and self.deployed != version:
            self.previous = self.deployed
            self.save()

    def done(self, version: str) -> None:
        self.deployed = version
        self.save()

    def save(self) -> None:
        data = {"deployed": self.deployed, "previous": self.previous}
        write_private(self.path, yaml.safe_dump(data))


@dataclass
class Prepared:
    inventory: Inventory
    state: Path
    plans: dict[str, render.HostPlan]
    ansible_dir: Path
    extra: dict[str, Any]


def prepare(opts: DeployOptions, build_wheels: bool = True) -> Prepared:
    """Validate and render everything, write Ansible's files; touches no host."""
    check_options(opts)
    inv = load(opts)
    state = state_dir(opts)
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    store = Secrets(state / "secrets.yaml")
    all_secrets(inv, store)
    _, public = node_key(state)
    plans = render.plan_hosts(inv, store, public)
    store.save()
    extra: dict[str, Any] = {
        "rackpool_version": inv.version,
        "rackpool_python": inv.python,
        "rackpool_apt_update": inv.apt_update,
        "rackpool_batch": opts.batch,
        "rackpool_drain": opts.drain,
        "rackpool_check": opts.check,
        "rackpool_health_timeout": inv.health.timeout,
        "rackpool_agent_timeout": inv.health.timeout,
        "rackpool_canary": inv.health.canary,
        "rackpool_reach": inv.health.reach,
        "rackpool_drain_timeout": inv.health.drain_timeout,
        "rackpool_keep_versions": inv.keep_versions,
        "rackpool_root": render.ROOT,
        "rackpool_state": render.STATE,
        "rackpool_logs": render.LOGS,
    }
    versions = Versions(state / "versions.yaml")
    # never pruned from the hosts: what ran last and the rollback target
    extra["rackpool_protect_versions"] = [v for v in (versions.deployed, versions.previous) if v]
    if opts.rollback:
        target = opts.version or versions.previous
        if not target:
            raise ConfigError(
                f"--rollback: {state} records no earlier version to return to; "
                "give --version V (a version still installed on the hosts)"
            )
        extra["rackpool_rollback_version"] = target
    elif build_wheels:
        w = wheelhouse.prepare(inv.wheel, inv.version, state / "wheels")
        extra |= {
            "rackpool_wheel": str(w.wheel),
            "rackpool_wheelhouse_tar": str(w.wheelhouse_tar),
            "rackpool_wheelhouse_hash": w.wheelhouse_hash,
        }
    ansible_dir = ansible_run.write_files(inv, plans, extra, state)
    return Prepared(inv, state, plans, ansible_dir, extra)


def playbook(opts: DeployOptions) -> str:
    return "rollback.yml" if opts.rollback else "upgrade.yml" if opts.upgrade else "site.yml"


def deploy(opts: DeployOptions) -> int:
    p = prepare(opts)
    book = playbook(opts)
    versions = Versions(p.state / "versions.yaml")
    target = p.extra.get("rackpool_rollback_version", p.inventory.version)
    print(
        f"rackpool deploy: {book} on {len(p.plans)} host(s), version {target}; state in {p.state}",
        flush=True,
    )
    if not opts.check and not opts.rollback:
        versions.starting(target)
    result = ansible_run.run(
        p.ansible_dir, book, check=opts.check, limit=opts.limit, verbose=opts.verbose
    )
    print(result.summary(), flush=True)
    if opts.json:
        print(result.as_json(book), flush=True)
    if result.rc == 0 and not opts.check and not opts.limit:
        versions.done(target)
    if result.rc != 0:
        where = (
            "; ".join(f"{h}: {m}" for h, m in result.fatal) or f"ansible-playbook exit {result.rc}"
        )
        if result.total("unreachable"):
            bad = [h for h, r in result.hosts.items() if r.get("unreachable")]
            where = f"unreachable: {', '.join(bad)}; " + where
        print(f"rackpool deploy: failed: {where}", file=sys.stderr, flush=True)
        return 1
    return 0
