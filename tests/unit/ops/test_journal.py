"""The journal source's mapping of real ``journalctl -o json`` output to index lines.

``data/journalctl-o-json.jsonl`` was recorded on a test host (tests/support/testhosts.py:
Debian 12, systemd 252, journald as a system service): ``journalctl -u 'rackpool-*' -o
json --all`` after a unit that crashed at start with a Python traceback, and one that
wrote a ``<3>``-prefixed line, bytes that are not UTF-8, and exited 2. The same journal,
read live by the shipper, is in tests/functional/ops/test_journal_source.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rackpool.ops.journal import JournalSource, component, level, message, parse_cursor

RECORDED = Path(__file__).parent / "data" / "journalctl-o-json.jsonl"


def _entries(tmp_path: Path) -> list[dict[str, object]]:
    source = JournalSource(["rackpool-*"], tmp_path / "cursor.json", host="r1-c1")
    out = []
    for line in RECORDED.read_bytes().splitlines():
        entry = source._entry(line)
        assert entry is not None, line
        raw = json.loads(line)
        assert entry.cursor == raw["__CURSOR"]
        doc = entry.doc
        assert doc.ts == int(raw["__REALTIME_TIMESTAMP"]) / 1e6
        out.append({**doc.fields, "_source": doc.source, "_seq": doc.seq})
    return out


def test_recorded_entries_map_to_index_fields(tmp_path: Path) -> None:
    got = _entries(tmp_path)
    crash = [e for e in got if e["component"] == "crashy"]
    assert [e["message"] for e in crash if e["logger"] == "journal"] == [
        "starting",
        "Traceback (most recent call last):",
        '  File "<string>", line 1, in <module>',
        "RuntimeError: boom at start",
    ]
    assert {e["unit"] for e in crash} == {"rackpool-crashy.service"}
    exited = next(e for e in crash if "Main process exited" in str(e["message"]))
    assert exited["level"] == "INFO" and exited["logger"] == "systemd" and exited["pid"] == 1
    failed = next(e for e in crash if "Failed with result" in str(e["message"]))
    assert failed["level"] == "WARNING"
    # the controller's template unit is the 'cloud' component, as its own lines say
    ctl = [e for e in got if e["unit"] == "rackpool-controller@1.2.3.service"]
    assert ctl and all(e["component"] == "cloud" for e in ctl)
    bad = next(e for e in ctl if e["message"] == "bad config: port 8774 in use")
    assert bad["level"] == "ERROR" and bad["logger"] == "journal"  # its <3> prefix
    assert any(e["message"] == "caf\ufffd bytes" for e in ctl)  # MESSAGE as a byte list
    assert all(e["host"] == "r1-c1" for e in got)
    # source and seq from the cursor: one sequence, increasing in journal order
    assert len({e["_source"] for e in got}) == 1
    assert str(got[0]["_source"]).startswith("journal#")
    seqs = [e["_seq"] for e in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_secrets_in_journal_lines_are_redacted(tmp_path: Path) -> None:
    raw = json.loads(RECORDED.read_bytes().splitlines()[1])
    source = JournalSource(["rackpool-*"], tmp_path / "c.json", host="h")
    lines = [
        "connecting with password=hunter2",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
        "-----END OPENSSH PRIVATE KEY-----",
    ]
    texts = []
    for i, text in enumerate(lines):
        raw["MESSAGE"] = text
        raw["__CURSOR"] = raw["__CURSOR"].replace(";i=", f";i=f{i}", 1)
        entry = source._entry(json.dumps(raw).encode())
        assert entry is not None
        texts.append(entry.doc.fields["message"])
    assert "hunter2" not in texts[0]
    assert "b3BlbnNzaC1rZXkt" not in "".join(texts)


@pytest.mark.parametrize(
    ("priority", "name"),
    [("0", "CRITICAL"), ("2", "CRITICAL"), ("3", "ERROR"), ("4", "WARNING"), ("5", "INFO"),
     ("6", "INFO"), ("7", "DEBUG"), (None, "INFO"), ("x", "INFO"), ("9", "INFO")],
)  # fmt: skip
def test_priority_to_level(priority: str | None, name: str) -> None:
    assert level(priority) == name


def test_units_cursors_and_messages() -> None:
    assert component("rackpool-agent.service") == "agent"
    assert component("rackpool-controller@1.0+local.service") == "cloud"
    assert component("rackpool-shipper.service") == "shipper"
    assert component("other.service") == "other"
    assert parse_cursor("s=ab12;i=1f;b=cd;m=1;t=2;x=3") == ("ab12", 31)
    assert parse_cursor("garbage") is None
    assert message([104, 105]) == "hi" and message(None) == "" and message("x" * 70000)[-1] == "x"
    assert len(message("x" * 70000)) == 64 * 1024


def test_bad_units_are_named_by_yaml_path() -> None:
    from rackpool.core.config import parse_model
    from rackpool.core.errors import ConfigError
    from rackpool.ops.config import ShipperConfig

    ok = parse_model({"journal": {}}, ShipperConfig, "x")
    assert ok.journal is not None and ok.journal.units == ["rackpool-*"]
    with pytest.raises(ConfigError) as info:
        parse_model({"journal": {"units": ["--all", "a b"], "interval": 0}}, ShipperConfig, "x")
    assert sorted(p.split(":")[0] for p in info.value.problems) == [
        "journal.interval",
        "journal.units",
    ], info.value.problems


def test_a_journal_without_these_units_is_quiet_and_a_missing_one_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Real journalctl on this machine: an empty journal directory has no entry of the
    units (nothing to report); a directory that does not exist is reported once."""
    empty = tmp_path / "journal"
    empty.mkdir()
    quiet = JournalSource(["rackpool-*"], tmp_path / "c1.json", host="h", directory=str(empty))
    with caplog.at_level("WARNING", logger="rackpool.ops.journal"):
        assert quiet.read(100) == []
        assert not caplog.records
        gone = JournalSource(
            ["rackpool-*"], tmp_path / "c2.json", host="h", directory=str(tmp_path / "nope"),
            interval=0.001,
        )  # fmt: skip
        assert gone.read(100) == []
        assert gone.read(100) == []  # the same trouble again: not logged again
    reported = [r for r in caplog.records if r.getMessage().startswith("reading the journal")]
    assert len(reported) == 1 and "nope" in reported[0].getMessage()
    assert not (tmp_path / "c1.json").exists()  # no cursor before anything was stored
