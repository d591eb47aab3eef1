"""The shipper's journald source against a real journal, read by the real journalctl.

A test host (tests/support/testhosts.py: systemd as PID 1, journald, persistent journal)
runs ``rackpool-*`` units that crash at start: a Python traceback on stderr, a
``<3>``-prefixed line, a secret, systemd's "Main process exited" and "Failed with
result". ``rackpool ops ship`` (as host ``j1``) and ``rackpool ops serve`` (its own
shipper) run here as real processes and read that host's journal directory with
``shipper.journal.directory`` (journalctl --directory): every entry of those units is
found in the index once, with host, component (from the unit), level (from PRIORITY)
and time; after the shipper is stopped and started again, only the new entries are
added (the cursor, saved 0600, resumes after the last committed one).
"""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.functional.ops.test_remote_shipper import Ops, ShipperProcess
from tests.support.testhosts import TestHost, test_hosts

from rackpool.core.clock import wait_for

pytestmark = [pytest.mark.root]

CRASH = (
    "systemd-run --unit=rackpool-crashy.service python3 -c "
    '\'import sys; print("starting with password=hunter2"); sys.stdout.flush(); '
    'raise RuntimeError("boom at start")\''
)
BAD_CONFIG = (
    "systemd-run --unit=rackpool-controller@9.9.9.service sh -c "
    "'echo \"<3>bad config: port 8774 in use\" >&2; exit 2'"
)
NOT_OURS = "systemd-run --unit=other-thing.service sh -c 'echo not a rackpool unit'"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestHost]:
    with test_hosts(tmp_path_factory.mktemp("hosts"), ["j1"]) as hs:
        yield hs.hosts["j1"]


def _journal(h: TestHost) -> Path:
    (machine,) = (h.rootfs / "var/log/journal").iterdir()
    return machine


def _local_entries(directory: Path) -> list[dict[str, Any]]:
    """The rackpool-* entries as journalctl on this machine reads them."""
    out = subprocess.run(
        ["journalctl", "--directory", str(directory), "-o", "json", "--all", "--no-pager",
         "--quiet", "--unit", "rackpool-*"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _has(directory: Path, text: str) -> bool:
    return any(text in str(e.get("MESSAGE")) for e in _local_entries(directory))


def _with_journal(config: Path, directory: Path) -> None:
    data = yaml.safe_load(config.read_text())
    data["shipper"] = {**data.get("shipper", {}),
                       "journal": {"directory": str(directory), "interval": 0.2}}  # fmt: skip
    config.write_text(yaml.safe_dump(data))


def test_journal_entries_of_rackpool_units_are_indexed_once(host: TestHost, tmp_path: Path) -> None:
    host.ssh(f"{CRASH}; {BAD_CONFIG}; {NOT_OURS}", check=True)
    directory = _journal(host)
    wait_for(lambda: _has(directory, "rackpool-controller@9.9.9.service: Failed with result")
             and _has(directory, "rackpool-crashy.service: Failed with result"), 30,
             "the units' failures in the journal")  # fmt: skip
    logs = tmp_path / "logs"
    logs.mkdir()
    ops = Ops(tmp_path / "ops")
    _with_journal(ops.config, directory)
    ops.start()
    shipper = ShipperProcess(tmp_path / "ship", logs, ops.url, host="j1")
    _with_journal(shipper.config, directory)
    try:
        shipper.start()
        remote = "host:j1 AND (logger:journal OR logger:systemd)"
        expected = len(_local_entries(directory))
        wait_for(lambda: ops.total(remote) == expected, 60, "the journal shipped as j1")
        hits = ops.every_hit(remote)
        assert all(h["source"].startswith("j1:journal#") for h in hits)
        by_message = {h["message"]: h for h in hits}
        boom = by_message["RuntimeError: boom at start"]
        assert boom["component"] == "crashy" and boom["unit"] == "rackpool-crashy.service"
        assert boom["level"] == "INFO"  # stderr without a <N> prefix is journald's info
        assert "Traceback (most recent call last):" in by_message
        bad = by_message["bad config: port 8774 in use"]
        assert bad["level"] == "ERROR" and bad["component"] == "cloud"
        failed = by_message["rackpool-crashy.service: Failed with result 'exit-code'."]
        assert failed["level"] == "WARNING" and failed["logger"] == "systemd"
        assert not any("not a rackpool unit" in m for m in by_message)  # only rackpool-*
        assert ops.total("hunter2") == 0 and any("password=***" in m for m in by_message)
        # times are the journal's own
        entry = next(e for e in _local_entries(directory)
                     if e["MESSAGE"] == "RuntimeError: boom at start")  # fmt: skip
        assert boom["ts"] == pytest.approx(int(entry["__REALTIME_TIMESTAMP"]) / 1e6, abs=1e-5)
        # the ops daemon's own shipper read the same journal (as its host's)
        local = "NOT host:j1 AND (logger:journal OR logger:systemd)"
        wait_for(lambda: ops.total(local) == expected, 60, "the journal indexed by ops serve")

        cursor = shipper.state / "journal-cursor.json"
        assert stat.S_IMODE(cursor.stat().st_mode) == 0o600
        # stopped, more entries meanwhile, started again: only the new ones are added
        shipper.stop()
        host.ssh("systemd-run --unit=rackpool-agent.service sh -c 'echo after the restart'",
                 check=True)  # fmt: skip
        wait_for(lambda: _has(directory, "after the restart"), 30, "the new entry")
        shipper.start()
        expected = len(_local_entries(directory))
        wait_for(lambda: ops.total(remote) == expected, 60, "the new entries shipped")
        hits = ops.every_hit(remote)
        assert len({(h["source"], h["seq"]) for h in hits}) == len(hits) == expected
        new = ops.search('host:j1 AND logger:journal AND message:"after the restart"')["hits"]
        assert [(h["message"], h["component"]) for h in new] == [("after the restart", "agent")]
    finally:
        shipper.stop()
        ops.stop()


def test_a_journal_it_cannot_read_is_in_the_status_and_files_still_ship(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "agent.log").write_text('{"component": "agent", "message": "still shipped"}\n')
    ops = Ops(tmp_path / "ops").start()
    shipper = ShipperProcess(tmp_path / "ship", logs, ops.url, host="j2")
    _with_journal(shipper.config, tmp_path / "no-such-journal")
    try:
        shipper.start()
        wait_for(lambda: shipper.status().get("journal_error"), 30, "the journal trouble")
        assert "no-such-journal" in shipper.status()["journal_error"]
        assert shipper.status()["state"] == "shipping"
        wait_for(lambda: ops.total('message:"still shipped"') == 1, 30, "the file shipped")
        warned = [e for e in shipper.events() if e.get("event") == "journal_failed"]
        assert len(warned) == 1 and warned[0]["level"] == "WARNING"
    finally:
        shipper.stop()
        ops.stop()
