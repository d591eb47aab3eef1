"""Config of the ``openstack`` provider (a rackpool region or any OpenStack cloud)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rackpool.pool.drivers.common_config import Model, PoolBase, ProviderBase


class OpenStackLabel(Model):
    name: str
    cloud_image: str = Field(min_length=1, description="image name or id")
    flavor_name: str = Field(min_length=1)
    key_name: str | None = None
    username: str = "zuul"
    connection_port: int = Field(22, ge=1, le=65535)
    instance_properties: dict[str, str] = {}
    networks: list[str] = []
    availability_zone: str | None = None


class OpenStackPool(PoolBase):
    labels: list[OpenStackLabel] = []


class OpenStackProvider(ProviderBase):
    driver: Literal["openstack"]
    cloud: str = Field(min_length=1, description="entry in clouds.yaml")
    region_name: str | None = None
    clouds_yaml: str | None = Field(None, description="path; default: openstacksdk's search")
    poll_interval: float = Field(1.0, gt=0, description="seconds between server status polls")
    pools: list[OpenStackPool] = []

    @property
    def region(self) -> str:
        return self.region_name or ""

    def label_names(self) -> list[tuple[str, str]]:
        return [
            (f"providers[{self.name}].pools[{i}].labels[{j}]", lab.name)
            for i, p in enumerate(self.pools)
            for j, lab in enumerate(p.labels)
        ]
