"""Per-host agent credentials: each host proves who it is with its own secret.

The region's ``agent_token`` only enrolls a host: registering a host name that has no
credential yet returns a fresh one, once. From then on every call for that host must
carry the host's own credential, so one host (or a leaked agent.yaml) can no longer pull,
report or heartbeat for another. An admin can issue (or replace) a host's credential
out of band (``rackpool cloud admin host credential NAME``) and give it to the agent as
its token; a host that lost its credential needs that too. Secrets are stored as
SHA-256 digests, like Keystone tokens (docs/agent-api.md).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from rackpool.cloud.db.engine import reader
from rackpool.cloud.db.schema import host_credentials as t
from rackpool.core.clock import Clock


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class AgentCaller:
    """Who called the agent API: one host (its credential) or an enrolling agent."""

    host: str | None  # None: the region's enrollment token

    @property
    def enrolling(self) -> bool:
        return self.host is None


class HostCredentials:
    def __init__(self, engine: Engine, clock: Clock, enrollment_token: str) -> None:
        self._engine = engine
        self._read = reader(engine)  # every agent call identifies: never behind a writer
        self._clock = clock
        self._enrollment = enrollment_token

    def identify(self, presented: str) -> AgentCaller | None:
        """The caller a presented token stands for, or None if it is no credential."""
        if not presented:
            return None
        with self._read.connect() as conn:
            row = conn.execute(
                select(t.c.host).where(t.c.secret_hash == _digest(presented))
            ).first()
        if row is not None:
            return AgentCaller(host=str(row.host))
        if hmac.compare_digest(presented.encode(), self._enrollment.encode()):
            return AgentCaller(host=None)
        return None

    def has(self, host: str) -> bool:
        with self._read.connect() as conn:
            return conn.execute(select(t.c.host).where(t.c.host == host)).first() is not None

    def enroll(self, host: str) -> str | None:
        """A first credential for ``host``; None if it already has one (no replacing)."""
        secret = secrets.token_urlsafe(32)
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(t).values(
                        host=host, secret_hash=_digest(secret), issued_at=self._clock.now()
                    )
                )
        except IntegrityError:
            return None
        return secret

    def issue(self, host: str) -> str:
        """A new credential for ``host``, replacing any old one (admin)."""
        secret = secrets.token_urlsafe(32)
        with self._engine.begin() as conn:
            conn.execute(delete(t).where(t.c.host == host))
            conn.execute(
                insert(t).values(
                    host=host, secret_hash=_digest(secret), issued_at=self._clock.now()
                )
            )
        return secret
