"""The pool config (``pool.yaml``), close to nodepool's: labels, providers, pools.

Validated by pydantic; ``rackpool.core.config.load_model(path, PoolConfig)`` reports
every problem with its YAML path. Options are spelt with hyphens as in nodepool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from rackpool.core.config import load_model
from rackpool.core.errors import ConfigError
from rackpool.core.httpguard import DEFAULT_MAX_BODY
from rackpool.pool.drivers.common_config import Model
from rackpool.pool.drivers.fake.config import FakeProvider
from rackpool.pool.drivers.openstack.config import OpenStackProvider
from rackpool.pool.drivers.static.config import StaticProvider

ProviderConfig = Annotated[
    OpenStackProvider | StaticProvider | FakeProvider, Field(discriminator="driver")
]


class LabelConfig(Model):
    name: str = Field(min_length=1)
    min_ready: int = Field(0, ge=0)
    max_ready_age: float = Field(0, ge=0, description="seconds; 0 = forever")


class ApiConfig(Model):
    listen: str = "127.0.0.1"
    port: int = Field(8005, ge=0, le=65535, description="0 picks a free port")
    token: str | None = Field(None, min_length=8)
    token_file: str | None = None
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY, gt=0, description="largest request body, bytes (413 above)"
    )
    workers: int = Field(
        8, gt=0, le=256, description="threads running API handlers (store calls) off the loop"
    )

    def resolve_token(self) -> str:
        if self.token:
            return self.token
        if self.token_file:
            try:
                text = Path(self.token_file).read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"api.token-file: cannot read {self.token_file}: {exc.strerror}"
                ) from exc
            if len(text) < 8:
                raise ConfigError("api.token-file: the token must be at least 8 characters")
            return text
        raise ConfigError("api: set token or token-file (clients authenticate with it)")


class TimingConfig(Model):
    tick_interval: float = Field(0.2, gt=0, description="launcher loop period when idle")
    cleanup_interval: float = Field(10.0, gt=0, description="seconds between leak-cleanup passes")
    quota_refresh: float = Field(300.0, gt=0, description="seconds a cached quota limit is trusted")
    request_timeout: float = Field(
        0, ge=0, description="fail unfulfilled requests after; 0 = never"
    )


class PoolConfig(Model):
    pool_name: str = Field("rackpool", min_length=1, description="value of rackpool_pool metadata")
    state_dir: str | None = Field(None, description="store, and pool.json for CLI discovery")
    store: str | None = Field(None, description="SQLite file; default STATE_DIR/pool.sqlite")
    api: ApiConfig = ApiConfig()
    timing: TimingConfig = TimingConfig()
    labels: list[LabelConfig] = []
    providers: list[ProviderConfig] = []

    @model_validator(mode="after")
    def _cross_check(self) -> PoolConfig:
        problems = []
        names = [lab.name for lab in self.labels]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"labels: label {dup!r} is declared twice")
        pnames = [p.name for p in self.providers]
        for dup in sorted({n for n in pnames if pnames.count(n) > 1}):
            problems.append(f"providers: provider name {dup!r} is used twice")
        for i, prov in enumerate(self.providers):
            for where, label in prov.label_names():
                if label not in names:
                    where = where.replace(f"providers[{prov.name}]", f"providers[{i}]")
                    problems.append(
                        f"{where}: label {label!r} is not declared under top-level labels:"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def label(self, name: str) -> LabelConfig | None:
        return next((lab for lab in self.labels if lab.name == name), None)

    def store_path(self) -> str:
        if self.store:
            return self.store
        if self.state_dir:
            return str(Path(self.state_dir) / "pool.sqlite")
        raise ConfigError("set store: (an SQLite file) or state-dir:")


def load(path: str | Path) -> PoolConfig:
    return load_model(path, PoolConfig)
