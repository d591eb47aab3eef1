"""Fuzz every ops API endpoint (from its router) over real HTTP: no 5xx, every error in
OpenStack fault shape, no document indexed by a push that failed."""

from __future__ import annotations

import tempfile
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

from rackpool.core.clock import SystemClock
from rackpool.ops.api import ApiDeps, build_app
from rackpool.ops.classify import Classifier
from rackpool.ops.failures import FailureStore
from rackpool.ops.index.sqlite import SqliteIndex
from rackpool.ops.signatures import builtin_dir, load_signatures
from rackpool.ops.tokens import mint

TOKEN = "push-token-0123456789"
SECRET = "ingest-secret-0123456789"


def _deps(tmp: Path) -> ApiDeps:
    clock = SystemClock()
    index = SqliteIndex(tmp / "index", clock=clock)
    store = FailureStore(tmp / "failures.db")
    classifier = Classifier(index, store, load_signatures([builtin_dir()]), clock=clock)
    return ApiDeps(index, store, classifier, TOKEN, clock, ingest_secret=SECRET)


def shape(url: str, body: Any, status: int) -> str | None:
    return fault_shape(body, status)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    deps = _deps(tmp_path_factory.mktemp("opsfuzz"))
    with serve_app(build_app(deps)) as served:
        client = httpx.Client(base_url=served.url, timeout=60)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        push = {"fields": {"build_uuid": "b1", "filename": "job-output.txt"},
                "lines": ["ERROR one", "ok two"], "first_line": 1}  # fmt: skip
        assert client.post("/api/push", json=push, headers=auth).status_code == 202
        hits = client.get("/api/search", params={"q": "ERROR"}).json()["hits"]
        yield {
            "client": client,
            "deps": deps,
            "known": {"doc_id": [h["id"] for h in hits]},
            "templates": {"POST /api/push": [push, {"documents": [{"message": "m", "loglevel": "INFO"}]}],
                          "POST /api/ingest": [{"host": "h1", "source": "/l#1-a", "documents": [
                              {"seq": 1, "ts": 1.0, "fields": {"message": "m"}}]}]},
            "headers": [auth, auth, {"Authorization": "Bearer wrong"}, {},
                        {"Authorization": f"Bearer {mint(SECRET, 'h1')}"}],
        }  # fmt: skip


def _endpoints() -> list[Endpoint]:
    with tempfile.TemporaryDirectory() as tmp:
        return endpoints(build_app(_deps(Path(tmp))))


def _fuzz(world: dict[str, Any], ep: Endpoint, examples: int | None) -> None:
    deps: ApiDeps = world["deps"]

    @fuzz_settings(examples)
    @given(req=requests_for(ep, world["known"], world["templates"], world["headers"]))
    def run(req: Any) -> None:
        check(world["client"], req, shape, lambda: deps.index.stats().documents)

    run()


@pytest.mark.parametrize("ep", _endpoints(), ids=str)
def test_fuzz_ops(world: dict[str, Any], ep: Endpoint) -> None:
    _fuzz(world, ep, None)


@pytest.mark.heavy
@pytest.mark.parametrize("ep", _endpoints(), ids=str)
def test_fuzz_ops_heavy(world: dict[str, Any], ep: Endpoint) -> None:
    _fuzz(world, ep, 300)
