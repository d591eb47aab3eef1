"""Config fields every provider shares, named as nodepool names them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


def _hyphen(name: str) -> str:
    return name.replace("_", "-")


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=_hyphen, populate_by_name=True
    )


class HealthConfig(Model):
    """When a provider is taken out of service, and how it is probed back in."""

    error_threshold: int = Field(
        3, ge=1, description="consecutive errors/timeouts before out of service"
    )
    probe_interval: float = Field(5.0, gt=0, description="seconds between probes while out")
    call_timeout: float = Field(
        10.0, gt=0, description="an API call slower than this counts as an error"
    )


class PoolBase(Model):
    name: str = "main"
    max_servers: int | None = Field(None, ge=0)
    max_cores: int | None = Field(None, ge=0)
    max_ram: int | None = Field(None, ge=0)


class ProviderBase(Model):
    name: str = Field(min_length=1)
    priority: int = 100
    rate: float = Field(0.0, ge=0, description="seconds between launch submissions")
    launch_retries: int = Field(3, ge=1)
    boot_timeout: float = Field(120.0, gt=0)
    launch_timeout: float = Field(600.0, gt=0)
    max_concurrency: int = Field(8, ge=1, description="launches in flight and executor size")
    host_key_checking: bool = True
    keyscan_timeout: float = Field(5.0, gt=0, description="per ssh-keyscan attempt")
    health: HealthConfig = HealthConfig()

    @property
    def region(self) -> str:
        return ""

    def label_names(self) -> list[tuple[str, str]]:
        """(YAML path, label name) of every label this provider offers."""
        raise NotImplementedError
