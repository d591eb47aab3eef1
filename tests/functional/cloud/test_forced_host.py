"""Nova's forced host: ``availability_zone: "ZONE:HOST"`` places on exactly that host.

Through the real openstacksdk against a region with three fake hosts: ``r1-a`` and
``r1-b`` in zone ``az1`` (big), ``r1-c`` in ``az2`` (RAM for one m1.medium). A cloud
admin's server lands on the named host, every time, even where the scheduler would not
put it (spread) or where it would put nothing (a disabled host); a project member is
refused with Nova's policy error; an unknown host, a host outside the named zone or a
malformed value are 400s naming the mistake; a forced host that is down or full gets
"No valid host" like any server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openstack.exceptions
import pytest
from tests.support.postgres import NewDatabase
from tests.support.region import RegionHandle, running_region

from rackpool.core.clock import wait_for

HOSTS = [
    {"name": "r1-a", "availability_zone": "az1", "build_delay": 0.05},
    {"name": "r1-b", "availability_zone": "az1", "build_delay": 0.05},
    {"name": "r1-c", "availability_zone": "az2", "build_delay": 0.05, "ram_mb": 2200},
]  # fmt: skip


@pytest.fixture(scope="module")
def forced_region(
    tmp_path_factory: pytest.TempPathFactory, new_db: NewDatabase
) -> Iterator[RegionHandle]:
    hosts = {"heartbeat_interval": 0.2, "heartbeat_timeout": 1.5, "check_interval": 0.1}
    with running_region(
        tmp_path_factory.mktemp("forced"), fake_hosts=HOSTS, hosts=hosts, database=new_db()
    ) as r:
        yield r


@pytest.fixture
def admin(forced_region: RegionHandle) -> Any:
    return forced_region.connect(admin=True)


@pytest.fixture
def member(forced_region: RegionHandle) -> Any:
    return forced_region.connect()


def _host(conn: Any, sid: str) -> tuple[str, str]:
    s = conn.compute.get_server(sid)
    return s.compute_host, s.availability_zone


def _boot(conn: Any, name: str, az: str | None, flavor: str = "m1.tiny") -> Any:
    return conn.create_server(
        name, image="host", flavor=flavor, availability_zone=az, wait=True, timeout=30
    )


def _delete_all(conn: Any, servers: list[Any]) -> None:
    for s in servers:
        conn.delete_server(s.id, wait=True, timeout=30)


def test_admin_forced_servers_land_on_the_named_host(admin: Any) -> None:
    made: list[Any] = []
    try:
        # spread would alternate r1-a and r1-b; forced, all three go to r1-b
        for i in range(3):
            made.append(_boot(admin, f"forced-b-{i}", "az1:r1-b"))
            assert made[-1].status == "ACTIVE"
            assert _host(admin, made[-1].id) == ("r1-b", "az1")
        # the other forms Nova accepts: ZONE::NODE, ZONE:HOST:NODE and :HOST (zone of the host)
        made.append(_boot(admin, "forced-node", "az1::r1-a"))
        assert _host(admin, made[-1].id) == ("r1-a", "az1")
        made.append(_boot(admin, "forced-host-node", "az1:r1-a:r1-a"))
        assert _host(admin, made[-1].id) == ("r1-a", "az1")
        made.append(_boot(admin, "forced-no-zone", ":r1-c"))
        assert _host(admin, made[-1].id) == ("r1-c", "az2")
        # a zone alone still schedules within the zone
        made.append(_boot(admin, "zone-only", "az2"))
        assert _host(admin, made[-1].id) == ("r1-c", "az2")
    finally:
        _delete_all(admin, made)


def test_a_project_member_may_not_force_a_host(member: Any) -> None:
    before = {s.id for s in member.compute.servers()}
    with pytest.raises(openstack.exceptions.ForbiddenException) as err:
        _boot(member, "not-allowed", "az1:r1-a")
    assert "os_compute_api:servers:create:forced_host" in str(err.value)
    with pytest.raises(openstack.exceptions.ForbiddenException):
        _boot(member, "not-allowed", ":r1-a")
    assert {s.id for s in member.compute.servers()} == before  # nothing was created
    # the zone itself is fine for a member
    ok = _boot(member, "zone-ok", "az1")
    try:
        assert ok.status == "ACTIVE" and _host(member, ok.id)[1] == "az1"
    finally:
        _delete_all(member, [ok])


@pytest.mark.parametrize(
    ("az", "says"),
    [
        ("az1:r1-nope", "Compute host r1-nope could not be found"),
        ("az2:r1-a", "Compute host r1-a is not in availability zone 'az2'"),
        ("nowhere:r1-a", "The requested availability zone is not available"),
        ("az1:r1-a:r1-b", "node 'r1-b' is not on host 'r1-a'"),
        ("az1:", "names no host"),
        ("a:b:c:d", "Unsupported value for availability_zone"),
    ],
)
def test_bad_forced_hosts_are_refused_naming_the_mistake(admin: Any, az: str, says: str) -> None:
    before = {s.id for s in admin.compute.servers(all_projects=True)}
    with pytest.raises(openstack.exceptions.BadRequestException) as err:
        _boot(admin, "bad-forced", az)
    assert says in str(err.value)
    assert {s.id for s in admin.compute.servers(all_projects=True)} == before


def _admin_http(forced_region: RegionHandle, admin: Any) -> Any:
    import httpx

    return httpx.Client(
        base_url=forced_region.url, headers={"X-Auth-Token": admin.auth_token}, timeout=10
    )


def test_a_disabled_host_takes_forced_servers_only(forced_region: RegionHandle, admin: Any) -> None:
    http = _admin_http(forced_region, admin)
    made: list[Any] = []
    assert http.post("/admin/v1/hosts/r1-a/disable").status_code == 200
    try:
        # the scheduler sends nothing to a disabled host...
        for i in range(3):
            made.append(_boot(admin, f"unforced-{i}", "az1"))
            assert _host(admin, made[-1].id)[0] == "r1-b"
        # ...but an admin may still boot on it (to try a host under maintenance)
        made.append(_boot(admin, "forced-on-disabled", "az1:r1-a"))
        assert made[-1].status == "ACTIVE"
        assert _host(admin, made[-1].id) == ("r1-a", "az1")
    finally:
        assert http.post("/admin/v1/hosts/r1-a/enable").status_code == 200
        _delete_all(admin, made)


def test_a_forced_host_without_room_or_down_gives_no_valid_host(
    forced_region: RegionHandle, admin: Any
) -> None:
    made = [_boot(admin, "fills-c", "az2:r1-c", flavor="m1.medium")]  # r1-c's RAM
    try:
        assert made[0].status == "ACTIVE"
        with pytest.raises(openstack.exceptions.SDKException):
            _boot(admin, "no-room", "az2:r1-c", flavor="m1.tiny")
        full = next(s for s in admin.compute.servers(name="no-room"))
        made.append(full)
        assert full.status == "ERROR"
        assert "No valid host" in full.fault["message"]
        assert "r1-c has not enough free" in full.fault["message"]
        # r1-a stops heartbeating: down; a server forced onto it fails the same way
        runner = next(h for h in forced_region.region.fake_hosts if h.spec.name == "r1-a")
        runner.paused = True
        try:
            http = _admin_http(forced_region, admin)

            def down() -> bool:
                hosts = http.get("/admin/v1/hosts").json()["hosts"]
                return any(h["name"] == "r1-a" and h["state"] == "down" for h in hosts)

            wait_for(down, 15, "r1-a down")
            with pytest.raises(openstack.exceptions.SDKException):
                _boot(admin, "on-down", "az1:r1-a")
            gone = next(s for s in admin.compute.servers(name="on-down"))
            made.append(gone)
            assert "No valid host" in gone.fault["message"]
            assert "host r1-a is down" in gone.fault["message"]
        finally:
            runner.paused = False
    finally:
        _delete_all(admin, made)
