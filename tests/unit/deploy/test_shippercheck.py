"""The deploy's health check of a log shipper says what the shipper reported last."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from rackpool.deploy.shippercheck import main


def test_healthy_once_the_shipper_says_shipping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = tmp_path / "shipper.json"
    status.write_text(json.dumps({"url": "http://ops:8090", "state": "connecting"}))
    later = threading.Timer(
        0.3, lambda: status.write_text(json.dumps({"url": "u", "state": "shipping"}))
    )
    later.start()
    try:
        assert main(["--status", str(status), "--timeout", "10"]) == 0
    finally:
        later.cancel()
    assert json.loads(capsys.readouterr().out)["state"] == "shipping"


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "shipper.json is missing: the shipper is not running"),
        ({"url": "http://ops:8090", "state": "refused", "error": "refused the push token"},
         "did not reach http://ops:8090 within 0.3s: refused: refused the push token"),
        ({"url": "http://ops:8090", "state": "retrying", "error": "cannot reach the ops API"},
         "retrying: cannot reach the ops API"),
    ],
)  # fmt: skip
def test_unhealthy_is_one_line_with_the_shippers_last_word(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: object, said: str
) -> None:
    status = tmp_path / "shipper.json"
    if content is not None:
        status.write_text(json.dumps(content))
    assert main(["--status", str(status), "--timeout", "0.3"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("unhealthy: the log shipper did not reach") and said in err
    assert len(err.strip().splitlines()) == 1


def test_a_journal_it_cannot_read_is_a_warning_not_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = tmp_path / "shipper.json"
    status.write_text(json.dumps({"url": "u", "state": "shipping",
                                  "journal_error": "cannot run journalctl"}))  # fmt: skip
    assert main(["--status", str(status), "--timeout", "1"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["state"] == "shipping"
    assert out.err.strip() == "warning: the shipper cannot read the journal: cannot run journalctl"
