"""parse_json, query_int and query_number: hostile numbers and shapes are BadRequest."""

from __future__ import annotations

import pytest

from rackpool.core.errors import BadRequest
from rackpool.core.httpguard import is_json_type, parse_json, query_int, query_number


@pytest.mark.parametrize(
    "raw", [b"", b"  ", b"{", b"1e999", b"-1e999", b"1" + b"0" * 400, b"NaN", b"[" * 33 + b"]" * 33,
            b"[" * 2000 + b"]" * 2000, b'"\\ud800"', b"\xff"],
)  # fmt: skip
def test_parse_json_refuses(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_json(raw)


def test_parse_json_accepts_32_levels() -> None:
    assert parse_json(b"[" * 32 + b"]" * 32) is not None


@pytest.mark.parametrize("raw", ["１２", "٣", "1e3", "0x10", "1_000", "9" * 19, "", " ", "1.5"])
def test_query_int_refuses(raw: str) -> None:
    with pytest.raises(BadRequest):
        query_int(raw, "size", 1, 0, 10**9)


def test_query_int_bounds() -> None:
    assert query_int(None, "size", 7, 1, 10) == 7
    assert query_int(" 10 ", "size", 7, 1, 10) == 10
    with pytest.raises(BadRequest, match="between 1 and 10"):
        query_int("11", "size", 7, 1, 10)


@pytest.mark.parametrize("raw", ["1e999", "inf", "nan", "１", "1" * 50, "-1", "601"])
def test_query_number_refuses(raw: str) -> None:
    with pytest.raises(BadRequest):
        query_number(raw, "wait", 0.0, 0.0, 600.0)


def test_query_number_reads_what_clients_send() -> None:
    assert query_number("59.99999123456789", "wait", 0.0, 0.0, 600.0) == 59.99999123456789
    assert query_number("1e-05", "wait", 0.0, 0.0, 600.0) == 1e-05


@pytest.mark.parametrize(
    ("ctype", "ok"),
    [("application/json", True), ("application/json; charset=utf-8", True), ("", True),
     ("application/openstack-images-v2.1-json-patch", True), ("application/json-patch+json", True),
     ("application/vnd.openstack.compute+json", True), ("text/plain", False),
     ("application/x-www-form-urlencoded", False), ("application/octet-stream", False)],
)  # fmt: skip
def test_json_content_types(ctype: str, ok: bool) -> None:
    assert is_json_type(ctype) is ok
