"""JSON/human log formatting and secret redaction, as a daemon writes them."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from rackpool.core.logs import REDACTED, is_secret_key, redact, setup_logging


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_json_lines_carry_fields_and_ids(tmp_path: Path, restore_root) -> None:
    log_file = tmp_path / "pool.log"
    setup_logging("pool", json=True, path=str(log_file), context={"region": "r1", "host": "h1"})
    log = logging.getLogger("rackpool.pool.launcher")
    log.warning(
        "launch failed: %s",
        "Quota exceeded for cores",
        extra={"node_id": "n-1", "provider": "rack1", "label": "small", "event": "launch_failed"},
    )
    log.debug("not written at INFO")
    (doc,) = _lines(log_file)
    assert doc["ts"].endswith("Z") and doc["ts"][:2] == "20"
    assert doc["level"] == "WARNING"
    assert doc["component"] == "pool"
    assert doc["logger"] == "rackpool.pool.launcher"
    assert doc["message"] == "launch failed: Quota exceeded for cores"
    assert doc["region"] == "r1" and doc["host"] == "h1"
    assert doc["node_id"] == "n-1" and doc["event"] == "launch_failed"
    assert list(doc)[:5] == ["ts", "level", "component", "logger", "message"]


def test_exception_text_is_included(tmp_path: Path, restore_root) -> None:
    log_file = tmp_path / "cloud.log"
    setup_logging("cloud", json=True, path=str(log_file))
    try:
        raise RuntimeError("boom password=hunter2")
    except RuntimeError:
        logging.getLogger("rackpool.cloud").exception(
            "request failed", extra={"request_id": "req-1"}
        )
    (doc,) = _lines(log_file)
    assert "RuntimeError: boom" in doc["exception"]
    assert "hunter2" not in doc["exception"]
    assert doc["request_id"] == "req-1"


def test_human_output_for_terminal(restore_root) -> None:
    out = io.StringIO()
    setup_logging("agent", json=False, stream=out)
    logging.getLogger("rackpool.agent").info("booted %s", "vm1", extra={"instance_id": "i-9"})
    text = out.getvalue()
    assert "INFO" in text and "rackpool.agent" in text and "instance_id=i-9" in text
    assert "booted vm1" in text and not text.startswith("{")


def test_setup_twice_replaces_handler(tmp_path: Path, restore_root) -> None:
    setup_logging("ops", json=True, path=str(tmp_path / "a.log"))
    setup_logging("ops", json=True, path=str(tmp_path / "b.log"))
    logging.getLogger("rackpool.ops").warning("once")
    assert (tmp_path / "a.log").read_text() == ""
    assert len(_lines(tmp_path / "b.log")) == 1


def test_secrets_never_reach_the_file(tmp_path: Path, restore_root) -> None:
    log_file = tmp_path / "cloud.log"
    setup_logging("cloud", json=True, path=str(log_file))
    log = logging.getLogger("rackpool.cloud.api")
    log.info("headers %s", {"Authorization": "Bearer sekrit-1", "X-Auth-Token": "sekrit-2"})
    log.info("create server", extra={"user_data": "sekrit-3", "instance_id": "i-1"})
    log.info("auth", extra={"body": {"auth": {"password": "sekrit-4", "user": "demo"}}})
    text = log_file.read_text()
    for n in range(1, 5):
        assert f"sekrit-{n}" not in text
    docs = _lines(log_file)
    assert docs[1]["user_data"] == REDACTED and docs[1]["instance_id"] == "i-1"
    assert docs[2]["body"]["auth"] == {"password": REDACTED, "user": "demo"}


PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\nAAAA\n-----END OPENSSH PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("password=hunter2 user=demo", "hunter2", "user=demo"),
        ("admin_password: hunter2, x", "hunter2", ", x"),
        ('{"password": "hun ter2", "name": "x"}', "hun ter2", '"name": "x"'),
        ("{'os_password': 'hunter2'}", "hunter2", "os_password"),
        ("Authorization: Bearer abc.def", "abc.def", "Authorization: "),
        ("authorization=Basic dXNlcjpwYXNz ok", "dXNlcjpwYXNz", " ok"),
        ("X-Auth-Token: gAAAAABfoo123", "gAAAAABfoo123", "X-Auth-Token"),
        ("token=abc&x=1", "abc", "&x=1"),
        ("user_data=IyEvYmluL3No rest", "IyEvYmluL3No", " rest"),
        ("userdata: 'echo hi'", "echo hi", "userdata"),
        ("--os-password hunter2 --os-user demo", "hunter2", "--os-user demo"),
        ("mysql+pymysql://nova:hunter2@db/nova", "hunter2", "@db/nova"),
        (f"key is {PEM} done", "b3BlbnNzaC1rZXk", "done"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow cut off", "MIIEow", "RSA PRIVATE KEY"),
        ("api_key = 'k1'", "k1", "api_key"),
        ('"client_secret":"s1"', "s1", "client_secret"),
    ],
)
def test_redact(text: str, secret: str, kept: str) -> None:
    out = redact(text)
    assert secret not in out
    assert kept in out
    assert REDACTED in out


@pytest.mark.parametrize(
    "text",
    [
        "Quota exceeded for cores: Requested 4, but already used 20 of 20 cores",
        "tokens_used 5; password_expires_at soon",
        "ssh-keyscan failed for 10.0.0.5 port 22",
        "-----BEGIN PUBLIC KEY----- abc",
    ],
)
def test_redact_leaves_ordinary_text(text: str) -> None:
    assert redact(text) == text


def test_secret_key_names() -> None:
    for key in ("password", "os_password", "X-Auth-Token", "user_data", "Authorization", "token"):
        assert is_secret_key(key), key
    for key in ("node_id", "tokens_used", "message", "image_id"):
        assert not is_secret_key(key), key


def test_a_failed_sql_statement_is_logged_without_its_parameters(
    tmp_path: Path, restore_root
) -> None:
    """Tracebacks of database errors name the statement, never the values bound to it."""
    import time

    import sqlalchemy as sa
    from sqlalchemy.exc import IntegrityError

    from rackpool.cloud.db.engine import make_engine
    from rackpool.cloud.db.schema import metadata, users

    engine = make_engine(f"sqlite:///{tmp_path / 'region.db'}")
    metadata.create_all(engine)
    row = {"id": "u-1", "name": "sekrit-name", "password_hash": "sekrit-hash", "created_at": 0.0}
    log_file = tmp_path / "cloud.log"
    setup_logging("cloud", json=True, path=str(log_file))
    with engine.begin() as conn:
        conn.execute(sa.insert(users).values(**row))
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(users).values(**{**row, "created_at": time.time()}))
    except IntegrityError:
        logging.getLogger("rackpool.cloud.api").exception("create user failed")
    else:
        pytest.fail("a duplicate user was inserted")
    engine.dispose()
    (doc,) = _lines(log_file)
    assert "INSERT INTO users" in doc["exception"]
    assert "sekrit" not in log_file.read_text()
