"""The overview's quota and usage for every provider, from the pool's provider status:
a rackpool region the dashboard reads with its reader account (the pool's count and the
region's own, each labelled), and a second pool whose providers are a fake cloud with a
quota, static hosts and an openstack provider on the same region that this second
dashboard is not told about (so only the pool's count can show its quota)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any

import httpx
import pytest
import yaml
from tests.functional.pool.daemon import PoolProcess
from tests.functional.pool.test_daemon import rackpool
from tests.functional.web.helpers import Dashboard, admin_token, region_urls
from tests.support import procs

from rackpool.core.clock import wait_for


def quota_rows(html: str) -> list[list[str]]:
    """The cells (as text) of every row of the overview's "Quota and usage" table."""
    section = html.split('id="quota"', 1)[1].split("<h2", 1)[0]
    body = section.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body)
    ]


def provider_cell(html: str, name: str) -> str:
    """The providers table's quota cell of ``name`` (8th column)."""
    table = html.split("<h2>Providers</h2>", 1)[1].split("<h2", 1)[0]
    for row in re.findall(r"<tr>(.*?)</tr>", table):
        cells = re.findall(r"<td>(.*?)</td>", row)
        if cells and f">{name}</a>" in cells[0]:
            return unescape(cells[7])
    raise AssertionError(f"no provider row {name}")


def region_count(dash: Dashboard, region: str = "r1") -> dict[str, tuple[int, int]]:
    """The region's own count of the ci project (Nova's os-quota-sets detail, as admin)."""
    base = region_urls(dash)[region]
    h = {"X-Auth-Token": admin_token(dash, region)}
    projects = httpx.get(base + "/identity/v3/projects", headers=h).json()["projects"]
    pid = next(p["id"] for p in projects if p["name"] == "ci")
    detail = httpx.get(f"{base}/compute/v2.1/os-quota-sets/{pid}/detail", headers=h).json()
    q = detail["quota_set"]
    return {k: (q[k]["in_use"], q[k]["limit"]) for k in ("instances", "cores", "ram")}


def _wait_rows(url: str, ok: Any, what: str) -> tuple[str, list[list[str]]]:
    seen: list[Any] = []

    def check() -> bool:
        html = httpx.get(url + "/", timeout=30).text
        seen[:] = [html, quota_rows(html)]
        return bool(ok(seen[1]))

    try:
        wait_for(check, 60, what, interval=0.5)
    except Exception as exc:
        raise AssertionError(f"{what}; the quota table says {seen[1:]}") from exc
    return seen[0], seen[1]


def _row(rows: list[list[str]], provider: str, resource: str, by: str) -> list[str]:
    found = [r for r in rows if r[0] == provider and r[1] == resource and r[2].startswith(by)]
    assert len(found) == 1, (provider, resource, by, rows)
    return found[0]


def test_a_read_region_shows_the_pools_count_and_its_own_each_labelled(dash: Dashboard) -> None:
    resources = (("instances", "instances"), ("cores", "cores"), ("ram", "RAM (MiB)"))

    def agree(rows: list[list[str]]) -> bool:
        own = region_count(dash)
        return all(
            _row(rows, "r1", label, "the pool")[3:5] == [str(own[k][1]), str(own[k][0])]
            for k, label in resources
        )

    html, rows = _wait_rows(dash.url, agree, "the pool's count of r1 to match the region's")
    own = region_count(dash)
    pool_row = _row(rows, "r1", "instances", "the pool")
    region_row = _row(rows, "r1", "instances", "region r1's own count (project ci)")
    assert own["instances"][0] >= 1  # up's min-ready node and the planted request's
    assert pool_row[3:5] == [str(own["instances"][1]), str(own["instances"][0])]
    for k, label in resources:  # nothing changes meanwhile: both say the same
        mine = _row(rows, "r1", label, "the pool")
        theirs = _row(rows, "r1", label, "region r1's own count (project ci)")
        assert theirs[3:5] == mine[3:5] == [str(own[k][1]), str(own[k][0])], (mine, theirs)
    # this pool's nodes + other servers = in use; the read times are said
    assert int(pool_row[5]) + int(pool_row[6]) == int(pool_row[4])
    assert re.fullmatch(r"limits (\d+[smhd] ?)+ ago, servers (\d+[smhd] ?)+ ago", pool_row[10])
    assert "read now, as its reader account" in region_row[10]
    # the providers table: the pool's count only, named as such in the header
    assert "Quota (used / limit, as the pool counts)" in html
    cell = provider_cell(html, "r1")
    (i, il), (c, cl), (r, rl) = own["instances"], own["cores"], own["ram"]
    assert cell == f"instances {i} / {il}, cores {c} / {cl}, RAM {r} MiB / {rl} MiB"
    # a bar per limited resource, values written, told apart by pattern
    assert f'aria-label="Quota used by provider: r1 instances {i} / {il} (' in html
    assert "url(#quota-solid)" in html


