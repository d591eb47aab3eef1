"""Quota sets, compute services and hypervisors through openstacksdk, and what a member
or a bad request gets from them (4xx in OpenStack fault shape)."""

from __future__ import annotations

from typing import Any

import openstack.exceptions as os_exc
import pytest
from tests.functional.cloud.conftest import Raw
from tests.support.region import RegionHandle


def test_quota_sets_of_each_service(conn: Any, raw_admin: Raw) -> None:
    pid = conn.current_project_id
    r = raw_admin.put(
        f"/compute/v2.1/os-quota-sets/{pid}", json={"quota_set": {"cores": 9, "instances": 4}}
    )
    assert r.status_code == 200, r.text
    try:
        compute = conn.compute.get_quota_set(pid)
        assert (compute.cores, compute.instances, compute.metadata_items) == (9, 4, 128)
        defaults = conn.compute.get_quota_set_defaults(pid)
        assert (defaults.cores, defaults.ram, defaults.instances) == (20, 51200, 10)  # Nova's
        volume = conn.block_storage.get_quota_set(pid, usage=True)
        # no volumes here, so no volume limit is enforced: -1, as /volume/v3/limits says
        assert volume.volumes == -1 and volume.gigabytes == -1 and volume.usage["volumes"] == 0
        limits = conn.block_storage.get_limits().absolute
        assert (limits.max_total_volumes, limits.max_total_volume_gigabytes) == (-1, -1)
        assert conn.network.get_quota(pid).ports == 4
    finally:
        raw_admin.put(
            f"/compute/v2.1/os-quota-sets/{pid}",
            json={"quota_set": {"cores": 20, "instances": 10}},
        )


@pytest.mark.parametrize(
    "path",
    [
        "/compute/v2.1/os-quota-sets/{other}",
        "/compute/v2.1/os-quota-sets/{other}/detail",
        "/volume/v3/{mine}/os-quota-sets/{other}",
        "/network/v2.0/quotas/{other}",
    ],
)
def test_a_member_cannot_read_another_projects_quota(
    raw: Raw, raw_admin: Raw, conn: Any, admin: Any, path: str
) -> None:
    url = path.format(other=admin.current_project_id, mine=conn.current_project_id)
    r = raw.get(url)
    assert r.status_code == 403, r.text
    assert "admin" in r.text
    assert raw_admin.get(url).status_code == 200


def test_unknown_project_quota_is_404(raw_admin: Raw, admin: Any) -> None:
    for url in (
        "/compute/v2.1/os-quota-sets/nosuchproject",
        f"/volume/v3/{admin.current_project_id}/os-quota-sets/nosuchproject",
        "/network/v2.0/quotas/nosuchproject",
    ):
        r = raw_admin.get(url)
        assert r.status_code == 404, (url, r.text)


def test_compute_services_are_the_hosts_and_the_controller(
    admin: Any, region: RegionHandle
) -> None:
    services = list(admin.compute.services())
    computes = {s.host: s for s in services if s.binary == "nova-compute"}
    assert set(computes) == {h.name for h in region.config.fake_hosts}
    assert all(s.state == "up" and s.status == "enabled" for s in computes.values())
    assert {s.binary for s in services} >= {"nova-scheduler", "nova-conductor"}
    # hypervisor and service agree on the id and host
    hyp = admin.compute.get_hypervisor(next(iter(computes.values())).id)
    assert hyp.service_details["host"] == hyp.name


def test_disabling_a_compute_service_disables_its_host(admin: Any, raw_admin: Raw) -> None:
    body = {"host": "r1-fake2", "binary": "nova-compute", "disabled_reason": "maintenance"}
    r = raw_admin.put("/compute/v2.1/os-services/disable-log-reason", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["service"]["status"] == "disabled"
    try:
        (svc,) = admin.compute.services(host="r1-fake2")
        assert (svc.status, svc.disabled_reason) == ("disabled", "maintenance")
        hosts = {h["name"]: h for h in raw_admin.get("/admin/v1/hosts").json()["hosts"]}
        assert hosts["r1-fake2"]["enabled"] is False
    finally:
        body = {"host": "r1-fake2", "binary": "nova-compute"}
        assert raw_admin.put("/compute/v2.1/os-services/enable", json=body).status_code == 200
    (svc,) = admin.compute.services(host="r1-fake2")
    assert svc.status == "enabled"


@pytest.mark.parametrize(
    ("action", "body", "code", "fault"),
    [
        ("disable", {"host": "r1-fake1", "binary": "nova-scheduler"}, 400, "badRequest"),
        ("disable", {"host": "no-such-host", "binary": "nova-compute"}, 404, "itemNotFound"),
        ("disable", {"binary": "nova-compute"}, 400, "badRequest"),
        ("disable", [], 400, "badRequest"),
        ("reboot", {"host": "r1-fake1", "binary": "nova-compute"}, 404, "itemNotFound"),
    ],
)
def test_bad_service_actions(raw_admin: Raw, action: str, body: Any, code: int, fault: str) -> None:
    r = raw_admin.put(f"/compute/v2.1/os-services/{action}", json=body)
    assert r.status_code == code, r.text
    assert r.json()[fault]["message"]


def test_members_cannot_see_services_or_hypervisors(conn: Any, raw: Raw) -> None:
    with pytest.raises(os_exc.ForbiddenException):
        list(conn.compute.services())
    for path in ("/compute/v2.1/os-services", "/compute/v2.1/os-aggregates"):
        r = raw.get(path)
        assert r.status_code == 403 and r.json()["forbidden"]["message"]


def test_hypervisor_uptime_is_not_implemented(raw_admin: Raw) -> None:
    r = raw_admin.get("/compute/v2.1/os-hypervisors/r1-fake1/uptime")
    assert r.status_code == 501 and r.json()["notImplemented"]["message"]
    assert raw_admin.get("/compute/v2.1/os-hypervisors/nope/uptime").status_code == 404
