"""Every daemon's config, made from the inventory through that daemon's own typed model.

Each config is built as the daemon's model (``RegionConfig``, ``AgentConfig``,
``PoolConfig``, ``OpsConfig``, ``WebConfig``, ``ShipConfig``) and dumped from it, so a wrong inventory
fails here, with its YAML path, before any host is touched. Only what the inventory
sets is written (``exclude_unset``): a config stays valid for the previous and the next
version, which a rolling upgrade and a rollback rely on. Dumps are sorted and stable,
so an unchanged inventory renders the same bytes (Ansible reports changed=0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from rackpool.agent.config import AgentConfig
from rackpool.cloud.config import RegionConfig
from rackpool.core.config import validation_problems
from rackpool.core.errors import ConfigError
from rackpool.deploy.bootstrap import BootstrapSpec
from rackpool.deploy.inventory import ComputeHost, Inventory, RegionSpec
from rackpool.deploy.secrets import Secrets
from rackpool.ops.config import OpsConfig, ShipConfig
from rackpool.ops.tokens import mint
from rackpool.pool.config import PoolConfig
from rackpool.web.config import WebConfig

M = TypeVar("M", bound=BaseModel)

# Where things live on a host (docs/deploy.md "On each host").
ROOT = "/opt/rackpool"
STATE = "/var/lib/rackpool"
LOGS = "/var/log/rackpool"
NODE_KEYPAIR = "rackpool-nodes"


def plain(value: Any) -> Any:
    """A model dump made of YAML scalars, with secrets revealed (the file is 0600)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def build(model: type[M], data: dict[str, Any], where: str) -> M:
    """``model`` from ``data``; a problem names the inventory entry it came from."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [f"{where}: {p}" for p in validation_problems(exc)]
        raise ConfigError(
            f"the inventory makes an invalid {model.__name__} for {where}", problems
        ) from None


def dump(config: BaseModel) -> dict[str, Any]:
    """The config as written: what was set, by its YAML names (pool's hyphens)."""
    return plain(config.model_dump(mode="python", exclude_unset=True, by_alias=True))


def to_yaml(config: BaseModel | dict[str, Any]) -> str:
    data = dump(config) if isinstance(config, BaseModel) else config
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False)


def region_config(inv: Inventory, i: int, s: Secrets) -> RegionConfig:
    r = inv.regions[i]
    c = r.controller
    data: dict[str, Any] = {
        "region": r.name,
        "listen": {"host": "0.0.0.0", "port": c.api_port},
        "public_url": c.url,
        "state_dir": f"{STATE}/controller",
        "agent_token": s.get(f"{r.name}/agent_token", 24),
        "network": {"cidr": r.network.cidr}
        | ({"gateway": r.network.gateway} if r.network.gateway else {}),
        "hosts": {
            "heartbeat_interval": c.heartbeat_interval,
            "heartbeat_timeout": c.heartbeat_timeout,
        },
        "default_flavors": r.default_flavors,
    }
    return build(RegionConfig, data, f"regions[{i}]")


def bootstrap_spec(inv: Inventory, i: int, s: Secrets, node_public_key: str) -> BootstrapSpec:
    """Projects, users, flavors, quotas and the nodes' keypair the controller role ensures."""
    r = inv.regions[i]
    projects: list[dict[str, Any]] = [
        {"name": p.name, "quota": p.quota.model_dump(exclude_none=True) if p.quota else None,
         "users": [{"name": u.name, "role": u.role,
                    "password": s.get(f"{r.name}/users/{u.name}")} for u in p.users]}
        for p in r.projects
    ]  # fmt: skip
    keypairs: list[dict[str, Any]] = []
    if inv.pool is not None:
        pool = inv.pool
        mine = next((p for p in projects if p["name"] == pool.project), None)
        if mine is None:
            mine = {"name": pool.project, "quota": None, "users": []}
            projects.append(mine)
        if not any(u["name"] == pool.user for u in mine["users"]):
            mine["users"].append(
                {"name": pool.user, "role": "member",
                 "password": s.get(f"{r.name}/users/{pool.user}")}
            )  # fmt: skip
        keypairs.append(
            {"project": pool.project, "user": pool.user, "name": NODE_KEYPAIR,
             "public_key": node_public_key}
        )  # fmt: skip
    data = {
        "admin_password": s.get(f"{r.name}/users/admin"),
        "projects": projects,
        "flavors": [f.model_dump(exclude_none=True) for f in r.flavors],
        "keypairs": keypairs,
    }
    return build(BootstrapSpec, data, f"regions[{i}]")


