"""``rackpool config validate`` knows every daemon's config, the dashboard's included."""

from __future__ import annotations

from pathlib import Path

import pytest

from rackpool.cli.config import validate
from rackpool.core.errors import ConfigError


def test_a_web_config_is_recognised_and_validated(tmp_path: Path) -> None:
    good = tmp_path / "web.yaml"
    good.write_text("state_dir: /var/lib/rackpool\nrefresh: 10\nregions: []\n")
    assert validate(str(good), None) == "web"
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: web\nrefresh: -1\n")
    with pytest.raises(ConfigError, match="refresh"):
        validate(str(bad), None)
