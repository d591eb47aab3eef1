"""The fake driver with a state directory: instances outlive the driver object."""

from __future__ import annotations

from pathlib import Path

from rackpool.agent.client import parse_instance
from rackpool.agent.virt.base import LocalImage
from rackpool.agent.virt.fake import FakeConfig, FakeDriver

WIRE = {
    "id": "i1", "name": "n1", "image": {"id": "host", "builtin": "host"},
    "flavor": {"id": "1", "vcpus": 1, "ram": 512, "disk": 1},
    "network": {"address": "198.18.0.5", "prefix": 16, "gateway": "198.18.0.1",
                "mac": "fa:16:3e:00:00:05"},
}  # fmt: skip


def _spawn(d: FakeDriver, iid: str) -> tuple[str, ...]:
    spec = parse_instance({**WIRE, "id": iid})
    return d.spawn(spec, LocalImage("host", "host"), spec.flavor, spec.network, (), None).host_keys


def test_a_new_driver_on_the_same_directory_adopts_instances(tmp_path: Path):
    first = FakeDriver(FakeConfig(), tmp_path)
    keys = _spawn(first, "i1")
    again = FakeDriver(FakeConfig(), tmp_path)  # a restarted agent
    assert [(s.id, s.running, s.host_keys) for s in again.list()] == [("i1", True, keys)]
    assert keys[0] in again.console_log("i1")
    assert _spawn(again, "i2") != keys  # every boot has its own host key


def test_stop_marker_and_removed_record_are_seen_by_list(tmp_path: Path):
    d = FakeDriver(FakeConfig(), tmp_path)
    _spawn(d, "i1")
    _spawn(d, "i2")
    (tmp_path / "i1.stopped").write_text("oom killed\n")
    (tmp_path / "i2.json").unlink()
    assert [(s.id, s.running, s.detail) for s in d.list()] == [("i1", False, "oom killed")]
    (tmp_path / "i1.stopped").unlink()
    assert [(s.id, s.running) for s in d.list()] == [("i1", True)]
    d.destroy("i1")
    assert d.list() == [] and list(tmp_path.iterdir()) == []
