"""What a remote shipper sends is what ``POST /api/ingest`` accepts, whatever the line; and
``shipper.yaml`` is checked like every other config."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from rackpool.cli.config import validate
from rackpool.core.config import parse_model
from rackpool.core.errors import BadRequest, ConfigError
from rackpool.core.httpguard import parse_json
from rackpool.ops.config import ShipConfig
from rackpool.ops.index import LogDoc
from rackpool.ops.wire import MAX_TS, body_head, encode_document, parse_ingest

NOW = 1_733_230_000.0


def _sent(*docs: bytes) -> list[dict[str, object]]:
    """The documents as the API reads them (it must accept the body)."""
    body = body_head("r1-c1", "/var/log/rackpool/agent.jsonl#12-ab") + b",".join(docs) + b"]}"
    batch = parse_ingest(parse_json(body))
    assert batch.stream == "r1-c1:/var/log/rackpool/agent.jsonl#12-ab"
    return [{"seq": d.seq, "ts": d.ts, **d.fields} for d in batch.documents]


def test_a_line_as_written_is_sent_as_it_is() -> None:
    line = b'{"ts": "2024-05-01T12:00:00Z", "message": "registered", "host": "r1-c1"}'
    doc = LogDoc(1714564800.0, "s", 77, orjson.loads(line), line)
    (got,) = _sent(encode_document(doc, 4096, NOW))
    assert got["message"] == "registered" and got["host"] == "r1-c1" and got["seq"] == 77


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"message": "x" * 10_000}, "over the shipper's limit"),
        ({f"k{i}": i for i in range(300)}, "at most 256"),
        ({"k" * 200: 1}, "field names"),
        ({"message": "deep", "v": orjson.loads("[" * 40 + "]" * 40)}, "nests deeper"),
    ],
)
def test_a_line_the_api_would_refuse_is_sent_cut_down(fields: dict[str, object], why: str) -> None:
    data = encode_document(LogDoc(NOW, "s", 5, fields), 4096, NOW)
    assert len(data) <= 4096
    (got,) = _sent(data)
    assert why in str(got["shipper_cut"])
    assert str(got["message"])  # the line's text, cut: still searchable


@pytest.mark.parametrize("ts", [float("inf"), -1.0, MAX_TS * 10])
def test_a_time_out_of_range_becomes_now(ts: float) -> None:
    (got,) = _sent(encode_document(LogDoc(ts, "s", 1, {"message": "m"}), 4096, NOW))
    assert got["ts"] == NOW


def test_the_api_names_the_field_it_refuses() -> None:
    with pytest.raises(BadRequest, match=r"documents\[1\]\.ts"):
        parse_ingest({"host": "h", "source": "s", "documents": [
            {"seq": 0, "ts": 1.0, "fields": {}}, {"seq": 1, "ts": "x", "fields": {}}]})  # fmt: skip


def _config(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "ops": {"url": "http://198.18.0.9:8090", "token": "t0k"},
        "host": "r1-c1",
        "shipper": {"files": ["/var/log/rackpool/*.jsonl"]},
        "state_dir": "/var/lib/rackpool/shipper",
    }
    return base | over


def test_shipper_yaml_is_a_config_kind_with_errors_by_yaml_path(tmp_path: Path) -> None:
    good = tmp_path / "shipper.yaml"
    good.write_text(orjson.dumps(_config()).decode())  # JSON is YAML
    assert validate(str(good), None) == "shipper"
    cfg = parse_model(_config(), ShipConfig, "shipper.yaml")
    assert "t0k" not in repr(cfg)  # the token is a secret
    bad = _config(ops={"url": "http://ops:1/?x=1", "token": ""}, host="-x",
                  shipper={"files": []}, batch_lines=0)  # fmt: skip
    with pytest.raises(ConfigError) as info:
        parse_model(bad, ShipConfig, "shipper.yaml")
    paths = sorted(p.split(":")[0] for p in info.value.problems)
    assert paths == ["batch_lines", "host", "ops.token", "ops.url", "shipper"], info.value.problems
    # no token at all: named by its key; the older key name is still read
    with pytest.raises(ConfigError) as info:
        parse_model(_config(ops={"url": "http://ops:1"}), ShipConfig, "shipper.yaml")
    assert [p.split(":")[0] for p in info.value.problems] == ["ops.token"], info.value.problems
    old = parse_model(_config(ops={"url": "http://o:1", "push_token": "t1"}), ShipConfig, "x")
    assert old.ops.token.get_secret_value() == "t1"