def agent_config(inv: Inventory, i: int, j: int, s: Secrets) -> AgentConfig:
    r = inv.regions[i]
    h: ComputeHost = r.hosts[j]
    host: dict[str, Any] = {"name": h.name, "availability_zone": h.availability_zone}
    for k in ("vcpus", "ram_mb", "disk_gb"):
        if getattr(h, k) is not None:
            host[k] = getattr(h, k)
    net: dict[str, Any] = {"bridge": h.bridge or r.network.bridge}
    if h.switch:
        net["switch"] = h.switch
    if h.uplink:
        net["uplink"] = h.uplink
    data = {
        "controller": {"url": r.controller.url, "token": s.get(f"{r.name}/agent_token", 24)},
        "host": host,
        "state_dir": f"{STATE}/agent",
        "driver": h.driver,
        "network": net,
    }
    return build(AgentConfig, data, f"regions[{i}].hosts[{j}]")


def clouds_yaml(inv: Inventory, s: Secrets) -> dict[str, Any]:
    """The pool's clouds.yaml: one entry per region, as its project's user."""
    assert inv.pool is not None
    p = inv.pool
    return {
        "clouds": {
            f"rackpool-{r.name}": {
                "auth": {
                    "auth_url": f"{r.controller.url}/identity",
                    "username": p.user,
                    "password": s.get(f"{r.name}/users/{p.user}"),
                    "project_name": p.project,
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                "region_name": r.name,
                "identity_api_version": 3,
                "interface": "public",
            }  # fmt: skip
            for r in inv.regions
        }
    }


def pool_config(inv: Inventory, s: Secrets) -> PoolConfig:
    assert inv.pool is not None
    p = inv.pool
    labels = [
        {"name": lab.name, "cloud-image": lab.image, "flavor-name": lab.flavor,
         "key-name": NODE_KEYPAIR, "username": lab.username}
        for lab in p.labels
    ]  # fmt: skip
    data = {
        "pool-name": "rackpool",
        "state-dir": f"{STATE}/pool",
        "api": {"listen": "0.0.0.0", "port": p.api_port, "token": s.get("pool/api_token")},
        "labels": [{"name": lab.name, "min-ready": lab.min_ready} for lab in p.labels],
        "providers": [
            {
                "name": r.name,
                "driver": "openstack",
                "cloud": f"rackpool-{r.name}",
                "region-name": r.name,
                "clouds-yaml": f"{STATE}/pool/clouds.yaml",
                "host-key-checking": p.host_key_checking,
                "boot-timeout": p.boot_timeout,
                "pools": [
                    {
                        "name": "main",
                        "max-servers": p.max_servers_per_host * len(r.hosts),
                        "labels": labels,
                    }
                ],
            }  # fmt: skip
            for r in inv.regions
        ],
    }
    return build(PoolConfig, data, "pool")


def pool_url(inv: Inventory) -> str:
    assert inv.pool is not None
    return f"http://{inv.pool.host.address}:{inv.pool.api_port}"


def ops_url(inv: Inventory) -> str:
    assert inv.ops is not None
    return f"http://{inv.ops.host.address}:{inv.ops.api_port}"


def ops_config(inv: Inventory, s: Secrets) -> OpsConfig:
    assert inv.ops is not None
    o = inv.ops
    data = {
        "index": {"path": f"{STATE}/ops/index", "max_age_days": o.max_age_days},
        # the daemons' JSON logs, and what the rackpool-* units wrote to the journal
        # (a crash before logging was set up, systemd's lines about them)
        "shipper": {"files": [f"{LOGS}/*.jsonl"], "journal": {}},
        "api": {
            "listen": "0.0.0.0",
            "port": o.api_port,
            "push_token": s.get("ops/push_token"),
            "ingest_secret": s.get("ops/ingest_secret", 32),
        },
        "log": {"json": True, "path": f"{LOGS}/ops.log"},
        "state_dir": f"{STATE}/ops",
    }
    return build(OpsConfig, data, "ops")


def shipper_config(inv: Inventory, host: str, s: Secrets) -> ShipConfig:
    """``rackpool ops ship`` on a host without the index: its log files to the ops API,
    with this host's own ingest token (it can ship no other host's lines)."""
    assert inv.ops is not None
    try:
        token = mint(s.get("ops/ingest_secret", 32), host)
    except ValueError as exc:
        raise ConfigError(f"the log shipper of host {host}: {exc}") from None
    data = {
        "ops": {"url": ops_url(inv), "token": token},
        "host": host,
        "shipper": {"files": [f"{LOGS}/*.jsonl"], "journal": {}},
        "state_dir": f"{STATE}/shipper",
        "log": {"json": True, "path": f"{LOGS}/shipper.jsonl"},
    }
    return build(ShipConfig, data, f"the log shipper of host {host}")


def web_config(inv: Inventory, s: Secrets) -> WebConfig:
    assert inv.web is not None
    w = inv.web
    data: dict[str, Any] = {
        "listen": {"host": "0.0.0.0", "port": w.api_port},
        "regions": [{"name": r.name, "url": r.controller.url} for r in inv.regions],
        "state_dir": f"{STATE}/web",
        "refresh": w.refresh,
        "log": {"json": True, "path": f"{LOGS}/web.jsonl"},
    }
    if inv.pool is not None:
        data["pool"] = {"url": pool_url(inv), "token": s.get("pool/api_token")}
    if inv.ops is not None:
        data["ops"] = {"url": ops_url(inv)}
    return build(WebConfig, data, "web")


@dataclass
class HostPlan:
    """What one Ansible host runs, and its rendered files."""

    name: str
    ssh: dict[str, Any]
    groups: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)


