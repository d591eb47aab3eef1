"""Every region API refuses oversized, non-JSON, too deep or unreadable bodies with a
4xx in its own fault shape (the BodyGuard in front of the app, body_json behind it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.functional.cloud.conftest import Raw

from rackpool.core.httpguard import DEFAULT_MAX_BODY

S = "/compute/v2.1/servers"
BIG = b'{"server": {"name": "' + b"x" * DEFAULT_MAX_BODY + b'"}}'


def _chunks() -> Iterator[bytes]:
    for i in range(0, len(BIG), 65536):
        yield BIG[i : i + 65536]


def test_body_over_the_limit_is_413_before_and_while_reading(raw: Raw) -> None:
    r = raw.post(S, content=BIG, headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["overLimit"]["code"] == 413
    chunked = raw.post(S, content=_chunks(), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413, chunked.text
    assert "larger than" in chunked.json()["overLimit"]["message"]


@pytest.mark.parametrize(
    ("path", "shape"),
    [(S, "badRequest"), ("/identity/v3/auth/tokens", "error"), ("/network/v2.0/ports", "NeutronError")],
)  # fmt: skip
def test_each_api_answers_in_its_own_shape(raw: Raw, path: str, shape: str) -> None:
    r = raw.post(
        path, content=b"a=b", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 415, r.text
    assert list(r.json()) == [shape if shape != "badRequest" else "unsupportedMediaType"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"[" * 40 + b"]" * 40, "deeper"),
        (b'{"server": {"name": "n", "min_count": 1e999}}', "invalid JSON"),
        (b'{"server": {"name": "n", "min_count": 1' + b"0" * 400 + b"}}", "invalid JSON"),
        (b'{"server": {"name": "n", "imageRef": "host", "flavorRef": "1", "min_count": "\xef\xbc\x91\xef\xbc\x92"}}', "min_count"),
        (b"\xff\xfe\x00garbage", "JSON"),
        (b"   ", "empty"),
    ],
)  # fmt: skip
def test_unreadable_bodies_are_400(raw: Raw, body: bytes, words: str) -> None:
    r = raw.post(S, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert words in r.json()["badRequest"]["message"]


def test_json_patch_and_charset_content_types_are_accepted(raw: Raw) -> None:
    image = raw.post("/image/v2/images", json={"name": "ct", "disk_format": "raw",
                                               "container_format": "bare"}).json()  # fmt: skip
    patch = b'[{"op": "replace", "path": "/name", "value": "ct2"}]'
    ctype = "application/openstack-images-v2.1-json-patch"
    r = raw.patch(f"/image/v2/images/{image['id']}", content=patch, headers={"Content-Type": ctype})
    assert r.status_code == 200, r.text
    r = raw.post("/compute/v2.1/os-keypairs", content=b'{"keypair": {"name": "ct"}}',
                 headers={"Content-Type": "application/json; charset=UTF-8"})  # fmt: skip
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("limit", ["１２", "1e3", "10" * 200, "-1", "x"])
def test_query_numbers_must_be_ascii_integers(raw: Raw, limit: str) -> None:
    r = raw.get(f"{S}/detail", params={"limit": limit})
    assert r.status_code == 400, r.text
    assert "limit" in r.json()["badRequest"]["message"]
