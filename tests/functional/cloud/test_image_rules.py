"""Glance's rules between projects: only a cloud admin publishes, every PATCH is checked
against the image schema (a bad one is 4xx and changes nothing), and no project can
break another's listing or change what a name resolves to for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openstack.exceptions
import pytest
from tests.functional.cloud.conftest import Raw, token_for
from tests.support.region import RegionHandle

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


@pytest.fixture(scope="module")
def p2(region: RegionHandle) -> Raw:
    """The admin role, but on project p2 only."""
    region.region.ensure_project("p2img", "p2imgadmin", "p2-img-password", "admin")
    return Raw(region.url, token_for(region.url, "p2imgadmin", "p2-img-password", "p2img"))


@pytest.fixture
def image(raw: Raw) -> Iterator[dict[str, Any]]:
    body = {"name": "patch-me", "disk_format": "raw", "container_format": "bare",
            "tags": ["a"], "color": "blue"}  # fmt: skip
    img = raw.post("/image/v2/images", json=body).json()
    yield img
    raw.delete(f"/image/v2/images/{img['id']}")


def _patch(client: Raw, image_id: str, ops: Any) -> Any:
    return client.patch(f"/image/v2/images/{image_id}", json=ops, headers=PATCH)


@pytest.mark.parametrize("visibility", ["public", "community", "shared"])
def test_only_a_cloud_admin_widens_visibility(
    raw: Raw, p2: Raw, raw_admin: Raw, image: dict[str, Any], visibility: str
) -> None:
    op = [{"op": "replace", "path": "/visibility", "value": visibility}]
    assert _patch(raw, image["id"], op).status_code == 403
    body = {"name": "p2-wide", "visibility": visibility}
    assert p2.post("/image/v2/images", json=body).status_code == 403
    r = _patch(raw_admin, image["id"], op)
    assert r.status_code == 200 and r.json()["visibility"] == visibility
    # the owner may still rename it, and make it private again
    assert (
        _patch(raw, image["id"], [{"op": "replace", "path": "/name", "value": "n2"}]).status_code
        == 200
    )
    back = [{"op": "replace", "path": "/visibility", "value": "private"}]
    assert _patch(raw, image["id"], back).json()["visibility"] == "private"


BAD_PATCHES = [
    (400, [{"op": "replace", "path": "/visibility", "value": "everyone"}]),
    (400, [{"op": "replace", "path": "/disk_format", "value": "exe"}]),
    (400, [{"op": "replace", "path": "/container_format", "value": 5}]),
    (400, [{"op": "replace", "path": "/min_ram", "value": -1}]),
    (400, [{"op": "replace", "path": "/min_disk", "value": "10"}]),
    (400, [{"op": "replace", "path": "/protected", "value": "yes"}]),
    (400, [{"op": "replace", "path": "/name", "value": "x" * 256}]),
    (400, [{"op": "replace", "path": "/name", "value": {"nested": True}}]),
    (400, [{"op": "replace", "path": "/tags", "value": "not-a-list"}]),
    (400, [{"op": "replace", "path": "/tags", "value": [f"t{i}" for i in range(129)]}]),
    (400, [{"op": "replace", "path": "/tags", "value": ["x" * 256]}]),
    (400, [{"op": "add", "path": "/deep", "value": {"a": [1, 2]}}]),
    (400, [{"op": "add", "path": "/big", "value": "x" * 70000}]),
    (400, [{"op": "add", "path": "/a/b", "value": "nested path"}]),
    (400, [{"op": "add", "path": "/novalue"}]),
    (400, [{"op": "move", "path": "/name", "from": "/color"}]),
    (400, {"op": "replace", "path": "/name", "value": "not a list"}),
    (403, [{"op": "replace", "path": "/id", "value": "00000000-0000-0000-0000-000000000000"}]),
    (403, [{"op": "replace", "path": "/owner", "value": "someone-else"}]),
    (403, [{"op": "replace", "path": "/status", "value": "active"}]),
    (403, [{"op": "replace", "path": "/checksum", "value": "0" * 32}]),
    (403, [{"op": "add", "path": "/size", "value": 1}]),
    (403, [{"op": "remove", "path": "/name"}]),
    (409, [{"op": "remove", "path": "/no-such-property"}]),
    (409, [{"op": "replace", "path": "/no-such-property", "value": "v"}]),
]


@pytest.mark.parametrize(("code", "ops"), BAD_PATCHES)
def test_a_bad_patch_is_refused_and_changes_nothing(
    raw: Raw, image: dict[str, Any], code: int, ops: Any
) -> None:
    # a valid first operation must not be applied when a later one is bad
    body = [{"op": "replace", "path": "/name", "value": "half-applied"}]
    body += ops if isinstance(ops, list) else [ops]
    if not isinstance(ops, list):
        body = ops
    r = _patch(raw, image["id"], body)
    assert r.status_code == code, r.text
    after = raw.get(f"/image/v2/images/{image['id']}").json()
    assert {k: after[k] for k in image if k != "updated_at"} == {
        k: image[k] for k in image if k != "updated_at"
    }


def test_too_many_properties_is_400(raw: Raw, image: dict[str, Any]) -> None:
    ops = [{"op": "add", "path": f"/p{i}", "value": "v"} for i in range(128)]
    r = _patch(raw, image["id"], ops)
    assert r.status_code == 400 and "128" in r.json()["badRequest"]["message"]
    assert "p0" not in raw.get(f"/image/v2/images/{image['id']}").json()


def test_good_patch_through_openstacksdk(conn: Any, image: dict[str, Any]) -> None:
    img = conn.image.update_image(image["id"], name="renamed", color="red", tags=["a", "b"])
    assert (img.name, img.properties.get("color"), sorted(img.tags)) == (
        "renamed",
        "red",
        ["a", "b"],
    )
    with pytest.raises(openstack.exceptions.BadRequestException):
        conn.image.update_image(image["id"], disk_format="floppy")
    assert conn.image.get_image(image["id"]).disk_format == "raw"


def test_a_projects_images_never_change_another_projects_name_lookup(
    raw: Raw, p2: Raw, raw_admin: Raw, conn: Any, admin: Any
) -> None:
    mine = raw.post("/image/v2/images", json={"name": "builder"}).json()
    theirs = p2.post("/image/v2/images", json={"name": "builder"}).json()
    odd = p2.post("/image/v2/images", json={"name": "odd", "x-odd": "\u202e\x00" * 3}).json()
    try:
        # each project resolves the name to its own image; neither sees the other's
        assert conn.image.find_image("builder").id == mine["id"]
        assert conn.get_image("builder").id == mine["id"]
        assert {
            i["id"] for i in p2.get("/image/v2/images", params={"name": "builder"}).json()["images"]
        } == {theirs["id"]}
        # nor does the cloud admin's own lookup become ambiguous
        assert admin.image.find_image("builder") is None
        every = raw_admin.get("/image/v2/images", params={"name": "builder", "visibility": "all"})
        assert {i["id"] for i in every.json()["images"]} == {mine["id"], theirs["id"]}
        # another project's images never break this project's listing
        assert {i.name for i in conn.image.images()} >= {"builder", "host"}
        assert raw_admin.get("/image/v2/images", params={"visibility": "all"}).status_code == 200
    finally:
        raw.delete(f"/image/v2/images/{mine['id']}")
        p2.delete(f"/image/v2/images/{theirs['id']}")
        p2.delete(f"/image/v2/images/{odd['id']}")


def test_community_images_are_listed_only_on_request(raw: Raw, raw_admin: Raw, p2: Raw) -> None:
    img = raw_admin.post(
        "/image/v2/images", json={"name": "comm", "visibility": "community"}
    ).json()
    try:
        assert img["id"] not in {i["id"] for i in p2.get("/image/v2/images").json()["images"]}
        listed = p2.get("/image/v2/images", params={"visibility": "community"}).json()["images"]
        assert img["id"] in {i["id"] for i in listed}
        assert p2.get(f"/image/v2/images/{img['id']}").status_code == 200
    finally:
        raw_admin.delete(f"/image/v2/images/{img['id']}")
