"""docs/ops.md's example ops.yaml is what the daemon reads and what ``rackpool up`` writes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from rackpool.cli.up import ops_config
from rackpool.ops.config import OpsConfig

DOC = Path(__file__).resolve().parents[3] / "docs" / "ops.md"


def example() -> dict[str, Any]:
    m = re.search(r"Minimal config.*?```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    assert m is not None, "docs/ops.md lost its example ops.yaml"
    return yaml.safe_load(m.group(1))


def test_the_example_validates() -> None:
    OpsConfig.model_validate(example())


def test_the_example_ships_the_files_up_writes() -> None:
    written = ops_config(Path("STATE"), 0)
    assert example()["shipper"]["files"] == written["shipper"]["files"]
    assert example()["index"]["path"] == written["index"]["path"]
