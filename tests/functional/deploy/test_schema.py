"""The rollback's schema step on real databases (SQLite file, and PostgreSQL).

A region database migrated to head by a controller (``Region.open``), then
``python -m rackpool.deploy.schema downgrade`` in a process, as ``rollback.yml`` runs it
with the newer version's code, down to an older version's head: the revision and the
tables are the older version's, the rows stay, and a later deploy of the newer version
migrates forward again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import inspect, text
from tests.support.postgres import new_database, postgres  # noqa: F401 - session fixture
from tests.support.region import bootstrap, region_config

from rackpool.cloud.config import RegionConfig
from rackpool.cloud.db.engine import make_engine
from rackpool.cloud.region import Region


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
    else:
        yield new_database(request.getfixturevalue("postgres"), "test_schema")


def _region(tmp_path: Path, database: str | None) -> tuple[RegionConfig, Path]:
    config = region_config(tmp_path / "state", fake_hosts=[], database=database)
    bootstrap(config)  # opens the region: migrated to head, admin and ci made
    path = tmp_path / "region.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return config, path


def _schema(*args: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "rackpool.deploy.schema", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return proc.returncode, (proc.stdout if proc.returncode == 0 else proc.stderr)


def _columns(config: RegionConfig, table: str) -> set[str]:
    engine = make_engine(config.database_url(), pool_size=1)
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def _projects(config: RegionConfig) -> set[str]:
    engine = make_engine(config.database_url(), pool_size=1)
    try:
        with engine.connect() as conn:
            return {r[0] for r in conn.execute(text("SELECT name FROM projects"))}
    finally:
        engine.dispose()


def test_downgrade_to_an_older_head_then_forward_again(
    tmp_path: Path, database: str | None
) -> None:
    config, path = _region(tmp_path, database)
    rc, out = _schema("head")
    assert rc == 0 and json.loads(out) == {"head": "0005"}, out
    rc, out = _schema("current", "--config", str(path))
    assert rc == 0 and json.loads(out) == {"current": "0005"}, out
    assert {"request_id", "global_request_id"} <= _columns(config, "servers")
    projects = _projects(config)
    assert {"admin", "ci"} <= projects

    # roll back to a version whose head was 0003 (before server request ids)
    rc, out = _schema("downgrade", "--config", str(path), "--to", "0003")
    assert rc == 0, out
    assert json.loads(out) == {"from": "0005", "to": "0003", "changed": "downgraded"}
    rc, out = _schema("current", "--config", str(path))
    assert json.loads(out) == {"current": "0003"}
    assert not {"request_id", "global_request_id"} & _columns(config, "servers")
    assert _projects(config) == projects  # the rows stay
    # again: already there, nothing to do
    rc, out = _schema("downgrade", "--config", str(path), "--to", "0003")
    assert rc == 0 and json.loads(out)["changed"] is None, out

    # the newer version deployed again later migrates forward as on any start
    Region.open(config).close()
    assert {"request_id", "global_request_id"} <= _columns(config, "servers")
    rc, out = _schema("current", "--config", str(path))
    assert json.loads(out) == {"current": "0005"}


def test_refusals_name_the_problem(tmp_path: Path, database: str | None) -> None:
    config, path = _region(tmp_path, database)
    rc, err = _schema("downgrade", "--config", str(path), "--to", "0099")
    assert rc == 1 and "'0099' is not one of this rackpool's migrations" in err, err
    rc, err = _schema("downgrade", "--config", str(path), "--to", "0003")
    assert rc == 0, err
    rc, err = _schema("downgrade", "--config", str(path), "--to", "0004")
    assert rc == 1 and "'0004' is not older" in err, err
    # a database a newer rackpool migrated than the code running the downgrade
    engine = make_engine(config.database_url(), pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0042'"))
    finally:
        engine.dispose()
    rc, err = _schema("downgrade", "--config", str(path), "--to", "0002")
    assert rc == 1 and "at revision '0042', which this rackpool does not know" in err, err
    assert "Traceback" not in err
