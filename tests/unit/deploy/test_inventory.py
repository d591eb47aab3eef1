"""The inventory model: the shipped example is valid; each mistake is named by its YAML path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rackpool.cli.config import validate
from rackpool.core.config import parse_model
from rackpool.core.errors import ConfigError
from rackpool.deploy.inventory import Inventory

EXAMPLE = Path(__file__).resolve().parents[3] / "src/rackpool/deploy/examples/inventory.yaml"


def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return data


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_model(data, Inventory, "inventory.yaml")
    return info.value.problems


def test_the_example_is_valid_and_detected_as_an_inventory() -> None:
    assert validate(str(EXAMPLE), None) == "inventory"
    inv = parse_model(example(), Inventory, "x")
    assert [h.name for h in inv.regions[0].hosts] == ["r1-c1", "r1-c2"]
    assert inv.regions[0].controller.url == "http://198.19.100.10:8774"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["regions"][0]["hosts"][1].update(address="not an address!"),
         "regions[0].hosts[1].address: Value error, must be an IP address or a DNS name"),
        (lambda d: d["regions"][0]["hosts"][0].update(driver="qemu"),
         "regions[0].hosts[0].driver: Input should be 'container', 'libvirt' or 'fake'"),
        (lambda d: d["regions"][0]["hosts"][0].update(colour="red"),
         "regions[0].hosts[0].colour: unknown option"),
        (lambda d: d["regions"][0]["flavors"][0].update(vcpus=0),
         "regions[0].flavors[0].vcpus: Input should be greater than 0"),
        (lambda d: d["regions"][0]["hosts"][1].update(name="r1-c1"),
         "regions[0].hosts: Value error, compute host names must be unique; repeated: r1-c1"),
        (lambda d: d["regions"][0]["controller"].pop("address"),
         "regions[0].controller.address: required option is missing"),
        (lambda d: d.update(version="latest"),
         "version: Value error, must be a version such as 0.1.0"),
        (lambda d: d["pool"].update(api_port=70000),
         "pool.api_port: Input should be less than or equal to 65535"),
        (lambda d: d["regions"][0]["projects"][0]["users"][0].update(role="owner"),
         "regions[0].projects[0].users[0].role: Input should be 'member' or 'admin'"),
    ],
)  # fmt: skip
def test_a_mistake_is_named_by_its_yaml_path(edit: Any, expected: str) -> None:
    data = copy.deepcopy(example())
    edit(data)
    found = problems(data)
    assert any(p.startswith(expected) for p in found), found


def test_two_hosts_may_not_share_a_name_with_different_addresses() -> None:
    data = copy.deepcopy(example())
    data["ops"]["name"] = "r1-c1"
    found = problems(data)
    assert any("the name 'r1-c1' is used by another host" in p for p in found), found


def test_config_validate_rejects_a_bad_inventory(tmp_path: Path) -> None:
    data = copy.deepcopy(example())
    data["regions"][0]["network"]["cidr"] = 12
    bad = tmp_path / "inventory.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        validate(str(bad), None)
    assert any(p.startswith("regions[0].network.cidr:") for p in info.value.problems)
