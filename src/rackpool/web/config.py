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


class RegionReader(_Model):
    """An account allowed to read the region's host list (Nova's ``os-hypervisors`` and
    ``os-services`` need the cloud admin role). The dashboard only ever GETs with it and
    never shows it; leave it out and the hosts are not shown."""

    username: str
    password: SecretStr
    project: str = "admin"
    quota_project: str | None = Field(
        "ci", description="the project whose quota and usage the overview shows (the pool's)"
    )


class RegionSource(_Model):
    name: str = Field(min_length=1, max_length=64)
    url: str = Field(description="the region controller's base URL")
    reader: RegionReader | None = None


class HistoryConfig(_Model):
    """The dashboard's own history of the pool (``web/history.py``)."""

    interval: float = Field(15.0, ge=0, le=3600, description="seconds between samples; 0: off")
    raw_hours: float = Field(6.0, gt=0, le=240, description="keep every sample this long")
    coarse: float = Field(300.0, ge=1, le=86400, description="then one sample per this long")
    keep_days: float = Field(10.0, gt=0, le=90)
    path: str | None = Field(
        None, description="SQLite file; default <state_dir>/web-history.sqlite, else memory"
    )


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
    history: HistoryConfig = HistoryConfig()
    log: LogConfig = LogConfig()
