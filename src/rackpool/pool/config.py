"""The pool config (``pool.yaml``), close to nodepool's: labels, providers, pools.

Validated by pydantic; ``rackpool.core.config.load_model(path, PoolConfig)`` reports
every problem with its YAML path. Options are spelt with hyphens as in nodepool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator

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


class ZooKeeperTls(Model):
    """TLS to ZooKeeper's secureClientPort (PEM files): the server's CA, and this
    launcher's client certificate and key when the server asks for one (clientAuth)."""

    ca: str = Field(min_length=1, description="PEM file of the CA that signed the server's cert")
    cert: str | None = Field(None, description="PEM client certificate")
    key: str | None = Field(None, description="PEM key of the client certificate")

    @model_validator(mode="before")
    @classmethod
    def _pair(cls, v: object) -> object:
        if isinstance(v, dict) and (v.get("cert") is None) != (v.get("key") is None):
            raise ValueError("give cert and key together (the client certificate and its key)")
        return v

    @field_validator("ca", "cert", "key")
    @classmethod
    def _readable(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                with open(v, "rb"):
                    pass
            except OSError as exc:
                raise ValueError(f"cannot read {v}: {exc.strerror}") from None
        return v


class ZooKeeperStoreConfig(Model):
    hosts: str = Field(min_length=1, description="host:port[,host:port...] of the ensemble")
    chroot: str = Field("/rackpool", description="the pool's subtree; one per pool")
    tls: ZooKeeperTls | None = None
    session_timeout: float = Field(
        10.0, ge=1, le=60, description="seconds before a dead launcher's locks vanish"
    )
    connect_timeout: float = Field(15.0, gt=0, description="seconds to get a session at start")
    op_timeout: float = Field(
        30.0, gt=0, description="seconds a call keeps retrying through connection loss"
    )

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, v: str) -> str:
        for part in v.split(","):
            host, sep, port = part.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{part.strip()!r} is not host:port (e.g. 10.0.0.5:2181)")
        return ",".join(p.strip() for p in v.split(","))

    @field_validator("chroot")
    @classmethod
    def _chroot(cls, v: str) -> str:
        if not v.startswith("/") or "//" in v or (len(v) > 1 and v.endswith("/")):
            raise ValueError(f"{v!r}: an absolute znode path such as /rackpool")
        return v


class StoreConfig(Model):
    """``store: {zookeeper: {...}}`` for several launchers; ``{sqlite: FILE}`` (or just a
    file name) for the embedded default."""

    sqlite: str | None = Field(None, min_length=1, description="SQLite file")
    zookeeper: ZooKeeperStoreConfig | None = None

    @model_validator(mode="after")
    def _one(self) -> StoreConfig:
        if (self.sqlite is None) == (self.zookeeper is None):
            raise ValueError("give exactly one of sqlite: FILE or zookeeper: {hosts: ...}")
        return self


class PoolConfig(Model):
    pool_name: str = Field("rackpool", min_length=1, description="value of rackpool_pool metadata")
    state_dir: str | None = Field(None, description="store, and pool.json for CLI discovery")
    store: StoreConfig | None = Field(
        None,
        description="SQLite file (default STATE_DIR/pool.sqlite) or {zookeeper: {hosts: ...}}",
    )

    @field_validator("store", mode="before")
    @classmethod
    def _store_file(cls, v: object) -> object:
        return {"sqlite": v} if isinstance(v, str) else v

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
        """The SQLite file (the embedded store)."""
        if self.store is not None and self.store.sqlite:
            return self.store.sqlite
        if self.state_dir:
            return str(Path(self.state_dir) / "pool.sqlite")
        raise ConfigError("set store: (an SQLite file) or state-dir:")

    @property
    def zookeeper(self) -> ZooKeeperStoreConfig | None:
        return self.store.zookeeper if self.store is not None else None


def load(path: str | Path) -> PoolConfig:
    return load_model(path, PoolConfig)
