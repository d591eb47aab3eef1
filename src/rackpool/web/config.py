"""``web.yaml``: the dashboard's settings (where it listens, which APIs it reads).

The dashboard is a client of the pool, region and ops HTTP APIs. Each source is given
by URL (the pool also needs its API token), or found through ``state_dir``: the
``pool.json`` and ``ops.json`` discovery files the daemons write there.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListenConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port")


class PoolSource(_Model):
    url: str = Field(description="the pool API, e.g. http://127.0.0.1:8080")
    token: SecretStr = Field(description="the pool API token (never shown by the dashboard)")


class OpsSource(_Model):
    url: str = Field(description="the ops API, e.g. http://127.0.0.1:8090")


class RegionSource(_Model):
    name: str = Field(min_length=1, max_length=64)
    url: str = Field(description="the region controller's base URL")


class LogConfig(_Model):
    json_lines: bool = Field(True, alias="json")
    path: str | None = None
    level: str = "INFO"


class WebConfig(_Model):
    listen: ListenConfig = ListenConfig()
    pool: PoolSource | None = Field(None, description="default: <state_dir>/pool.json")
    ops: OpsSource | None = Field(None, description="default: <state_dir>/ops.json")
    regions: list[RegionSource] = Field(default_factory=list)
    state_dir: str | None = Field(
        None, description="finds pool.json/ops.json here; web.json (url, pid) is written here"
    )
    refresh: int = Field(30, ge=0, le=3600, description="seconds between page reloads, 0: off")
    timeout: float = Field(10.0, gt=0, le=120, description="per call to a source API")
    log: LogConfig = LogConfig()