@dataclass
class SecondPool:
    pool: PoolProcess
    web: str


@pytest.fixture(scope="module")
def second(dash: Dashboard, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecondPool]:
    """Another pool on a fake cloud with a quota, two static hosts and the region r1
    (the ci project, shared with up's pool), and a dashboard that knows no region."""
    here = tmp_path_factory.mktemp("second-pool")
    node = {"cloud-image": "host", "flavor-name": "m1.small", "username": "root"}
    cfg = {
        "pool-name": "second",
        "state-dir": str(here / "state"),
        "api": {"port": 0, "token": "second-pool-token"},
        "timing": {"tick-interval": 0.05, "cleanup-interval": 0.5},
        "labels": [{"name": n, "min-ready": 0} for n in ("sim", "lab", "cloud")],
        "providers": [
            {"name": "sim", "driver": "fake", "boot-delay": 0.01,
             "quota": {"instances": 3, "cores": 6, "ram": 3072},
             "pools": [{"name": "main", "max-servers": 2,
                        "labels": [{"name": "sim", "cores": 2, "ram": 1024}]}]},
            {"name": "lab", "driver": "static",
             "pools": [{"nodes": [{"name": f"127.0.0.{i}", "labels": ["lab"],
                                   "host-key-checking": False} for i in (2, 3)]}]},
            {"name": "r1-direct", "driver": "openstack", "cloud": "rackpool-r1",
             "region-name": "r1", "clouds-yaml": str(dash.up.state / "clouds.yaml"),
             "host-key-checking": False, "poll-interval": 0.1,
             "pools": [{"name": "main", "labels": [{"name": "cloud", **node}]}]},
        ],
    }  # fmt: skip
    pool = PoolProcess(here / "pool", cfg).start()
    web_dir = here / "web"
    web_dir.mkdir()
    web_cfg = {"pool": {"url": pool.url, "token": "second-pool-token"},
               "ops": {"url": dash.ops_url}, "regions": [], "state_dir": str(web_dir),
               "history": {"interval": 0}}  # fmt: skip
    (web_dir / "web.yaml").write_text(yaml.safe_dump(web_cfg))
    proc = None
    try:
        proc = procs.spawn(
            ["web", "serve", "--config", str(web_dir / "web.yaml")], here / "web.out"
        )
        procs.wait_started(proc, (web_dir / "web.json").exists, 30, "dashboard", here / "web.out")
        yield SecondPool(pool, json.loads((web_dir / "web.json").read_text())["url"])
    finally:
        procs.stop(proc)
        pool.stop()


