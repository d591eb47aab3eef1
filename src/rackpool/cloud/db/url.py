"""Database URLs a region accepts, checked without importing SQLAlchemy's engine.

``sqlite:///PATH`` (the embedded default) or ``postgresql://USER:PASSWORD@HOST:PORT/DB``
(several controllers on one database). PostgreSQL goes through psycopg 3, so
``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://``. A URL may hold a
password: errors name the problem, never the URL.
"""

from __future__ import annotations

from urllib.parse import urlsplit

FORMS = "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def normalize(url: str) -> str:
    """The SQLAlchemy URL for ``url``; ValueError (naming no secret) if unsupported."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL; use {FORMS}")
    base, _, driver = scheme.lower().partition("+")
    if base in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise ValueError(
                f"PostgreSQL driver {driver!r} is not supported; write postgresql:// (psycopg 3)"
            )
        try:
            parts = urlsplit("postgresql://" + rest)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError(f"not a valid PostgreSQL URL; use {FORMS}") from None
        if not parts.path.strip("/"):
            raise ValueError(f"the PostgreSQL URL names no database; use {FORMS}")
        return "postgresql+psycopg://" + rest
    if base == "sqlite" and not driver:
        return url
    raise ValueError(f"unsupported database {base!r}; use {FORMS}")


def is_postgresql(url: str) -> bool:
    return url.startswith("postgresql")


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    user, at, host = netloc.rpartition("@")
    if sep and at and ":" in user:
        user = user.split(":", 1)[0] + ":***"
        return f"{scheme}://{user}@{host}{slash}{path}"
    return url
