"""Pruning old virtualenvs on a real directory tree, as ``rackpool deploy`` runs it on a host.

``python -m rackpool.deploy.prune`` in a process, against ``/opt/rackpool``-like trees
made here: versions with their ``.installed`` markers and install times, ``current``,
wheels in ``dist/``, wheelhouses; a real process holding a file of one version mapped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

T0 = 1_700_000_000.0


def _install(root: Path, version: str, day: int) -> None:
    """A version as the deploy leaves it: venv files, config dir, marker (install time)."""
    d = root / version
    (d / "bin").mkdir(parents=True)
    (d / "bin" / "python").write_text("#!/bin/sh\n")
    (d / "lib").mkdir()
    (d / "lib" / "blob.bin").write_bytes(b"\0" * 8192)
    (d / "etc").mkdir(mode=0o700)
    (d / "etc" / "agent.yaml").write_text("x: 1\n")
    (d / ".installed").write_text(f"{version}\n")
    os.utime(d / ".installed", (T0 + day * 86400, T0 + day * 86400))
    (root / "dist").mkdir(exist_ok=True)
    (root / "dist" / f"rackpool-{version}-py3-none-any.whl").write_bytes(b"PK")


def _current(root: Path, version: str) -> None:
    link = root / "current"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(root / version)


def _prune(root: Path, *args: str) -> tuple[int, dict[str, object] | str]:
    proc = subprocess.run(
        [sys.executable, "-m", "rackpool.deploy.prune", "--root", str(root), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        return proc.returncode, proc.stderr
    return 0, json.loads(proc.stdout)


def _versions(root: Path) -> set[str]:
    return {d.name for d in root.iterdir() if d.is_dir() and not d.is_symlink()} - {
        "dist",
        "wheelhouse",
    }


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "opt-rackpool"
    r.mkdir()
    return r


def test_daily_deploys_keep_current_and_the_previous_n(root: Path) -> None:
    days = [f"0.1.0+g{i:04d}" for i in range(8)]  # eight daily deploys, installed in order
    for i, v in enumerate(days):
        _install(root, v, i)
    _current(root, days[-1])
    rc, out = _prune(root, "--keep", "3", "--protect", days[-1], "--protect", days[-2])
    assert rc == 0, out
    assert _versions(root) == set(days[-4:])  # current + the 3 before it
    assert isinstance(out, dict) and sorted(out["removed"]) == sorted(days[:4])
    assert {p.name for p in (root / "dist").iterdir()} == {
        f"rackpool-{v}-py3-none-any.whl" for v in days[-4:]
    }
    # a second run finds nothing more to remove (the deploy reports changed=0)
    rc, out = _prune(root, "--keep", "3", "--protect", days[-1])
    assert rc == 0 and isinstance(out, dict) and out["removed"] == []
    assert _versions(root) == set(days[-4:])


def test_never_the_running_version_or_the_rollback_target(root: Path) -> None:
    for i, v in enumerate(["1.0", "1.1", "1.2", "1.3", "1.4", "1.5"]):
        _install(root, v, i)
    # rolled back to 1.1: current is old; 1.0 is the rollback target the state records
    _current(root, "1.1")
    rc, out = _prune(root, "--keep", "1", "--protect", "1.0")
    assert rc == 0, out
    # current (1.1), the protected rollback target (1.0), and the newest other (1.5)
    assert _versions(root) == {"1.0", "1.1", "1.5"}
    assert (root / "current").resolve() == root / "1.1"
    assert (root / "1.1" / "etc" / "agent.yaml").exists()


@pytest.fixture
def holder(root: Path) -> Iterator[subprocess.Popen[str]]:
    """A real process with a file of version 2.0 mapped (as a daemon maps its venv's .so)."""
    _install(root, "2.0", 0)
    code = (
        "import mmap, sys\n"
        "f = open(sys.argv[1], 'rb')\n"
        "m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)\n"
        "print('mapped', flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(root / "2.0" / "lib" / "blob.bin")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "mapped"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_a_version_a_process_still_runs_from_is_kept(
    root: Path, holder: subprocess.Popen[str]
) -> None:
    for i, v in enumerate(["2.1", "2.2", "2.3"], start=1):
        _install(root, v, i)
    _current(root, "2.3")
    rc, out = _prune(root, "--keep", "1")
    assert rc == 0, out
    # 2.0 is the oldest, but a process has it mapped; 2.1 goes
    assert _versions(root) == {"2.0", "2.2", "2.3"}
    assert isinstance(out, dict) and out["removed"] == ["2.1"]


def test_unfinished_installs_and_foreign_directories_are_left_alone(root: Path) -> None:
    for i, v in enumerate(["3.0", "3.1", "3.2"]):
        _install(root, v, i)
    _current(root, "3.2")
    (root / "2.9").mkdir()  # an install cut short: no marker
    (root / "notes").mkdir()
    (root / "odd").mkdir()
    (root / "odd" / ".installed").write_text("something-else\n")  # marker not naming it
    rc, out = _prune(root, "--keep", "1")
    assert rc == 0, out
    assert _versions(root) == {"2.9", "notes", "odd", "3.1", "3.2"}


def test_old_wheelhouses_go_the_one_in_use_stays(root: Path) -> None:
    _install(root, "4.0", 0)
    _current(root, "4.0")
    wh = root / "wheelhouse"
    wh.mkdir()
    for i, h in enumerate(["aaa", "bbb", "ccc", "ddd"]):
        (wh / h).mkdir()
        (wh / h / "dep.whl").write_bytes(b"PK")
        (wh / f"{h}.tar").write_bytes(b"tar")
        os.utime(wh / h, (T0 + i, T0 + i))
    # keep 1 → the 2 newest (ccc, ddd) stay, and aaa because this deploy uses it
    rc, out = _prune(root, "--keep", "1", "--wheelhouse", "aaa")
    assert rc == 0, out
    assert {p.name for p in wh.iterdir()} == {"aaa", "aaa.tar", "ccc", "ccc.tar", "ddd", "ddd.tar"}


def test_dry_run_removes_nothing(root: Path) -> None:
    for i, v in enumerate(["5.0", "5.1", "5.2"]):
        _install(root, v, i)
    _current(root, "5.2")
    rc, out = _prune(root, "--keep", "1", "--dry-run")
    assert rc == 0 and isinstance(out, dict) and out["removed"] == ["5.0"]
    assert _versions(root) == {"5.0", "5.1", "5.2"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--keep", "0"], "must be at least 1"),
        (["--keep", "three"], "not a whole number"),
    ],
)
def test_bad_arguments_fail_clearly(root: Path, args: list[str], says: str) -> None:
    _install(root, "6.0", 0)
    rc, err = _prune(root, *args)
    assert rc == 2 and isinstance(err, str) and says in err
    assert _versions(root) == {"6.0"}
    rc, err = _prune(root.parent / "missing", "--keep", "1")
    assert rc == 2 and isinstance(err, str) and "is not a directory" in err


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("0", "keep_versions: Input should be greater than or equal to 1"),
        ("101", "keep_versions: Input should be less than or equal to 100"),
        ("lots", "keep_versions: Input should be a valid integer"),
    ],
)
def test_inventory_keep_versions_is_validated(tmp_path: Path, value: str, says: str) -> None:
    example = Path(__file__).resolve().parents[3] / "src/rackpool/deploy/examples/inventory.yaml"
    inv = tmp_path / "inventory.yaml"
    inv.write_text(example.read_text() + f"keep_versions: {value}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "rackpool.cli", "config", "validate", str(inv)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and says in out, out
    assert "Traceback" not in out
