"""``ops.yaml``: the ops daemon's settings (index, shipper, API, signatures); and
``shipper.yaml``: ``rackpool ops ship``, which sends a host's log files to the ops API."""

from __future__ import annotations

import fnmatch
import glob
import re
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator

from rackpool.ops.wire import HOST

_UNIT = re.compile(r"[A-Za-z0-9_*?\[\]][A-Za-z0-9@._*?\[\]:\\-]{0,255}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndexConfig(_Model):
    backend: str = Field("sqlite", pattern="^sqlite$", description="only 'sqlite' for now")
    path: str = Field(description="directory for the index files")
    max_age_days: float | None = Field(14.0, gt=0, description="drop days older than this")
    max_bytes: int | None = Field(None, gt=0, description="drop oldest days above this size")


class JournalConfig(_Model):
    """The systemd journal as a source (rackpool.ops.journal): what daemons wrote to
    stderr before their logging was set up, and systemd's lines about their units."""

    units: list[str] = Field(
        default_factory=lambda: ["rackpool-*"],
        min_length=1,
        description="journalctl --unit patterns",
    )
    directory: str | None = Field(
        None,
        description="a journal directory to read (journalctl --directory); default: "
        "the system journal",
    )
    interval: float = Field(2.0, gt=0, le=3600, description="run journalctl at most this often")
    cursor: str | None = Field(
        None,
        description="where the last shipped entry's cursor is kept; default: "
        "journal-cursor.json beside the checkpoint",
    )

    @field_validator("units")
    @classmethod
    def _units(cls, v: list[str]) -> list[str]:
        for unit in v:
            if not _UNIT.fullmatch(unit):
                raise ValueError(
                    f"{unit[:60]!r} is not a unit name or pattern (e.g. 'rackpool-*', "
                    "'rackpool-agent.service')"
                )
        return v


class ShipperConfig(_Model):
    files: list[str] = Field(default_factory=list, description="log file globs to follow")
    poll_interval: float = Field(0.5, gt=0, le=60)
    checkpoint: str | None = Field(None, description="default: <index.path>/shipper.json")
    fields: dict[str, str | list[str]] = Field(
        default_factory=dict, description="fields added to every shipped line"
    )
    journal: JournalConfig | None = Field(
        None, description="also ship the systemd journal's entries of these units"
    )
    own_log: bool = Field(
        True, description="also ship the daemon's own log.path when files do not match it"
    )

    def globs(self, own_log_path: str | None) -> list[str]:
        """``files``, and the daemon's own log file if they do not match it (``own_log``):
        its lines (refused requests, errors) are searchable like every other daemon's.
        Shipping them logs nothing per line, so they cause no new lines."""
        files = list(self.files)
        if (
            own_log_path
            and self.own_log
            and not any(fnmatch.fnmatch(own_log_path, g) for g in files)
        ):
            files.append(glob.escape(own_log_path))
        return files


class ApiConfig(_Model):
    listen: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port")
    push_token: str | None = Field(
        None, description="pushing build output (POST /api/push); default: generated at start"
    )
    ingest_secret: SecretStr | None = Field(
        None,
        min_length=16,
        description="signs each host's ingest token (rackpool ops ship-token); default: "
        "made once and kept in <index.path>/ingest.secret",
    )
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


class RemoteOpsConfig(_Model):
    """The ops daemon a shipper sends to."""

    url: str = Field(description="the ops API, e.g. http://ops.example:8090")
    token: SecretStr = Field(
        min_length=1,
        validation_alias=AliasChoices("token", "push_token"),
        description="this host's ingest token (rackpool ops ship-token --config ops.yaml HOST "
        "on the ops host); read from push_token too, the key's older name",
    )
    timeout: float = Field(30.0, gt=0, le=600, description="seconds per request")
    max_request_bytes: int = Field(
        4 * 1024 * 1024,
        ge=64 * 1024,
        description="largest request body; keep it below the ops API's max_body_bytes",
    )
    max_line_bytes: int = Field(
        1024 * 1024, ge=4096, description="a longer line is sent cut to this size"
    )
    min_backoff: float = Field(0.5, gt=0, le=60, description="first wait after a failed try")
    max_backoff: float = Field(30.0, gt=0, le=3600, description="longest wait between tries")
    log_interval: float = Field(
        60.0, gt=0, description="while failing, log the trouble at most this often"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL, e.g. http://ops.example:8090")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment; give the API's base URL")
        return v


class ShipConfig(_Model):
    """``shipper.yaml``: ``rackpool ops ship`` on a host that does not run the ops index."""

    ops: RemoteOpsConfig
    host: str = Field(
        pattern=HOST,
        description="this host's name; every line's source is '<host>:<path>#<file id>'",
    )
    shipper: ShipperConfig = Field(
        description="files (globs), poll_interval, fields; checkpoint default: "
        "<state_dir>/checkpoint.json"
    )
    state_dir: str = Field(description="the checkpoint and shipper.json (status) live here")
    batch_lines: int = Field(5000, ge=1, le=100_000, description="lines per batch read")
    log: LogConfig = LogConfig()

    @field_validator("shipper")
    @classmethod
    def _files(cls, v: ShipperConfig) -> ShipperConfig:
        if not v.files:
            raise ValueError("files: give at least one log file glob to ship")
        return v
