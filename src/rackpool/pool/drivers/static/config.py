"""Config of the ``static`` provider: a fixed list of SSH hosts, one job at a time each."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rackpool.pool.drivers.common_config import Model, PoolBase, ProviderBase


class StaticHost(Model):
    name: str = Field(min_length=1, description="address or resolvable name")
    labels: list[str] = Field(min_length=1)
    username: str = "zuul"
    connection_port: int = Field(22, ge=1, le=65535)
    host_key_checking: bool | None = None


class StaticPool(PoolBase):
    nodes: list[StaticHost] = []


class StaticProvider(ProviderBase):
    driver: Literal["static"]
    pools: list[StaticPool] = []

    def label_names(self) -> list[tuple[str, str]]:
        return [
            (f"providers[{self.name}].pools[{i}].nodes[{j}].labels", lab)
            for i, p in enumerate(self.pools)
            for j, h in enumerate(p.nodes)
            for lab in h.labels
        ]
