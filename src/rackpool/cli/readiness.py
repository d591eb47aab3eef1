"""What ``rackpool up`` waits for before it says ``rackpool is up``: usable, not just listening.

Each check asks a daemon's public HTTP API, as any client would, and returns what is
not ready yet (empty when ready), so a wait that runs out can say why:

- a region: every host of the plan registered in this run (a heartbeat since the
  region started; rows left from an earlier run do not count) and ``up``: what the
  scheduler needs to place a server there; disabled hosts are reported, not waited on;
- the pool: its API answers, it has ticked, and every provider not paused by an
  operator has read its quota (limits and usage) and is in service;
- the index: the ops API answers ``/api/health``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from rackpool.cli.supervise import Daemon, StopSignal
from rackpool.core.clock import Timeout

POLL = 0.1


def wait_until(
    check: Callable[[], list[str]], what: str, stop: StopSignal, daemons: list[Daemon],
    timeout: float,
) -> None:  # fmt: skip
    """Poll ``check`` until it reports nothing missing; fail if a daemon exits first."""
    deadline = time.monotonic() + timeout
    missing = ["no answer yet"]
    while time.monotonic() < deadline:
        stop.check()
        for d in daemons:
            if not d.alive():
                raise Timeout(f"{d.name} {d.exit_text()} during start-up; see {d.log}")
        with contextlib.suppress(httpx.HTTPError, OSError, ValueError, KeyError, TypeError):
            missing = check()
            if not missing:
                return
        stop.sleep(POLL)
    raise Timeout(f"{what} not ready within {timeout:.0f}s: {'; '.join(missing)}")


def token(url: str, user: str, password: str, project: str) -> str:
    """A project-scoped token from the region's Identity v3."""
    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}  # fmt: skip
    r = httpx.post(f"{url}/identity/v3/auth/tokens", json=auth, timeout=10)
    r.raise_for_status()
    return r.headers["X-Subject-Token"]


def hosts_missing(url: str, admin_token: str, names: list[str], since: float) -> list[str]:
    """Hosts of ``names`` the scheduler cannot consider yet, each with the reason."""
    r = httpx.get(f"{url}/admin/v1/hosts", headers={"X-Auth-Token": admin_token}, timeout=5)
    r.raise_for_status()
    rows = {h["name"]: h for h in r.json()["hosts"]}
    missing = []
    for name in names:
        h = rows.get(name)
        if h is None:
            missing.append(f"host {name} not registered")
        elif h["state"] != "up" or float(h["last_heartbeat"] or 0) < since:
            missing.append(f"host {name} has not reported since the region started")
    return missing


def disabled_hosts(url: str, admin_token: str) -> list[str]:
    """``name (reason)`` for hosts an operator disabled: up, but not placeable."""
    r = httpx.get(f"{url}/admin/v1/hosts", headers={"X-Auth-Token": admin_token}, timeout=5)
    r.raise_for_status()
    return [
        f"{h['name']} ({h['disabled_reason'] or 'disabled'})"
        for h in r.json()["hosts"]
        if not h["enabled"]
    ]


def discovery(path: Path, pid: int | None) -> dict[str, Any] | None:
    """A daemon's discovery file, if the daemon with ``pid`` wrote it (not a dead one)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("pid") == pid else None


def pool_missing(url: str, api_token: str) -> list[str]:
    if httpx.get(f"{url}/ready", timeout=5).status_code != 200:
        return ["the pool has not run its first tick"]
    r = httpx.get(
        f"{url}/api/providers", headers={"Authorization": f"Bearer {api_token}"}, timeout=5
    )
    r.raise_for_status()
    missing = []
    for p in r.json():
        if p["paused"]:
            continue
        if not p["in_service"]:
            missing.append(f"provider {p['name']} out of service: {p['reason']}")
        elif not p["quota_known"]:
            missing.append(f"provider {p['name']} has not read its quota yet")
    return missing


def http_missing(url: str) -> list[str]:
    """Empty once ``url`` answers at all (a server listens and routes)."""
    return [] if httpx.get(url, timeout=1).status_code < 500 else [f"{url} answers 5xx"]


def ops_missing(url: str) -> list[str]:
    r = httpx.get(f"{url}/api/health", timeout=5)
    return [] if r.status_code == 200 else [f"/api/health answered {r.status_code}"]