def _files(s: Secrets, **texts: str) -> dict[str, Any]:
    """Rendered files by variable name (``region_yaml``), and ``shown``: each file with
    its secrets masked, which the roles write beside it so ``--check --diff`` shows what
    would change without ever showing a secret."""
    out: dict[str, Any] = dict(texts)
    out["shown"] = {k.replace("_yaml", ".yaml"): s.redact(v) for k, v in texts.items()}
    return out


def _controller_vars(inv: Inventory, i: int, s: Secrets, public_key: str) -> dict[str, Any]:
    r: RegionSpec = inv.regions[i]
    return {
        "region": r.name,
        "api_port": r.controller.api_port,
        "url": r.controller.url,
        "hosts": [h.name for h in r.hosts],
        **_files(
            s,
            region_yaml=to_yaml(region_config(inv, i, s)),
            bootstrap_yaml=to_yaml(bootstrap_spec(inv, i, s, public_key)),
        ),
    }


def plan_hosts(inv: Inventory, s: Secrets, public_key: str) -> dict[str, HostPlan]:
    """Every Ansible host with its groups and vars; entries naming the same machine
    (address and SSH port) are one host, named after its first entry."""
    plans: dict[str, HostPlan] = {}
    by_key: dict[str, str] = {}

    def host(name: str, m: Any) -> HostPlan:
        port = m.port or inv.ssh.port
        key = f"{m.address}:{port}"
        name = by_key.setdefault(key, name)
        if name not in plans:
            ssh = {"ansible_host": m.address, "ansible_port": port,
                   "ansible_user": m.user or inv.ssh.user}  # fmt: skip
            if ssh["ansible_user"] != "root":
                ssh["ansible_become"] = True  # sudo without a password
            k = m.key or inv.ssh.key
            if k:
                ssh["ansible_ssh_private_key_file"] = str(Path(k).expanduser())
            plans[name] = HostPlan(name, ssh)
        return plans[name]

    def add(p: HostPlan, group: str, where: str, var: str, value: Any) -> None:
        if var in p.vars:
            raise ConfigError(f"{where}: host {p.name} already runs a {group}; one per host")
        p.groups.append(group)
        p.vars[var] = value

    for i, r in enumerate(inv.regions):
        ctl = host(r.controller_name, r.controller)
        add(ctl, "controllers", f"regions[{i}].controller", "rackpool_controller",
            _controller_vars(inv, i, s, public_key))  # fmt: skip
        for j, h in enumerate(r.hosts):
            agent = {
                "name": h.name, "region": r.name, "controller": ctl.name,
                "driver": h.driver, **_files(s, agent_yaml=to_yaml(agent_config(inv, i, j, s))),
            }  # fmt: skip
            add(host(h.name, h), "computes", f"regions[{i}].hosts[{j}]", "rackpool_agent", agent)
    if inv.pool is not None:
        pool = {"url": pool_url(inv), "api_port": inv.pool.api_port,
                **_files(s, pool_yaml=to_yaml(pool_config(inv, s)),
                         clouds_yaml=to_yaml(clouds_yaml(inv, s)))}  # fmt: skip
        add(host(inv.pool.name or "pool", inv.pool.host), "pools", "pool", "rackpool_pool", pool)
    if inv.ops is not None:
        ops = {"url": ops_url(inv), "api_port": inv.ops.api_port,
               **_files(s, ops_yaml=to_yaml(ops_config(inv, s)))}  # fmt: skip
        add(host(inv.ops.name or "ops", inv.ops.host), "ops", "ops", "rackpool_ops", ops)
    if inv.web is not None:
        web = {"api_port": inv.web.api_port, **_files(s, web_yaml=to_yaml(web_config(inv, s)))}
        add(host(inv.web.name or "web", inv.web.host), "webs", "web", "rackpool_web", web)
    if inv.ops is not None:  # every other host ships its daemons' logs to the index
        for p in plans.values():
            if "ops" not in p.groups:
                cfg = shipper_config(inv, p.name, s)
                files = _files(s, shipper_yaml=to_yaml(cfg))
                token = cfg.ops.token.get_secret_value()  # derived, so not in the store
                files["shown"]["shipper.yaml"] = files["shown"]["shipper.yaml"].replace(
                    token, "<secret>"
                )
                shipper = {"host": p.name, "url": ops_url(inv), **files}
                add(p, "shippers", p.name, "rackpool_shipper", shipper)
    return plans
