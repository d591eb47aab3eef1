"""The private umask belongs to the ``rackpool`` process, not to whoever calls main()."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rackpool.cli import main


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_main_called_in_process_leaves_the_callers_umask(tmp_path: Path) -> None:
    before = current_umask()
    cfg = tmp_path / "pool.yaml"
    cfg.write_text("not: [valid")
    main(["config", "validate", str(cfg)])
    assert current_umask() == before


def test_the_program_creates_its_state_private(tmp_path: Path) -> None:
    state = tmp_path / "r1"
    cfg = tmp_path / "region.yaml"
    cfg.write_text(f"region: r1\nstate_dir: {state}\nagent_token: {'t' * 16}\n")
    subprocess.run(
        [sys.executable, "-m", "rackpool.cli", "cloud", "admin", "--config", str(cfg),
         "project", "list"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    created = [state, *state.rglob("*")]
    assert any(p.name == "region.db" for p in created)
    assert [p for p in created if p.stat().st_mode & 0o077] == []
