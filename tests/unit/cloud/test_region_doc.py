"""docs/region.md describes region.yaml as the code reads it: same options, a valid example."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from rackpool.cloud.config import RegionConfig

DOC = Path(__file__).resolve().parents[3] / "docs" / "region.md"


def model_options(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every option path of a model: nested models expand, lists of models get ``[]``."""
    out: set[str] = set()
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        ann: Any = field.annotation
        args = getattr(ann, "__args__", ())
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out |= model_options(ann, key + ".")
        elif args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            out.add(key)
            out |= model_options(args[0], key + "[].")
        else:
            out.add(key)
    return out


def documented_options(text: str) -> set[str]:
    return set(re.findall(r"^\| `([a-z_.\[\]]+)` \|", text, flags=re.M))


def test_every_option_is_documented_and_every_documented_option_exists() -> None:
    text = DOC.read_text()
    in_code = model_options(RegionConfig)
    in_doc = documented_options(text)
    assert in_code - in_doc == set(), "options missing from docs/region.md"
    assert in_doc - in_code == set(), "docs/region.md lists options the code does not have"


def test_the_example_validates() -> None:
    example = re.search(r"## Example\n\n```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    assert example is not None
    cfg = RegionConfig.model_validate(yaml.safe_load(example.group(1)))
    assert cfg.region == "r1" and cfg.network.gateway == "198.18.0.1"
