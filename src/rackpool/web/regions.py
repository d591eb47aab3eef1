"""What a region tells a reader account: its hosts and the pool project's quota.

Through the region's public OpenStack APIs like any client: Identity v3 for a token
(kept until shortly before it expires), then Nova's ``os-hypervisors/detail`` and
``os-services`` (hosts: up/down, enabled/disabled and why, capacity used) and
``os-quota-sets/{project}/detail`` (limits and usage). Only GETs follow the login.
Neither the password nor the token ever reaches a page or a log line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from rackpool.web.config import RegionReader, RegionSource

DEFAULT_COMPUTE = "/compute/v2.1"


@dataclass
class _Login:
    token: str
    expires: float
    compute: str
    identity: str
    project_ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RegionView:
    name: str
    url: str
    answering: bool
    hosts: list[dict[str, Any]] | None = None  # None: not read (no reader, or refused)
    quota: dict[str, dict[str, int]] | None = None  # resource -> {limit, in_use}
    note: str = ""  # why hosts/quota are missing


def _endpoint(catalog: list[dict[str, Any]], kind: str, default: str) -> str:
    for entry in catalog:
        if entry.get("type") == kind:
            for ep in entry.get("endpoints", []):
                if ep.get("interface") == "public" and ep.get("url"):
                    return str(ep["url"]).rstrip("/")
    return default


class RegionReaders:
    """Logins per region, reused until they expire."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self._logins: dict[str, _Login] = {}

    async def _login(self, region: RegionSource, reader: RegionReader) -> _Login:
        have = self._logins.get(region.name)
        if have is not None and have.expires > time.time() + 60:
            return have
        base = region.url.rstrip("/")
        domain = {"name": "Default"}
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": reader.username, "domain": domain,
                "password": reader.password.get_secret_value()}}},
            "scope": {"project": {"name": reader.project, "domain": domain}}}}  # fmt: skip
        resp = await self.client.post(base + "/identity/v3/auth/tokens", json=body)
        if resp.status_code != 201:
            raise PermissionError(f"the reader account was refused (HTTP {resp.status_code})")
        token = resp.json().get("token", {})
        catalog = token.get("catalog", [])
        expires = time.time() + 600  # log in again now and then; tokens last longer
        login = _Login(
            resp.headers["X-Subject-Token"],
            expires,
            _endpoint(catalog, "compute", base + DEFAULT_COMPUTE),
            base + "/identity/v3",
        )
        self._logins[region.name] = login
        return login

    async def _get(self, login: _Login, url: str) -> Any:
        resp = await self.client.get(url, headers={"X-Auth-Token": login.token})
        if resp.status_code == 401:
            login.expires = 0
        if resp.status_code >= 400:
            what = httpx.URL(url).path.rsplit("/v2.1/", 1)[-1]
            raise PermissionError(f"{what} answered HTTP {resp.status_code}")
        return resp.json()

    async def read(self, region: RegionSource) -> RegionView:
        base = region.url.rstrip("/")
        try:
            up = (await self.client.get(base + "/")).status_code < 500
        except httpx.HTTPError:
            return RegionView(region.name, region.url, False, note="the region did not answer")
        reader = region.reader
        if reader is None:
            return RegionView(region.name, region.url, up, note="no reader account configured")
        try:
            login = await self._login(region, reader)
            hyp = await self._get(login, login.compute + "/os-hypervisors/detail")
            svc = await self._get(login, login.compute + "/os-services?binary=nova-compute")
            quota = await self._quota(login, reader.quota_project)
        except (httpx.HTTPError, PermissionError, KeyError, ValueError) as exc:
            why = str(exc) if isinstance(exc, PermissionError) else type(exc).__name__
            return RegionView(region.name, region.url, up, note=f"hosts not read: {why}")
        return RegionView(region.name, region.url, up, _hosts(hyp, svc), quota)

    async def _quota(self, login: _Login, project: str | None) -> dict[str, dict[str, int]] | None:
        if not project:
            return None
        pid = login.project_ids.get(project)
        if pid is None:
            listed = await self._get(login, login.identity + "/projects")
            login.project_ids = {p["name"]: p["id"] for p in listed.get("projects", [])}
            pid = login.project_ids.get(project)
            if pid is None:
                return None
        detail = await self._get(login, f"{login.compute}/os-quota-sets/{pid}/detail")
        return {
            k: {"limit": int(v["limit"]), "in_use": int(v["in_use"])}
            for k, v in detail.get("quota_set", {}).items()
            if isinstance(v, dict) and k in ("instances", "cores", "ram")
        }


def _hosts(hyp: dict[str, Any], svc: dict[str, Any]) -> list[dict[str, Any]]:
    services = {s["host"]: s for s in svc.get("services", [])}
    out = []
    for h in hyp.get("hypervisors", []):
        name = h.get("hypervisor_hostname")
        s = services.get(name, {})
        out.append(
            {
                "name": name,
                "state": h.get("state"),
                "status": h.get("status"),
                "disabled_reason": s.get("disabled_reason") or "",
                "zone": s.get("zone", ""),
                "vcpus": h.get("vcpus", 0),
                "vcpus_used": h.get("vcpus_used", 0),
                "memory_mb": h.get("memory_mb", 0),
                "memory_mb_used": h.get("memory_mb_used", 0),
                "running_vms": h.get("running_vms", 0),
                "updated_at": s.get("updated_at", ""),
            }
        )
    return sorted(out, key=lambda x: str(x["name"]))
