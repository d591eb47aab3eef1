"""Fuzz every pool API endpoint (from its router) over real HTTP: no 5xx, every error in
OpenStack fault shape, no node request made by a request that failed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from tests.support.fuzz import (
    Endpoint,
    check,
    endpoints,
    fault_shape,
    fuzz_settings,
    requests_for,
    serve_app,
)

from rackpool.pool.api import create_app
from rackpool.pool.config import PoolConfig
from rackpool.pool.launcher import Launcher
from rackpool.pool.store import SqliteStore

TOKEN = "secret-token"


def _config() -> PoolConfig:
    pool = {"name": "main", "labels": [{"name": "small", "cores": 1, "ram": 512}]}
    return PoolConfig.model_validate(
        {"labels": [{"name": "small", "min-ready": 1}],
         "providers": [{"name": "f1", "driver": "fake", "pools": [pool]}],
         "api": {"token": TOKEN}, "timing": {"tick-interval": 0.02}}
    )  # fmt: skip


def shape(url: str, body: Any, status: int) -> str | None:
    return fault_shape(body, status)


class World:
    def __init__(self, tmp: Path) -> None:
        self.launcher = Launcher(_config(), SqliteStore(tmp / "pool.sqlite"))
        self.app = create_app(self.launcher, TOKEN)

    def start(self, url: str) -> None:
        self.launcher.start()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        self.client = httpx.Client(base_url=url, timeout=60)
        req = self.client.post("/api/requests", json={"labels": ["small"]}, headers=auth).json()
        nodes = [n["id"] for n in self.client.get("/api/nodes", headers=auth).json()]
        self.known = {"id": [req["id"], *nodes], "name": ["f1"], "action": ["pause", "resume"]}
        self.templates: dict[str, list[Any]] = {
            "POST /api/requests": [{"labels": ["small"], "priority": 100, "requestor": "ci"}],
            "POST /api/nodes/{id}/hold": [{"comment": "debugging"}],
        }
        self.headers = [auth, auth, {"Authorization": "Bearer wrong-token"}, {}]

    def snapshot(self) -> set[str]:
        return {r.id for r in self.launcher.store.list_requests()}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("poolfuzz"))
    with serve_app(w.app) as served:
        w.start(served.url)
        try:
            yield w
        finally:
            w.launcher.stop()


def _endpoints() -> list[Endpoint]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "pool.sqlite")
        try:
            return endpoints(create_app(Launcher(_config(), store), TOKEN))
        finally:
            store.close()


def _fuzz(world: World, ep: Endpoint, examples: int | None) -> None:
    @fuzz_settings(examples)
    @given(req=requests_for(ep, world.known, world.templates, world.headers))
    def run(req: Any) -> None:
        # a long ?wait= is the API doing its job (up to 600 s): keep examples short
        req.url = req.url.replace("wait=", "w=") if "/api/requests/" in req.url else req.url
        check(world.client, req, shape, world.snapshot, lambda a, b: b <= a)

    run()


@pytest.mark.parametrize("ep", _endpoints(), ids=str)
def test_fuzz_pool(world: World, ep: Endpoint) -> None:
    _fuzz(world, ep, None)


@pytest.mark.heavy
@pytest.mark.parametrize("ep", _endpoints(), ids=str)
def test_fuzz_pool_heavy(world: World, ep: Endpoint) -> None:
    _fuzz(world, ep, 300)
