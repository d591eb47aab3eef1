from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.support.postgres import (  # noqa: F401 - postgres: the session fixture
    NewDatabase,
    new_database,
    postgres,
)
from tests.support.region import RegionHandle, running_region


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every test of this suite that uses a region runs on both backends."""
    return str(request.param)


@pytest.fixture(scope="module")
def new_db(backend: str, request: pytest.FixtureRequest) -> NewDatabase:
    """``database=new_db()`` for a region: None (SQLite in its state dir) or the URL of a
    fresh database in the session's PostgreSQL."""
    if backend == "sqlite":
        return lambda: None
    cluster = request.getfixturevalue("postgres")
    hint = request.module.__name__.rsplit(".", 1)[-1]
    return lambda: new_database(cluster, hint)


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory, new_db: NewDatabase) -> Iterator[RegionHandle]:
    with running_region(
        tmp_path_factory.mktemp("cloud"), page_limit=3, database=new_db()
    ) as handle:
        yield handle


@pytest.fixture(scope="module")
def conn(region: RegionHandle) -> Any:
    return region.connect()


@pytest.fixture(scope="module")
def admin(region: RegionHandle) -> Any:
    return region.connect(admin=True)


class Raw:
    """Plain HTTP with a token, for what the SDK hides (exact status and fault body)."""

    def __init__(self, url: str, token: str) -> None:
        self.client = httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=10)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def token_for(url: str, user: str, password: str, project: str) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"name": "Default"}, "password": password}
                },
            },
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}},
        }
    }
    r = httpx.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=10)
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


@pytest.fixture(scope="module")
def raw(region: RegionHandle) -> Raw:
    from tests.support.region import CI_PASSWORD

    return Raw(region.url, token_for(region.url, "ci", CI_PASSWORD, "ci"))


@pytest.fixture(scope="module")
def raw_admin(region: RegionHandle) -> Raw:
    from tests.support.region import ADMIN_PASSWORD

    return Raw(region.url, token_for(region.url, "admin", ADMIN_PASSWORD, "admin"))
