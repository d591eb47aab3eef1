"""Under CI=true a skipped test fails, so a green CI proves the whole suite ran."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SKIPPING = """
import pytest

def test_skips():
    pytest.skip("qemu-img not installed")

@pytest.mark.heavy
def test_opt_in():
    pass

def test_passes():
    pass
"""

SKIPPING_MODULE = """
import pytest

pytest.importorskip("no_such_module_rackpool", reason="binding is not installed")

def test_never_runs():
    pass
"""


def run_pytest(tmp_path: Path, source: str, ci: str | None) -> subprocess.CompletedProcess[str]:
    test = tmp_path / "test_sample.py"
    test.write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir",
         str(ROOT), "-p", "tests.conftest", "-p", "no:cacheprovider", "-q", str(test)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_skip_fails_under_ci(tmp_path: Path) -> None:
    r = run_pytest(tmp_path, SKIPPING, "true")
    assert r.returncode == 1, r.stdout
    assert "1 failed, 1 passed, 1 deselected" in r.stdout
    assert "skipped under CI=true" in r.stdout
    assert "qemu-img not installed" in r.stdout


def test_a_skip_is_a_skip_outside_ci(tmp_path: Path) -> None:
    r = run_pytest(tmp_path, SKIPPING, None)
    assert r.returncode == 0, r.stdout
    assert "1 passed, 1 skipped, 1 deselected" in r.stdout


def test_a_module_level_importorskip_fails_under_ci(tmp_path: Path) -> None:
    r = run_pytest(tmp_path, SKIPPING_MODULE, "true")
    assert r.returncode != 0, r.stdout
    assert "binding is not installed" in r.stdout
