"""Bad input gets the right 4xx fault naming what is wrong, and writes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from tests.functional.cloud.conftest import Raw
from tests.support.region import RegionHandle

from rackpool.cloud.db.schema import flavors, images, keypairs, servers

S = "/compute/v2.1/servers"
OK = {"name": "ok", "imageRef": "host", "flavorRef": "1"}


def srv(**changes: object) -> dict[str, object]:
    body = dict(OK)
    for k, v in changes.items():
        if v is ...:
            body.pop(k)
        else:
            body[k] = v
    return {"server": body}


CASES = [
    # (method, path, body or raw bytes, status, fault key, words the message must contain)
    ("POST", S, b"{not json", 400, "badRequest", "JSON"),
    ("POST", S, b"", 400, "badRequest", "empty"),
    ("POST", S, [], 400, "badRequest", "object"),
    ("POST", S, {"srv": {}}, 400, "badRequest", "server"),
    ("POST", S, srv(name=...), 400, "badRequest", "name"),
    ("POST", S, srv(name=""), 400, "badRequest", "name"),
    ("POST", S, srv(name=" padded "), 400, "badRequest", "whitespace"),
    ("POST", S, srv(name="x" * 256), 400, "badRequest", "255"),
    ("POST", S, srv(name=42), 400, "badRequest", "name"),
    ("POST", S, srv(flavorRef="nope"), 400, "badRequest", "flavorRef"),
    ("POST", S, srv(flavorRef=...), 400, "badRequest", "flavorRef"),
    ("POST", S, srv(imageRef="11111111-2222-3333-4444-555555555555"), 400, "badRequest", "imageRef"),
    ("POST", S, srv(imageRef=...), 400, "badRequest", "imageRef"),
    ("POST", S, srv(key_name="missing-key"), 400, "badRequest", "key_name"),
    ("POST", S, srv(metadata="a=b"), 400, "badRequest", "metadata"),
    ("POST", S, srv(metadata={"k": 1}), 400, "badRequest", "metadata"),
    ("POST", S, srv(user_data="%%% not base64"), 400, "badRequest", "user_data"),
    ("POST", S, srv(networks=42), 400, "badRequest", "networks"),
    ("POST", S, srv(min_count=0), 400, "badRequest", "min_count"),
    ("POST", S, srv(min_count=3, max_count=2), 400, "badRequest", "min_count"),
    ("POST", S, srv(availability_zone="mars"), 400, "badRequest", "availability zone"),
    ("POST", S, srv(bogus_field=1), 400, "badRequest", "bogus_field"),
    ("POST", S, srv(config_drive="maybe"), 400, "badRequest", "config_drive"),
    ("GET", S + "/does-not-exist", None, 404, "itemNotFound", "does-not-exist"),
    ("DELETE", S + "/does-not-exist", None, 404, "itemNotFound", "does-not-exist"),
    ("GET", S + "/detail?limit=-1", None, 400, "badRequest", "limit"),
    ("GET", S + "/detail?marker=nope", None, 400, "badRequest", "marker"),
    ("GET", "/compute/v2.1/flavors/999", None, 404, "itemNotFound", "999"),
    ("POST", "/compute/v2.1/os-keypairs", {"keypair": {"name": "bad/name"}}, 400, "badRequest", "name"),
    ("POST", "/compute/v2.1/os-keypairs", {"keypair": {"name": "k", "public_key": "nonsense"}}, 400, "badRequest", "public_key"),
    ("POST", "/compute/v2.1/os-keypairs", {"keypair": {}}, 400, "badRequest", "name"),
    ("POST", S + "/x/action", {"reboot": {}}, 404, "itemNotFound", "x"),
    ("POST", "/image/v2/images", {"name": "i", "disk_format": "exe"}, 400, "badRequest", "disk_format"),
    ("POST", "/image/v2/images", {"name": "i", "visibility": "galactic"}, 400, "badRequest", "visibility"),
    ("POST", "/image/v2/images", {"name": "i", "status": "active"}, 403, "forbidden", "status"),
    ("POST", "/image/v2/images", {"name": "i", "visibility": "public"}, 403, "forbidden", "public"),
    ("GET", "/image/v2/images/nope", None, 404, "itemNotFound", "nope"),
    ("PUT", "/image/v2/images/nope/file", b"data", 404, "itemNotFound", "nope"),
    ("GET", "/compute/v2.1/no-such-api", None, 404, "itemNotFound", "no-such-api"),
]  # fmt: skip


def _counts(region: RegionHandle) -> tuple[int, ...]:
    with region.region.engine.connect() as c:
        return tuple(
            c.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (servers, images, keypairs, flavors)
        )


@pytest.mark.parametrize(("method", "path", "body", "status", "key", "words"), CASES)
def test_bad_input(region: RegionHandle, raw: Raw, method, path, body, status, key, words) -> None:
    before = _counts(region)
    if isinstance(body, bytes):
        r = raw.request(method, path, content=body, headers={"Content-Type": "application/json"})
    else:
        r = raw.request(method, path, json=body)
    assert r.status_code == status, r.text
    fault = r.json()[key]
    assert fault["code"] == status
    assert words.lower() in fault["message"].lower(), fault["message"]
    assert _counts(region) == before, "a rejected request must not leave rows behind"


def test_quota_failure_writes_nothing(region: RegionHandle, raw: Raw, raw_admin: Raw, conn) -> None:
    pid = conn.current_project_id
    assert (
        raw_admin.put(
            f"/compute/v2.1/os-quota-sets/{pid}", json={"quota_set": {"instances": 0}}
        ).status_code
        == 200
    )
    try:
        before = _counts(region)
        r = raw.post(S, json=srv(min_count=2, max_count=2))
        assert r.status_code == 403 and "Quota exceeded" in r.json()["forbidden"]["message"]
        assert _counts(region) == before
    finally:
        raw_admin.put(f"/compute/v2.1/os-quota-sets/{pid}", json={"quota_set": {"instances": -1}})


def test_an_empty_quota_set_changes_nothing_and_answers_the_quota(
    raw_admin: Raw, conn: Any
) -> None:
    """Nova answers ``{"quota_set": {}}`` with the current quota; it was a 500 on
    PostgreSQL (an UPDATE with no column), found by the heavy fuzz budget."""
    pid = conn.current_project_id
    path = f"/compute/v2.1/os-quota-sets/{pid}"
    before = raw_admin.get(path).json()["quota_set"]
    r = raw_admin.put(path, json={"quota_set": {}})
    assert r.status_code == 200, r.text
    assert {k: r.json()["quota_set"][k] for k in ("cores", "ram", "instances")} == {
        k: before[k] for k in ("cores", "ram", "instances")
    }
    gone = raw_admin.put("/compute/v2.1/os-quota-sets/no-such-project", json={"quota_set": {}})
    assert gone.status_code == 404 and "no-such-project" in gone.json()["itemNotFound"]["message"]


AUTH_PATH = "/identity/v3/auth/tokens"
SCOPE = {"project": {"name": "ci", "domain": {"name": "Default"}}}


@pytest.mark.parametrize(
    "identity",
    [
        {"methods": ["password"], "password": 4.283315673335868e16},
        {"methods": ["password"], "password": ["user"]},
        {"methods": ["password"], "password": {"user": "alice"}},
        {"methods": "password", "password": {"user": {"name": "a", "password": "b"}}},
        {"methods": 7, "password": {"user": {"name": "a", "password": "b"}}},
        "kkkk",
    ],
    ids=["number", "list", "user-string", "methods-string", "methods-number", "string"],
)
def test_a_malformed_password_login_is_a_4xx_in_keystones_shape(
    region: RegionHandle, identity: Any
) -> None:
    body = {"auth": {"identity": identity, "scope": SCOPE}}
    r = httpx.post(region.url + AUTH_PATH, json=body, timeout=10)
    assert r.status_code in (400, 401), r.text
    err = r.json()["error"]
    assert err["code"] == r.status_code and err["message"]
