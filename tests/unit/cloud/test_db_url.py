"""database: URLs a region accepts, and how one is shown (never with its password)."""

from __future__ import annotations

import pytest

from rackpool.cloud.config import RegionConfig
from rackpool.cloud.db.url import normalize, redact
from rackpool.core.config import validation_problems


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u:pw@db:5432/r1", "postgresql+psycopg://u:pw@db:5432/r1"),
        ("postgres://u:pw@db/r1", "postgresql+psycopg://u:pw@db/r1"),
        ("postgresql+psycopg://u@/r1?host=/run/pg", "postgresql+psycopg://u@/r1?host=/run/pg"),
        ("sqlite:////var/lib/r1.db", "sqlite:////var/lib/r1.db"),
    ],
)
def test_accepted_urls(given: str, used: str) -> None:
    assert normalize(given) == used


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("mysql://u:Secret1@h/db", "unsupported database 'mysql'"),
        ("postgresql+asyncpg://u:Secret1@h/db", "driver 'asyncpg' is not supported"),
        ("postgresql://u:Secret1@h:99999/db", "not a valid PostgreSQL URL"),
        ("postgresql://u:Secret1@h/", "names no database"),
        ("u:Secret1@h/db", "not a database URL"),
    ],
)
def test_refused_urls_name_the_problem_not_the_password(given: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as err:
        normalize(given)
    assert "Secret1" not in str(err.value)
    with pytest.raises(Exception) as bad:
        RegionConfig.model_validate({"region": "r1", "agent_token": "x" * 16, "database": given})
    problems = validation_problems(bad.value)  # type: ignore[arg-type]
    assert problems[0].startswith("database: ") and "Secret1" not in problems[0]


def test_redact_hides_only_the_password() -> None:
    assert redact("postgresql+psycopg://u:p%40ss@db:5432/r1") == (
        "postgresql+psycopg://u:***@db:5432/r1"
    )
    assert redact("postgresql://u@db/r1") == "postgresql://u@db/r1"
    assert redact("sqlite:////x/region.db") == "sqlite:////x/region.db"
