"""docs/pool.md's ``rackpool up`` example is what ``rackpool up`` writes, and it validates."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from rackpool.cli.up import RegionPlan, pool_config
from rackpool.pool.config import PoolConfig

DOC = Path(__file__).resolve().parents[3] / "docs" / "pool.md"
STATE = Path("/STATE_DIR")


def example() -> dict[str, Any]:
    m = re.search(r"## For `rackpool up`.*?```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    assert m is not None, "docs/pool.md lost its rackpool up example"
    text = m.group(1).replace("STATE_DIR", str(STATE)).replace("PORT", "8123")
    return yaml.safe_load(text.replace("RANDOM", "a-random-token"))


def written() -> dict[str, Any]:
    # the plan's secrets (passwords, tokens) do not reach the pool config: any will do
    known: dict[str, Any] = {"name": "r1", "port": 9000, "cidr": "198.18.0.0/20",
                             "state": STATE / "regions" / "r1"}  # fmt: skip
    plan = RegionPlan(**{
        f.name: known.get(f.name, "a-secret") for f in dataclasses.fields(RegionPlan)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    })  # fmt: skip
    cfg = pool_config([plan], STATE, host_keys=True, hosts=2, port=8123)
    cfg["api"]["token"] = "a-random-token"
    return cfg


def test_the_example_is_what_up_writes() -> None:
    assert example() == written()


def test_the_example_validates() -> None:
    cfg = PoolConfig.model_validate(example())
    assert [p.name for p in cfg.providers] == ["r1"]
