"""Which files a daemon's shipper follows: ``shipper.files`` and its own log file."""

from __future__ import annotations

from rackpool.ops.config import ShipperConfig


def test_the_daemons_own_log_is_added_when_no_glob_matches_it() -> None:
    cfg = ShipperConfig(files=["/var/log/rackpool/*.jsonl"])
    assert cfg.globs("/var/log/rackpool/ops.log") == [
        "/var/log/rackpool/*.jsonl",
        "/var/log/rackpool/ops.log",
    ]
    assert cfg.globs("/var/log/rackpool/shipper.jsonl") == ["/var/log/rackpool/*.jsonl"]
    assert cfg.globs(None) == ["/var/log/rackpool/*.jsonl"]
    # a path with glob characters names that one file
    assert ShipperConfig().globs("/s/logs[1]/ops.log") == ["/s/logs[[]1]/ops.log"]
    assert ShipperConfig(own_log=False).globs("/var/log/rackpool/ops.log") == []
