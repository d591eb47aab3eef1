"""Config of the in-memory ``fake`` provider (the framework's own tests and benchmarks)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rackpool.pool.drivers.common_config import Model, PoolBase, ProviderBase


class FakeLabel(Model):
    name: str
    username: str = "zuul"
    cores: int = Field(1, ge=0)
    ram: int = Field(512, ge=0)


class FakeQuota(Model):
    instances: int = -1
    cores: int = -1
    ram: int = -1


class FakePool(PoolBase):
    labels: list[FakeLabel] = []


class FakeProvider(ProviderBase):
    driver: Literal["fake"]
    region_name: str = "fake"
    host_key_checking: bool = False
    boot_delay: float = Field(0.0, ge=0, description="seconds a server stays BUILD")
    create_delay: float = Field(
        0.0, ge=0, le=60, description="seconds a create call takes before the server exists"
    )
    quota: FakeQuota = FakeQuota()
    cloud_file: str | None = Field(
        None, description="SQLite file holding the fake cloud, shared by several launchers"
    )
    pools: list[FakePool] = []

    @property
    def region(self) -> str:
        return self.region_name

    def label_names(self) -> list[tuple[str, str]]:
        return [
            (f"providers[{self.name}].pools[{i}].labels[{j}]", lab.name)
            for i, p in enumerate(self.pools)
            for j, lab in enumerate(p.labels)
        ]
