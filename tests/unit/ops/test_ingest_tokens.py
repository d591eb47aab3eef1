"""Per-host ingest tokens (rackpool.ops.tokens) and the ops config that holds their secret."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from rackpool.core.config import parse_model
from rackpool.core.errors import ConfigError
from rackpool.ops.config import OpsConfig
from rackpool.ops.tokens import (
    check_host,
    load_or_create_secret,
    looks_like_host_token,
    mint,
    token_host,
)

SECRET = "an-ingest-secret-of-some-length"


def test_a_token_is_bound_to_the_host_it_was_minted_for() -> None:
    a, b = mint(SECRET, "r1-c1"), mint(SECRET, "r1-c2")
    assert token_host(SECRET, a) == "r1-c1"
    assert token_host(SECRET, b) == "r1-c2"
    assert a != b and mint(SECRET, "r1-c1") == a  # deterministic: no per-host state
    assert looks_like_host_token(a) and not looks_like_host_token("push-token")
    # dotted host names are fine (the MAC is after the last dot)
    assert token_host(SECRET, mint(SECRET, "c1.rack.example")) == "c1.rack.example"


def test_a_token_cannot_be_rebound_or_forged() -> None:
    a = mint(SECRET, "r1-c1")
    mac = a.rsplit(".", 1)[1]
    assert token_host(SECRET, f"rpi1.r1-c2.{mac}") is None  # A's MAC under B's name
    assert token_host("another-secret-entirely", a) is None  # the secret changed
    flipped = a[:-1] + ("A" if a[-1] != "A" else "B")
    assert token_host(SECRET, flipped) is None
    for junk in ("", "rpi1.", "rpi1.r1-c1", "rpi1..x", f"rpi1.a b.{mac}", a + "x", "Bearer"):
        assert token_host(SECRET, junk) is None, junk


@pytest.mark.parametrize("host", ["", "-x", "a b", "a:b", "x" * 254, "é"])
def test_only_names_the_ingest_api_takes_get_a_token(host: str) -> None:
    with pytest.raises(ValueError, match="not a host name"):
        mint(SECRET, host)
    with pytest.raises(ValueError):
        check_host(host)


def test_the_secret_file_is_made_once_private_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "index" / "ingest.secret"
    got: list[str] = []
    threads = [
        threading.Thread(target=lambda: got.append(load_or_create_secret(path))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 1 and len(got[0]) >= 32  # every racer reads the one secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert os.listdir(path.parent) == ["ingest.secret"]  # no temp files left
    assert load_or_create_secret(path) == got[0]
    path.write_text("short\n")
    with pytest.raises(ConfigError, match="shorter than 16"):
        load_or_create_secret(path)


def test_ops_yaml_names_a_bad_ingest_secret_by_its_yaml_path() -> None:
    ok = parse_model(
        {"index": {"path": "/x"}, "api": {"ingest_secret": SECRET}}, OpsConfig, "ops.yaml"
    )
    assert ok.api.ingest_secret is not None and SECRET not in repr(ok)
    with pytest.raises(ConfigError) as info:
        parse_model({"index": {"path": "/x"}, "api": {"ingest_secret": "short"}}, OpsConfig, "o")
    assert [p.split(":")[0] for p in info.value.problems] == ["api.ingest_secret"]
