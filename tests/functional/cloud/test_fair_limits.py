"""One tenant cannot stall or starve a region: finite default quotas, image caps,
volume limits that do not block boot-from-volume labels, a full address range that
fails fast, and name filters no pattern can stall. Over HTTP with openstacksdk."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openstack.exceptions
import pytest
from tests.functional.cloud.conftest import NewDatabase, Raw, token_for
from tests.support.region import RegionHandle, running_region

MiB = 1024 * 1024
IMAGES = {"max_size": MiB, "project_count": 3, "project_bytes": 3 * MiB // 2}


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory, new_db: NewDatabase) -> Iterator[RegionHandle]:
    with running_region(
        tmp_path_factory.mktemp("fair"), "fair", images=IMAGES, database=new_db(),
        network={"cidr": "198.18.7.0/29"},  # .2-.6: five instance addresses
    ) as handle:  # fmt: skip
        yield handle


def _project(region: RegionHandle, name: str) -> tuple[Any, Raw]:
    """A new project made the way every project is (no quota of its own)."""
    region.region.ensure_project(name, f"{name}-user", f"{name}-password", "member")
    conn = region.connect(auth={"username": f"{name}-user", "password": f"{name}-password",
                                "project_name": name})  # fmt: skip
    raw = Raw(region.url, token_for(region.url, f"{name}-user", f"{name}-password", name))
    return conn, raw


def _boot(conn: Any, name: str, count: int = 1) -> None:
    conn.compute.create_server(name=name, image_id="host", flavor_id="1", networks="auto",
                               min_count=count, max_count=count)  # fmt: skip


def test_a_new_project_gets_novas_default_quota_and_it_is_enforced(region: RegionHandle) -> None:
    conn, _ = _project(region, "newcomer")
    pid = conn.current_project_id
    q = conn.compute.get_quota_set(pid)
    assert (q.instances, q.cores, q.ram) == (10, 20, 51200)
    limits = conn.compute.get_limits().absolute
    assert (limits.instances, limits.total_cores, limits.total_ram) == (10, 20, 51200)
    with pytest.raises(openstack.exceptions.ForbiddenException, match="Quota exceeded"):
        _boot(conn, "greedy", count=11)
    assert list(conn.compute.servers()) == []  # nothing half-created


def test_volume_limits_do_not_make_boot_from_volume_labels_unusable(conn: Any) -> None:
    limits = conn.block_storage.get_limits().absolute
    assert (limits.max_total_volumes, limits.max_total_volume_gigabytes) == (-1, -1)
    quota = conn.block_storage.get_quota_set(conn.current_project_id)
    assert (quota.volumes, quota.gigabytes) == (-1, -1)


@pytest.fixture(scope="module")
def conn(region: RegionHandle) -> Any:
    return region.connect()


@pytest.fixture(scope="module")
def imager(region: RegionHandle) -> tuple[Any, Raw]:
    return _project(region, "imager")


def _queued(raw: Raw, name: str) -> str:
    r = raw.post("/image/v2/images", json={"name": name, "disk_format": "raw",
                                           "container_format": "bare"})  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _leftovers(region: RegionHandle) -> list[str]:
    return sorted(p.name for p in (Path(region.config.state_dir) / "images").iterdir())


def test_an_image_over_the_size_cap_is_refused_and_nothing_is_kept(
    region: RegionHandle, imager: tuple[Any, Raw]
) -> None:
    conn, raw = imager
    before = _leftovers(region)
    with pytest.raises(openstack.exceptions.HttpException) as err:
        conn.image.create_image(name="too-big", data=b"x" * (MiB + 1), disk_format="raw",
                                container_format="bare")  # fmt: skip
    assert err.value.status_code == 413
    # streamed without a length (chunked): refused once past the cap
    iid = _queued(raw, "streamed")

    def body() -> Iterator[bytes]:
        for _ in range(32):  # 8 MiB offered
            yield b"y" * (256 * 1024)

    try:
        r = raw.put(f"/image/v2/images/{iid}/file", content=body(),
                    headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert r.status_code == 413, r.text
    except httpx.TransportError:
        pass  # the server answered 413 and closed while the client was still sending
    image = raw.get(f"/image/v2/images/{iid}").json()
    assert (image["status"], image["size"]) == ("queued", None)
    assert _leftovers(region) == before
    assert raw.get("/").status_code == 200


def test_image_count_and_storage_quotas_per_project(
    region: RegionHandle, imager: tuple[Any, Raw]
) -> None:
    conn, raw = imager
    for img in list(conn.image.images(owner=conn.current_project_id)):
        conn.image.delete_image(img)
    first = conn.image.create_image(name="a", data=b"a" * MiB, disk_format="raw",
                                    container_format="bare")  # fmt: skip
    assert conn.image.get_image(first.id).status == "active"
    iid = _queued(raw, "b")
    r = raw.put(f"/image/v2/images/{iid}/file", content=b"b" * MiB,
                headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert r.status_code == 413 and "Quota exceeded" in r.text, r.text
    _queued(raw, "c")
    r = raw.post("/image/v2/images", json={"name": "d"})
    assert r.status_code == 413 and "Quota exceeded" in r.text, r.text
    assert sorted(i.name for i in conn.image.images(owner=conn.current_project_id)) == [
        "a", "b", "c"
    ]  # fmt: skip


def test_a_create_on_a_full_address_range_fails_at_once(region: RegionHandle) -> None:
    conn, raw = _project(region, "filler")
    _boot(conn, "fill", count=5)
    _boot(conn, "overflow")
    servers = {s.name: s for s in conn.compute.servers()}
    over = conn.compute.get_server(servers["overflow"].id)
    assert over.status == "ERROR"
    assert "no free address left in 198.18.7.0/29" in over.fault["message"]
    for s in servers.values():
        conn.compute.delete_server(s)


def test_a_hostile_name_filter_cannot_stall_the_api(region: RegionHandle) -> None:
    conn, raw = _project(region, "patterns")
    long = "a" * 250
    for i in range(4):  # within the default quota, names of 250 a's and a suffix
        raw.post(
            "/compute/v2.1/servers",
            json={
                "server": {
                    "name": long + f"-{i}",
                    "imageRef": "host",
                    "flavorRef": "1",
                    "networks": "none",
                }
            },
        )
    hostile = "(a+)+$"  # backtracking regex engines take exponential time on these names
    answers: dict[str, Any] = {}

    def attack() -> None:
        with httpx.Client(base_url=region.url, timeout=60) as c:
            answers["attack"] = c.get(
                "/compute/v2.1/servers/detail",
                params={"name": hostile},
                headers={"X-Auth-Token": raw.headers["X-Auth-Token"]},
            )

    attacker = threading.Thread(target=attack, daemon=True)
    attacker.start()
    # the API keeps answering while (and after) the hostile request runs
    assert httpx.get(region.url + "/", timeout=10).status_code == 200
    attacker.join(60)
    assert not attacker.is_alive(), "the hostile filter never returned"
    assert answers["attack"].status_code == 200
    assert answers["attack"].json()["servers"] == []
    matching = raw.get("/compute/v2.1/servers", params={"name": "^a+-[0-2]$"}).json()["servers"]
    assert len(matching) == 3
    bad = raw.get("/compute/v2.1/servers", params={"name": r"(a)\1"})
    assert bad.status_code == 400 and "name" in bad.json()["badRequest"]["message"]
    for s in conn.compute.servers():
        conn.compute.delete_server(s)
