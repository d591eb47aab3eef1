"""Everything ``rackpool up`` and its daemons write is private from the moment it exists.

Databases, secrets, keys, configs, logs and the index hold passwords, tokens and users'
data: files are 0600 and directories 0700 at creation (a process-wide umask), so no
other user of the machine can read them, not even in the moment before a chmod.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.region import connect
from tests.support.up import UpProcess


@pytest.fixture
def up(tmp_path: Path) -> Iterator[UpProcess]:
    handle = UpProcess(tmp_path / "state", ["--driver", "fake", "--hosts", "1"])
    try:
        yield handle.start()
    finally:
        handle.stop()
        handle.kill_leftovers()


def readable_by_others(root: Path) -> list[str]:
    loose = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        if mode & 0o077:
            loose.append(f"{oct(stat.S_IMODE(mode))} {path.relative_to(root.parent)}")
    return loose


def test_state_written_by_up_and_its_daemons_is_private(up: UpProcess) -> None:
    # make every daemon write: a server (region db), a node (pool db), logs (index)
    conn = connect(up.state / "clouds.yaml", "rackpool-r1")
    server = conn.create_server("private", image="host", flavor="m1.tiny", wait=True, timeout=60)
    conn.delete_server(server.id, wait=True, timeout=60)
    written = {p.name for p in up.state.rglob("*")}
    assert {"region.db", "pool.sqlite", "secrets.json", "clouds.yaml", "id_ed25519"} <= written
    assert any(name.startswith("logs-") for name in written), "the index wrote nothing"
    assert readable_by_others(up.state) == []
