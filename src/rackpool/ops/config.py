"""``ops.yaml``: the ops daemon's settings (index, shipper, API, signatures)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndexConfig(_Model):
    backend: str = Field("sqlite", pattern="^sqlite$", description="only 'sqlite' for now")
    path: str = Field(description="directory for the index files")
    max_age_days: float | None = Field(14.0, gt=0, description="drop days older than this")
    max_bytes: int | None = Field(None, gt=0, description="drop oldest days above this size")


class ShipperConfig(_Model):
    files: list[str] = Field(default_factory=list, description="log file globs to follow")
    poll_interval: float = Field(0.5, gt=0, le=60)
    checkpoint: str | None = Field(None, description="default: <index.path>/shipper.json")
    fields: dict[str, str | list[str]] = Field(
        default_factory=dict, description="fields added to every shipped line"
    )


class ApiConfig(_Model):
    listen: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port")
    push_token: str | None = Field(None, description="default: generated at start")
    max_body_bytes: int = Field(
        16 * 1024 * 1024, gt=0, description="largest request body (a push), bytes; 413 above"
    )


class SignaturesConfig(_Model):
    builtin: bool = Field(True, description="load rackpool's own signatures")
    dirs: list[str] = Field(default_factory=list, description="more signature directories")


class ClassifierConfig(_Model):
    interval: float = Field(1.0, gt=0, le=3600)
    window_hours: float = Field(24.0, gt=0)
    keep_days: float = Field(30.0, gt=0)


class LogConfig(_Model):
    json_lines: bool = Field(True, alias="json")
    path: str | None = None
    level: str = "INFO"


class OpsConfig(_Model):
    index: IndexConfig
    shipper: ShipperConfig = ShipperConfig()
    api: ApiConfig = ApiConfig()
    signatures: SignaturesConfig = SignaturesConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    log: LogConfig = LogConfig()
    state_dir: str | None = Field(None, description="where ops.json (url, push token) is written")
