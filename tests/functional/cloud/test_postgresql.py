"""The region on PostgreSQL: migrations both ways, two controllers sharing one database
(paging, tokens), and a database URL that is wrong or unreachable (one line, no secret)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from tests.functional.cloud.conftest import Raw, token_for
from tests.support.postgres import NewDatabase, new_database
from tests.support.region import AGENT_TOKEN, CI_PASSWORD, bootstrap, region_config

from rackpool.cli import main
from rackpool.cli.localservices import PostgresCluster
from rackpool.cloud.db.engine import MIGRATIONS, make_engine
from rackpool.cloud.db.schema import metadata
from rackpool.cloud.serve import ThreadedRegion
from rackpool.core.clock import wait_for


def _migrate(url: str, revision: str, down: bool = False) -> None:
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, revision)
    finally:
        engine.dispose()


def test_migrations_reach_the_schema_and_go_back(
    new_db: NewDatabase, backend: str, tmp_path: Path
) -> None:
    url = new_db() or f"sqlite:///{tmp_path / 'region.db'}"
    _migrate(url, "head")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == [], diff
        _migrate(url, "base", down=True)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        _migrate(url, "head")
        assert "servers" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresCluster
) -> Iterator[tuple[str, str]]:
    """Two controllers (in threads) of one region on one database; the first runs the
    fake hosts."""
    tmp = tmp_path_factory.mktemp("pair")
    url = new_database(postgres, "pair")
    first = region_config(tmp / "a", database=url, page_limit=4)
    bootstrap(first)
    second = first.model_copy(update={"fake_hosts": [], "state_dir": str(tmp / "b")})
    a = ThreadedRegion(first).start()
    try:
        b = ThreadedRegion(second).start()
        try:
            yield a.url, b.url
        finally:
            b.stop()
    finally:
        a.stop()


def test_two_controllers_page_and_revoke_alike(pair: tuple[str, str]) -> None:
    a, b = (Raw(u, token_for(u, "ci", CI_PASSWORD, "ci")) for u in pair)
    made = []
    for i in range(10):  # created alternately through each controller
        r = (a, b)[i % 2].post(
            "/compute/v2.1/servers",
            json={"server": {"name": f"pg-{i}", "imageRef": "host", "flavorRef": "1"}},
        )
        assert r.status_code == 202, r.text
        made.append(r.json()["server"]["id"])
    # the fake hosts run in the first controller: they build what the second created too
    wait_for(
        lambda: (
            {s["status"] for s in b.get("/compute/v2.1/servers/detail").json()["servers"]}
            == {"ACTIVE"}
        ),
        30,
        "all ACTIVE",
    )
    for reader in (a, b):  # pages of 4, newest first, whichever controller answers
        seen, url = [], "/compute/v2.1/servers"
        while url:
            body = reader.get(url).json()
            seen += [s["id"] for s in body["servers"]]
            links = body.get("servers_links") or []
            url = httpx.URL(links[0]["href"]).raw_path.decode() if links else ""
        assert seen == made[::-1]
    for i, sid in enumerate(made):  # deleted alternately through each controller
        assert (a, b)[i % 2].delete(f"/compute/v2.1/servers/{sid}").status_code == 204
    wait_for(lambda: b.get("/compute/v2.1/servers").json()["servers"] == [], 30, "all deleted")

    token = token_for(pair[0], "ci", CI_PASSWORD, "ci")
    headers = {"X-Auth-Token": token, "X-Subject-Token": token}
    assert httpx.get(f"{pair[1]}/compute/v2.1/flavors", headers=headers).status_code == 200
    assert httpx.delete(f"{pair[0]}/identity/v3/auth/tokens", headers=headers).status_code == 204
    # revoked through the first controller: the second, which had it cached, refuses it
    assert httpx.get(f"{pair[1]}/compute/v2.1/flavors", headers=headers).status_code == 401


def _config(tmp_path: Path, database: str) -> Path:
    cfg = tmp_path / "region.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {"region": "bad", "state_dir": str(tmp_path), "agent_token": AGENT_TOKEN,
             "database": database}
        )
    )  # fmt: skip
    return cfg


def test_a_wrong_database_is_one_line_without_the_password(
    tmp_path: Path, postgres: PostgresCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = postgres.url("postgres").replace(postgres.password, "Wr0ng-Secret-pw")
    # the daemon as a user starts it
    done = subprocess.run(
        [sys.executable, "-m", "rackpool.cli", "cloud", "serve", "--config",
         str(_config(tmp_path, wrong))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode != 0 and "password authentication failed" in out, out
    assert "Wr0ng-Secret-pw" not in out and "postgres:***@127.0.0.1" in out, out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1, out
    # the same words from the admin CLI (in this process, quicker)
    for database, words in (
        (postgres.url("no_such_db"), 'database "no_such_db" does not exist'),
        ("mysql://u:Wr0ng-Secret-pw@h/db", "unsupported database 'mysql'"),
    ):
        code = main(["cloud", "admin", "--config", str(_config(tmp_path, database)),
                     "project", "list"])  # fmt: skip
        err = capsys.readouterr().err
        assert code != 0 and words in err, err
        assert "Wr0ng-Secret-pw" not in err and postgres.password not in err, err
        assert "Traceback" not in err, err
