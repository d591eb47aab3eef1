"""On a controller host: the region database's Alembic revision, for ``--rollback``.

``python -m rackpool.deploy.schema ACTION``:

- ``head``: the newest revision this code's migrations know (what a controller of this
  version migrates to on start);
- ``current --config region.yaml``: the revision the database is at;
- ``downgrade --config region.yaml --to REV``: run this code's ``downgrade()`` steps
  until the database is at ``REV`` (nothing when it is there already).

A rollback from version B to A after B added a migration runs ``downgrade`` with B's
code (only B knows how to undo its migrations) to A's ``head`` before A's controller
starts: A's controller would otherwise refuse a database at a revision it does not
know. Prints one JSON line; exit 1 with one line naming the problem (an unknown
revision, a database that cannot be reached), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from rackpool.cloud.db.engine import MIGRATIONS, make_engine, startup_lock
from rackpool.core.errors import RackpoolError


class SchemaError(RackpoolError):
    code = 500


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str:
    """This code's newest migration."""
    rev = ScriptDirectory.from_config(_config()).get_current_head()
    if rev is None:  # pragma: no cover - the package always ships migrations
        raise SchemaError("this rackpool has no database migrations")
    return rev


def current(engine: Engine) -> str | None:
    """The database's revision (None: never migrated)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def downgrade(engine: Engine, to: str) -> dict[str, str | None]:
    """Downgrade the database to revision ``to`` with this code's migrations."""
    script = ScriptDirectory.from_config(_config())
    try:
        script.get_revision(to)
    except CommandError:
        raise SchemaError(
            f"revision {to!r} is not one of this rackpool's migrations (heads: "
            f"{', '.join(script.get_heads())}); run the downgrade with the newer version"
        ) from None
    before = current(engine)
    if before == to:
        return {"from": before, "to": to, "changed": None}
    if before is not None:
        try:
            script.get_revision(before)
        except CommandError:
            raise SchemaError(
                f"the database is at revision {before!r}, which this rackpool does not "
                "know: run the downgrade with the version that migrated it"
            ) from None
        if to not in {r.revision for r in script.iterate_revisions(before, "base")}:
            raise SchemaError(
                f"the database is at {before!r}; {to!r} is not older (use upgrade, not downgrade)"
            )
    cfg = _config()
    with startup_lock(engine), engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, to)
    return {"from": before, "to": current(engine), "changed": "downgraded"}


def _engine(config_path: str) -> Engine:
    from rackpool.cloud.config import load_region_config

    cfg = load_region_config(config_path)
    return make_engine(cfg.database_url(), pool_size=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rackpool.deploy.schema")
    sub = ap.add_subparsers(dest="action", required=True)
    sub.add_parser("head", help="this code's newest revision")
    cur = sub.add_parser("current", help="the database's revision")
    cur.add_argument("--config", required=True, help="region.yaml")
    down = sub.add_parser("downgrade", help="downgrade the database to a revision")
    down.add_argument("--config", required=True, help="region.yaml")
    down.add_argument("--to", required=True, help="the revision (the older version's head)")
    args = ap.parse_args(argv)
    try:
        if args.action == "head":
            print(json.dumps({"head": head()}))
            return 0
        engine = _engine(args.config)
        try:
            if args.action == "current":
                print(json.dumps({"current": current(engine)}))
            else:
                print(json.dumps(downgrade(engine, args.to)))
        finally:
            engine.dispose()
    except (RackpoolError, SQLAlchemyError) as exc:
        msg = str(exc).splitlines()[0]
        print(f"rackpool schema: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
