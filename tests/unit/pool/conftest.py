"""Launcher fixtures on fake providers: a real SQLite store, in-memory fake clouds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import pytest

from rackpool.core.clock import Clock
from rackpool.pool.config import PoolConfig
from rackpool.pool.drivers.common_config import ProviderBase
from rackpool.pool.drivers.fake import FakeAdapter, FakeCloud, FakeProvider
from rackpool.pool.drivers.interface import Adapter
from rackpool.pool.launcher import Launcher
from rackpool.pool.provider import default_adapter
from rackpool.pool.store import SqliteStore


def fake_provider(name: str, labels: tuple[str, ...] = ("small",), **kw: Any) -> dict[str, Any]:
    pool = {"name": "main", "labels": [{"name": lab, "cores": 1, "ram": 512} for lab in labels]}
    pool.update(kw.pop("pool", {}))
    return {"name": name, "driver": "fake", "pools": [pool], **kw}


def pool_config(
    providers: list[dict[str, Any]], labels: list[dict[str, Any]], **kw: Any
) -> PoolConfig:
    data = {"labels": labels, "providers": providers, "api": {"token": "secret-token"}, **kw}
    data.setdefault("timing", {"cleanup-interval": 0.2, "tick-interval": 0.02})
    return PoolConfig.model_validate(data)


class FakeWorld:
    """The fake clouds a test breaks, keyed by provider name; survives launcher restarts."""

    def __init__(self) -> None:
        self.clouds: dict[str, FakeCloud] = {}

    def factory(self, provider: ProviderBase, executor: Executor, clock: Clock) -> Adapter:
        if isinstance(provider, FakeProvider):
            adapter = FakeAdapter(provider, executor, clock, self.clouds.get(provider.name))
            self.clouds[provider.name] = adapter.cloud
            return adapter
        return default_adapter(provider, executor, clock)


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
def make_launcher(tmp_path: Path, world: FakeWorld) -> Iterator[Callable[..., Launcher]]:
    made: list[Launcher] = []

    def make(config: PoolConfig, **kw: Any) -> Launcher:
        store = SqliteStore(tmp_path / "pool.sqlite")
        kw.setdefault("adapter_factory", world.factory)
        launcher = Launcher(config, store, **kw)
        made.append(launcher)
        return launcher

    yield make
    for launcher in made:
        launcher.stop()
