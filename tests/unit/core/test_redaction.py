"""Secrets users write into logs and build output are redacted; ordinary lines are not.

The corpora live in ``tests/data/secrets``: ``planted.txt`` has a known secret in every
line, marked ``«like this»`` (the marks are removed before redacting), spanning every
shape :mod:`rackpool.core.secrets` recognises; ``ordinary.txt`` is what rackpool's
daemons and CI builds write every day, with nothing to redact.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rackpool.core.secrets import (
    REDACTED,
    StreamRedactor,
    StreamRedactors,
    is_secret_key,
    may_hold_secret,
    redact,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "secrets"
_MARK = re.compile("«([^»]*)»")


def planted() -> list[tuple[str, list[str]]]:
    """(line, the secrets in it) for every line of the planted corpus, in order."""
    out = []
    for raw in (DATA / "planted.txt").read_text().splitlines():
        out.append((_MARK.sub(r"\1", raw), _MARK.findall(raw)))
    return out


def test_the_planted_corpus_spans_the_shapes() -> None:
    lines = planted()
    assert len(lines) >= 80
    text = "\n".join(line for line, _ in lines)
    for shape in ("export ", "--os-password", '"password": ', "password: ", "password='",
                  "mysql -u", "sshpass -p", "MYSQL_PWD=", "AKIA", "ghp_", "gho_", "ghu_",
                  "ghs_", "ghr_", "github_pat_", "glpat-", "xoxb-", "xoxp-", "xoxa-", "xoxr-",
                  "Bearer ", "Basic ", "X-Auth-Token", "X-Subject-Token", "://ci-bot:",
                  "BEGIN RSA PRIVATE KEY", "BEGIN OPENSSH PRIVATE KEY"):  # fmt: skip
        assert shape in text, shape
    assert all(secret for _, secrets in lines for secret in secrets)


def test_every_planted_secret_is_redacted() -> None:
    stream = StreamRedactor()
    leaks = []
    for line, secrets in planted():
        out = stream.redact(line)
        leaks += [(line, out) for secret in secrets if secret in out]
    assert leaks == []


def test_ordinary_lines_are_left_alone() -> None:
    stream = StreamRedactor()
    lines = (DATA / "ordinary.txt").read_text().splitlines()
    assert len(lines) >= 150
    changed = [(line, out) for line in lines if (out := stream.redact(line)) != line]
    assert changed == []


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("FOO_PASSWORD=hunter2 next", "FOO_PASSWORD=*** next"),
        ('export X_TOKEN="abc-123"', 'export X_TOKEN="***"'),
        ("--os-password hunter2 --os-user demo", "--os-password *** --os-user demo"),
        ('{"password": {"user": "x"}}', '{"password": {"user": "x"}}'),
        ('{\\"password\\": \\"hunter2\\"}', '{\\"password\\": \\"***\\"}'),
        ("mysql -uroot -phunter2 nova", "mysql -uroot -p*** nova"),
        ("mysql -u root -p nova", "mysql -u root -p nova"),  # prompts for it
        ("sshpass -p hunter2 ssh h", "sshpass -p *** ssh h"),
        ("mkdir -p /x && gcc -pthread a.c", "mkdir -p /x && gcc -pthread a.c"),
        ("PWD=/home/zuul MYSQL_PWD=hunter2", "PWD=/home/zuul MYSQL_PWD=***"),
        ("Authorization: Basic dXNlcjpwYXNz ok", "Authorization: Basic *** ok"),
        ("https://ci:hunter2@git.example.org/x", "https://ci:***@git.example.org/x"),
        ("password: ${DB_PASSWORD}", "password: ${DB_PASSWORD}"),
        ("%sudo ALL=(ALL) NOPASSWD: ALL", "%sudo ALL=(ALL) NOPASSWD: ALL"),
        ("token: ***", "token: ***"),  # redacting twice changes nothing
    ],
)
def test_redact_keeps_the_context(text: str, kept: str) -> None:
    assert redact(text) == kept


def test_pem_key_pushed_line_by_line() -> None:
    stream = StreamRedactor()
    key = ["AAAAB3NzaC1yc2EAAAADAQABAAABgQC7", "line two of the body", "another"]
    out = [stream.redact(x) for x in ["ts | -----BEGIN OPENSSH PRIVATE KEY-----", *key]]
    assert out == ["ts | -----BEGIN OPENSSH PRIVATE KEY-----" + REDACTED] + [REDACTED] * 3
    assert stream.open
    end = stream.redact("ts | -----END OPENSSH PRIVATE KEY----- token=abc")
    assert end == REDACTED + "-----END OPENSSH PRIVATE KEY----- token=***"
    assert not stream.open and stream.redact("after the key") == "after the key"


def test_an_unfinished_pem_block_ends_after_max_block_lines() -> None:
    stream = StreamRedactor(max_block_lines=3)
    stream.redact("-----BEGIN RSA PRIVATE KEY-----")
    assert [stream.redact(f"line {i}") for i in range(4)] == [REDACTED] * 3 + ["line 3"]


def test_pem_body_lines_are_redacted_without_the_begin_line() -> None:
    """A stream read again from the middle of a key (after a restart) still loses it."""
    stream = StreamRedactor()
    body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw"
    assert stream.redact(body) == REDACTED
    for digest in ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                   "3f9a7c1e2b4d6f8a0c2e4f6a8b0d2f4a6c8e0b1d"):  # fmt: skip
        assert stream.redact(digest) == digest


def test_hostile_lines_finish() -> None:
    """No pattern backtracks without bound: these finish like any other line."""
    for text in (
        "password=" * 20_000,
        "password:" + " " * 100_000 + "x",
        'token="' + "\\" * 100_000,
        "mysql " + " -p" * 30_000,
        "://" + ":" * 100_000 + "@",
        "-----BEGIN RSA PRIVATE KEY-----" * 5_000,
        "eyJ" + "a" * 50_000 + ".eyJ" + "b" * 50_000,
    ):
        assert len(redact(text)) <= len(text) + 4 * len(text) // 9 + 8


def test_may_hold_secret_is_false_for_plain_lines() -> None:
    assert not may_hold_secret("node n-17 ready in 42.1s on rack1")
    assert may_hold_secret("slack xoxb-123-abc")
    assert may_hold_secret("AKIAABCDEFGHIJKLMNOP")


def test_field_names() -> None:
    for key in ("password", "OS_PASSWORD", "client_secret", "api-key", "X-Subject-Token",
                "MYSQL_PWD", "pwd", "private_key", "AccessKey", "credentials"):  # fmt: skip
        assert is_secret_key(key), key
    for key in ("tokens_used", "password_expires_at", "key_name", "keypair", "token_type"):
        assert not is_secret_key(key), key


def test_stream_redactors_forget_the_least_recently_used() -> None:
    streams = StreamRedactors(max_streams=2)
    a = streams.get("a")
    streams.get("b")
    assert streams.get("a") is a
    streams.get("c")  # forgets b
    assert streams.get("a") is a
    assert streams.get("b") is not streams.get("c")
