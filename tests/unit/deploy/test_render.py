"""Every daemon config comes out of its own typed model; a wrong inventory fails with its
YAML path before Ansible runs, and an unchanged inventory renders the same bytes."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rackpool.agent.config import AgentConfig
from rackpool.cloud.config import RegionConfig
from rackpool.core.config import parse_model
from rackpool.core.errors import ConfigError
from rackpool.deploy import render
from rackpool.deploy.bootstrap import BootstrapSpec
from rackpool.deploy.inventory import Inventory
from rackpool.deploy.run import DeployOptions, prepare
from rackpool.deploy.secrets import Secrets
from rackpool.ops.config import OpsConfig, ShipConfig
from rackpool.ops.tokens import token_host
from rackpool.pool.config import PoolConfig
from rackpool.web.config import WebConfig

EXAMPLE = Path(__file__).resolve().parents[3] / "src/rackpool/deploy/examples/inventory.yaml"


def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return data


def plans(data: dict[str, Any], tmp: Path) -> dict[str, render.HostPlan]:
    inv = parse_model(data, Inventory, "inventory.yaml")
    return render.plan_hosts(inv, Secrets(tmp / "secrets.yaml"), "ssh-ed25519 AAAA test")


def test_each_config_validates_as_its_daemons_model(tmp_path: Path) -> None:
    p = plans(example(), tmp_path)
    assert sorted(p) == ["pool", "r1-c1", "r1-c2", "r1-controller"]
    assert sorted(p["pool"].groups) == ["ops", "pools", "webs"]  # one machine, three services
    ctl = p["r1-controller"].vars["rackpool_controller"]
    region = RegionConfig.model_validate(yaml.safe_load(ctl["region_yaml"]))
    assert region.public_url == "http://198.19.100.10:8774"
    assert region.network.gateway == "198.19.128.1"
    spec = BootstrapSpec.model_validate(yaml.safe_load(ctl["bootstrap_yaml"]))
    assert [u.name for u in spec.projects[0].users] == ["ci"]
    assert [k.name for k in spec.keypairs] == [render.NODE_KEYPAIR]
    agent = AgentConfig.model_validate(
        yaml.safe_load(p["r1-c2"].vars["rackpool_agent"]["agent_yaml"])
    )
    assert agent.controller.url == region.public_url
    assert agent.controller.token.get_secret_value() == region.agent_token
    assert agent.host.vcpus == 8
    svc = p["pool"].vars
    pool = PoolConfig.model_validate(yaml.safe_load(svc["rackpool_pool"]["pool_yaml"]))
    assert pool.providers[0].pools[0].max_servers == 8  # 4 per compute host
    clouds = yaml.safe_load(svc["rackpool_pool"]["clouds_yaml"])["clouds"]
    assert clouds["rackpool-r1"]["auth"]["password"] == spec.projects[0].users[0].password
    OpsConfig.model_validate(yaml.safe_load(svc["rackpool_ops"]["ops_yaml"]))
    web = WebConfig.model_validate(yaml.safe_load(svc["rackpool_web"]["web_yaml"]))
    assert web.pool is not None and web.pool.url == "http://198.19.100.13:8005"


def test_every_host_but_the_index_s_ships_its_logs_there(tmp_path: Path) -> None:
    p = plans(example(), tmp_path)
    shippers = sorted(n for n, h in p.items() if "shippers" in h.groups)
    assert shippers == ["r1-c1", "r1-c2", "r1-controller"]  # pool, ops, web: one host, local
    assert "rackpool_shipper" not in p["pool"].vars
    ops = OpsConfig.model_validate(yaml.safe_load(p["pool"].vars["rackpool_ops"]["ops_yaml"]))
    for name in shippers:
        v = p[name].vars["rackpool_shipper"]
        cfg = ShipConfig.model_validate(yaml.safe_load(v["shipper_yaml"]))
        assert cfg.host == name and cfg.ops.url == v["url"] == "http://198.19.100.13:8090"
        # each host's own ingest token, bound to its name (not the global push token)
        assert ops.api.ingest_secret is not None
        secret = ops.api.ingest_secret.get_secret_value()
        assert token_host(secret, cfg.ops.token.get_secret_value()) == name
        assert cfg.ops.token.get_secret_value() not in v["shown"]["shipper.yaml"]
        assert cfg.shipper.files == [f"{render.LOGS}/*.jsonl"]
        assert cfg.shipper.journal is not None and cfg.shipper.journal.units == ["rackpool-*"]
        assert cfg.log.path == f"{render.LOGS}/shipper.jsonl"  # its own lines are shipped too
        assert ops.api.push_token not in v["shown"]["shipper.yaml"]
        assert "token: <secret>" in v["shown"]["shipper.yaml"]
    # pool and ops on separate hosts: the pool host ships too; without ops, nobody does
    data = example()
    data["pool"]["host"]["address"] = "198.19.100.14"
    assert "rackpool_shipper" in plans(data, tmp_path)["pool"].vars
    del data["ops"], data["web"]
    assert not any("shippers" in h.groups for h in plans(data, tmp_path).values())


def test_rendering_is_stable_and_shown_files_hold_no_secret(tmp_path: Path) -> None:
    first = plans(example(), tmp_path)
    Secrets(tmp_path / "secrets.yaml")  # nothing saved: a fresh store generates anew
    store = Secrets(tmp_path / "s.yaml")
    inv = parse_model(example(), Inventory, "x")
    a = render.plan_hosts(inv, store, "k")
    b = render.plan_hosts(inv, store, "k")
    assert yaml.safe_dump(a["pool"].vars) == yaml.safe_dump(b["pool"].vars)
    ctl = first["r1-controller"].vars["rackpool_controller"]
    secret = RegionConfig.model_validate(yaml.safe_load(ctl["region_yaml"])).agent_token
    assert secret in ctl["region_yaml"]
    assert secret not in ctl["shown"]["region.yaml"]
    assert "agent_token: <secret>" in ctl["shown"]["region.yaml"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # valid for the inventory model, refused by the region's own model
        (lambda d: d["regions"][0]["network"].update(cidr="198.19.128.0/33"),
         "regions[0]: network.cidr: Value error, not an IPv4 network"),
        (lambda d: d["regions"][0]["network"].update(gateway="10.0.0.1"),
         "regions[0]: network: Value error, gateway 10.0.0.1 is not inside cidr"),
        # refused by the agent's model: not a Linux interface name
        (lambda d: d["regions"][0]["hosts"][1].update(bridge="a-bridge-name-too-long"),
         "regions[0].hosts[1]: network.bridge: Value error, must be a Linux interface name"),
        # refused by the pool's model: api token too short cannot happen, a label's flavor can't be empty
        (lambda d: d["pool"]["labels"].append({"name": "x", "flavor": ""}),
         "pool.labels[1].flavor: String should have at least 1 character"),
    ],
)  # fmt: skip
def test_a_bad_inventory_fails_before_ansible_runs(
    tmp_path: Path, edit: Any, expected: str
) -> None:
    data = copy.deepcopy(example())
    edit(data)
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump(data))
    state = tmp_path / "state"
    with pytest.raises(ConfigError) as info:
        prepare(DeployOptions(str(inv), state_dir=str(state)), build_wheels=False)
    found = [str(info.value), *info.value.problems]
    assert any(expected in p for p in found), found
    assert not (state / "ansible").exists()  # nothing written for Ansible, no host touched


def test_prepare_writes_private_ansible_files(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(EXAMPLE.read_text())
    p = prepare(DeployOptions(str(inv), state_dir=str(tmp_path / "st")), build_wheels=False)
    assert (p.state.stat().st_mode & 0o777) == 0o700
    for f in [p.state / "secrets.yaml", *p.ansible_dir.rglob("*.yml")]:
        assert (f.stat().st_mode & 0o777) == 0o600, f
    hosts = yaml.safe_load((p.ansible_dir / "inventory.yml").read_text())["all"]["hosts"]
    assert hosts["r1-c1"]["ansible_host"] == "198.19.100.11"
    cfg = (p.ansible_dir / "ansible.cfg").read_text()
    assert "pipelining = True" in cfg and "retry_files_enabled = False" in cfg
    # a second prepare keeps the secrets: same configs, so Ansible would change nothing
    before = (p.ansible_dir / "host_vars" / "pool.yml").read_text()
    prepare(DeployOptions(str(inv), state_dir=str(tmp_path / "st")), build_wheels=False)
    assert (p.ansible_dir / "host_vars" / "pool.yml").read_text() == before


def test_usage_errors(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(EXAMPLE.read_text())
    for opts, msg in (
        (DeployOptions(str(inv), batch=0, upgrade=True), "--batch must be at least 1"),
        (DeployOptions(str(inv), upgrade=True, rollback=True), "exclude each other"),
        (DeployOptions(str(inv), drain=True), "apply to --upgrade only"),
        (
            DeployOptions(str(inv), rollback=True, state_dir=str(tmp_path / "s")),
            "no earlier version",
        ),
    ):
        with pytest.raises(ConfigError, match=msg):
            prepare(opts, build_wheels=False)


def test_version_checkout_is_the_checkouts_version_and_commit(tmp_path: Path) -> None:
    data = example()
    data["version"] = "checkout"
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump(data))
    p = prepare(DeployOptions(str(inv), state_dir=str(tmp_path / "st")), build_wheels=False)
    base, _, local = p.inventory.version.partition("+g")
    assert base and len(local) == 12, p.inventory.version
    assert p.extra["rackpool_version"] == p.inventory.version


def test_versions_record_what_a_rollback_returns_to(tmp_path: Path) -> None:
    from rackpool.deploy.run import Versions

    path = tmp_path / "versions.yaml"
    v = Versions(path)
    v.starting("0.1.0")
    v.done("0.1.0")
    assert Versions(path).previous is None  # nothing before the first deploy
    v.starting("0.2.0")  # an upgrade begins: 0.1.0 is what a rollback returns to
    assert (Versions(path).deployed, Versions(path).previous) == ("0.1.0", "0.1.0")
    v.done("0.2.0")
    v.starting("0.3.0")  # and fails: no done()
    assert (Versions(path).deployed, Versions(path).previous) == ("0.2.0", "0.2.0")
    assert (path.stat().st_mode & 0o777) == 0o600