def test_every_provider_shows_its_quota_not_only_regions(
    dash: Dashboard, second: SecondPool
) -> None:
    _, rows = _wait_rows(
        second.web, lambda rows: any(r[0] == "sim" and r[2] == "the pool" for r in rows),
        "the second pool's quota to be read",
    )  # fmt: skip
    assert _row(rows, "sim", "instances", "the pool")[3:7] == ["3", "0", "0", "0"]
    assert _row(rows, "lab", "hosts (static)", "the pool")[3:5] == ["2", "0"]
    client = second.pool.client()
    for label in ("sim", "lab", "cloud"):
        req = client.request([label], 100, "quota-test")
        assert client.wait(req["id"], 60)["state"] == "fulfilled", label

    def counted(rows: list[list[str]]) -> bool:
        own = region_count(dash)
        cloud = _row(rows, "r1-direct", "instances", "the pool")
        return _row(rows, "sim", "instances", "the pool")[4] == "1" and cloud[4:6] == [
            str(own["instances"][0]),
            "1",
        ]

    html, rows = _wait_rows(second.web, counted, "the launched nodes in the quota table")
    # the fake cloud: limit, in use by this pool's nodes (2 cores, 1024 MiB each), the cap
    assert _row(rows, "sim", "instances", "the pool")[3:10] == ["3", "1", "1", "0", "2", "33%",
                                                                  "main: 1 / 2"]  # fmt: skip
    assert _row(rows, "sim", "cores", "the pool")[3:9] == ["6", "2", "2", "0", "4", "33%"]
    assert _row(rows, "sim", "RAM (MiB)", "the pool")[3:9] == ["3072", "1024", "1024", "0",
                                                                "2048", "33%"]  # fmt: skip
    assert provider_cell(html, "sim") == "instances 1 / 3, cores 2 / 6, RAM 1024 MiB / 3072 MiB"
    # static hosts: one node each
    assert _row(rows, "lab", "hosts (static)", "the pool")[3:9] == ["2", "1", "1", "0", "1", "50%"]
    assert provider_cell(html, "lab") == "hosts 1 / 2"
    # the region this dashboard is not told about: the pool's count only, up's servers
    # in the same project counted as other servers, as the region itself counts them
    own = region_count(dash)
    cloud = _row(rows, "r1-direct", "instances", "the pool")
    assert cloud[3] == str(own["instances"][1]) and int(cloud[6]) == own["instances"][0] - 1
    assert int(cloud[6]) >= 1  # up's own nodes
    assert not [r for r in rows if r[2].startswith("region")]
    label = re.search(r'aria-label="(Quota used by provider: [^"]*)"', html)
    assert label is not None
    for said in ("sim instances 1 / 3 (33%)", "sim cores 2 / 6 (33%)",
                 "sim RAM 1024 / 3072 MiB (33%)", "lab hosts 1 / 2 (50%)", "r1-direct instances"):  # fmt: skip
        assert said in label.group(1), label.group(1)
    assert "the pool has not read" not in html
    # the same figures in rackpool provider list
    out = rackpool("provider", "list", "--state-dir", str(second.pool.state_dir))
    assert out.returncode == 0, out.stderr
    listed = {line.split()[0]: line for line in out.stdout.splitlines()[1:]}
    assert "instances 1/3 cores 2/6 ram 1024/3072 main max-servers 1/2" in listed["sim"]
    assert " hosts 1/2 " in listed["lab"]
    assert f"instances {own['instances'][0]}/{own['instances'][1]} " in listed["r1-direct"]


def test_over_the_limit_unread_and_older_pools_say_so() -> None:
    """What the table and bars say when others' servers push a provider over its limit,
    when the pool has not read a provider yet, and for a pool without these fields."""
    from rackpool.web.pages.overview import pool_quota_text, quota_section

    def figure(limit: int, pool: int, other: int) -> dict[str, int]:
        return {"limit": limit, "in_use": pool + other, "pool": pool, "other": other}

    full = {"name": "full", "region": "", "quota_known": True, "caps": [],
            "quota": {"instances": figure(2, 1, 2), "cores": figure(-1, 1, 2),
                      "ram": figure(-1, 0, 0), "limits_read_at": 1.0, "usage_read_at": 1.0,
                      "hosts": None}}  # fmt: skip
    unread = {"name": "unread", "region": "", "quota_known": False, "quota": None,
              "caps": [{"pool": "main", "max_servers": 4, "max_cores": None, "max_ram": 2048,
                        "instances": 0, "cores": 0, "ram": 0}]}  # fmt: skip
    older = {"name": "older", "region": "", "quota_known": True}
    html = quota_section([full, unread, older], {}, {})
    rows = quota_rows(html)
    assert _row(rows, "full", "instances", "the pool")[3:9] == ["2", "3", "1", "2", "0", "150%"]
    assert _row(rows, "full", "cores", "the pool")[3:9] == ["unlimited", "3", "1", "2",
                                                             "no limit", ""]  # fmt: skip
    assert "full instances 3 / 2 (150%) OVER THE LIMIT" in html
    assert "full cores" not in html.split("<table>", 1)[0]  # no bar without a limit
    unread_row = [r for r in rows if r[0] == "unread"][0]
    assert unread_row[3] == "not read" and "has not read its limits" in unread_row[10]
    assert unread_row[9] == "main: max-servers 0 / 4, main: max-ram 0 / 2048"
    older_row = [r for r in rows if r[0] == "older"][0]
    assert "does not publish its count" in older_row[10]
    assert pool_quota_text(full) == "instances 3 / 2, cores 3 / unlimited"
    assert pool_quota_text(unread) == "not read yet by the pool"
    assert pool_quota_text(older) == "read"
