"""Migration 0004: servers created before it keep working, with no request ids."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from rackpool.cloud.db.engine import MIGRATIONS, make_engine
from rackpool.cloud.db.schema import metadata


def _migrate(engine: Engine, revision: str, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def _server_columns(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("servers")}


def test_servers_from_before_get_null_ids_and_the_schema_matches(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'region.db'}")
    try:
        _migrate(engine, "0003")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO servers (id, seq, project_id, user_id, name, hostname, status,"
                    " deleted, flavor_id, vcpus, ram, disk, image_id, metadata, config_drive,"
                    " security_groups, host_keys, console_log, created_at, updated_at) VALUES"
                    " ('s1', 1, 'p', 'u', 'n', 'n', 'ACTIVE', 0, 'f', 1, 64, 1, 'i', '{}', 0,"
                    " '[]', '[]', '', 0, 0)"
                )
            )
        _migrate(engine, "head")
        with engine.connect() as conn:
            row = conn.execute(text("SELECT request_id, global_request_id FROM servers")).one()
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert tuple(row) == (None, None)
        assert not [d for d in diff if "servers" in repr(d)], diff
        _migrate(engine, "0003", down=True)
        assert not {"request_id", "global_request_id"} & _server_columns(engine)
    finally:
        engine.dispose()
