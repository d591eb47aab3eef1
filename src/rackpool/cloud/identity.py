"""Users, projects, roles and tokens (the Keystone part of a region).

Passwords are stored as scrypt hashes, tokens as SHA-256 digests: a copy of the
database never yields a usable credential.

Scope follows Keystone: a token is scoped to one project and its roles are the roles
held on that project. Cloud-wide power (other projects' resources, hosts, quotas,
public flavors and images) comes only from the ``admin`` role on the region's admin
project (``admin_project`` in region.yaml, ``admin`` by default, Keystone's
``admin_project_name``); the ``admin`` role on any other project grants nothing beyond
that project. ``AuthContext.is_cloud_admin`` is the one test every API uses.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update

from rackpool.cloud.db.engine import reader
from rackpool.cloud.db.schema import projects, role_assignments, tokens, users
from rackpool.core.clock import Clock
from rackpool.core.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized

ROLES = ("admin", "member", "reader")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
# Checked against when the user does not exist, so that a login for an unknown user
# costs the same scrypt work as a wrong password (timing does not reveal user names).
# Same shape as hash_password's output; no password matches it.
DUMMY_PASSWORD_HASH = "scrypt$" + "00" * 16 + "$" + "ff" * 32


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AuthContext:
    """Who is calling, scoped to one project."""

    user_id: str
    user_name: str
    project_id: str
    project_name: str
    roles: tuple[str, ...]
    issued_at: float
    expires_at: float
    token_hash: str
    is_cloud_admin: bool = False
    is_cloud_reader: bool = False  # the reader role on the admin project: cloud-wide GETs only

    def require_cloud_admin(self) -> None:
        """Refuse unless the caller holds the admin role on the cloud's admin project."""
        if not self.is_cloud_admin:
            raise Forbidden(
                "Policy doesn't allow this operation to be performed (cloud admin only: the "
                "admin role on the cloud's admin project)."
            )


MAX_CACHED_TOKENS = 50_000


class IdentityService:
    def __init__(
        self, engine: Engine, clock: Clock, ttl: float, admin_project: str = "admin"
    ) -> None:
        self._engine = engine
        self._read = reader(engine)
        self._clock = clock
        self._ttl = ttl
        self._admin_project = admin_project
        self._cache: dict[str, AuthContext] = {}

    def _cloud_admin(self, project_name: str, roles: tuple[str, ...]) -> bool:
        return "admin" in roles and project_name == self._admin_project

    def _cloud_reader(self, project_name: str, roles: tuple[str, ...]) -> bool:
        """Keystone's ``reader`` on the admin project (and no admin role there)."""
        return "reader" in roles and project_name == self._admin_project and "admin" not in roles

    # -- management -------------------------------------------------------
    def create_project(self, name: str, description: str = "") -> str:
        pid = uuid.uuid4().hex
        with self._engine.begin() as conn:
            if conn.execute(select(projects.c.id).where(projects.c.name == name)).first():
                raise Conflict(f"project {name!r} already exists")
            conn.execute(
                insert(projects).values(
                    id=pid, name=name, description=description, created_at=self._clock.now()
                )
            )
        return pid

    def create_user(self, name: str, password: str) -> str:
        if len(password) < 8:
            raise BadRequest("password must be at least 8 characters")
        uid = uuid.uuid4().hex
        with self._engine.begin() as conn:
            if conn.execute(select(users.c.id).where(users.c.name == name)).first():
                raise Conflict(f"user {name!r} already exists")
            conn.execute(
                insert(users).values(
                    id=uid,
                    name=name,
                    password_hash=hash_password(password),
                    created_at=self._clock.now(),
                )
            )
        return uid

    def set_password(self, user_name: str, password: str) -> None:
        with self._engine.begin() as conn:
            res = conn.execute(
                update(users)
                .where(users.c.name == user_name)
                .values(password_hash=hash_password(password))
            )
            if res.rowcount == 0:
                raise NotFound(f"user {user_name!r} not found")

    def assign_role(self, user_id: str, project_id: str, role: str) -> None:
        if role not in ROLES:
            raise BadRequest(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        with self._engine.begin() as conn:
            exists = conn.execute(
                select(role_assignments.c.role).where(
                    role_assignments.c.user_id == user_id,
                    role_assignments.c.project_id == project_id,
                    role_assignments.c.role == role,
                )
            ).first()
            if not exists:
                conn.execute(
                    insert(role_assignments).values(
                        user_id=user_id, project_id=project_id, role=role
                    )
                )

    def project_id(self, name_or_id: str) -> str:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(projects.c.id).where(
                    (projects.c.id == name_or_id) | (projects.c.name == name_or_id)
                )
            ).first()
        if row is None:
            raise NotFound(f"project {name_or_id!r} not found")
        return str(row.id)

    def user_id(self, name_or_id: str) -> str:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(users.c.id).where((users.c.id == name_or_id) | (users.c.name == name_or_id))
            ).first()
        if row is None:
            raise NotFound(f"user {name_or_id!r} not found")
        return str(row.id)

    def list_projects(self) -> list[dict[str, object]]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(projects).order_by(projects.c.name)).mappings().all()
        return [dict(r) for r in rows]

    # -- tokens -----------------------------------------------------------
    def authenticate(
        self, user_name: str, password: str, project_name: str
    ) -> tuple[str, AuthContext]:
        """Check a password and issue a project-scoped token."""
        with self._engine.connect() as conn:
            user = conn.execute(select(users).where(users.c.name == user_name)).mappings().first()
            stored = DUMMY_PASSWORD_HASH if user is None else user["password_hash"]
            # the same scrypt work whether or not the user exists
            if not check_password(password, stored) or user is None:
                raise Unauthorized("The request you have made requires authentication.")
            proj = (
                conn.execute(
                    select(projects).where(
                        (projects.c.name == project_name) | (projects.c.id == project_name)
                    )
                )
                .mappings()
                .first()
            )
            if proj is None:
                raise Unauthorized(f"Could not find project: {project_name}.")
            roles = tuple(
                sorted(
                    r.role
                    for r in conn.execute(
                        select(role_assignments.c.role).where(
                            role_assignments.c.user_id == user["id"],
                            role_assignments.c.project_id == proj["id"],
                        )
                    )
                )
            )
        if not roles:
            raise Unauthorized(f"User {user_name} has no access to project {proj['name']}.")
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        ctx = AuthContext(
            user_id=user["id"],
            user_name=user["name"],
            project_id=proj["id"],
            project_name=proj["name"],
            roles=roles,
            issued_at=now,
            expires_at=now + self._ttl,
            token_hash=token_digest(token),
            is_cloud_admin=self._cloud_admin(proj["name"], roles),
            is_cloud_reader=self._cloud_reader(proj["name"], roles),
        )
        with self._engine.begin() as conn:
            conn.execute(
                insert(tokens).values(
                    token_hash=ctx.token_hash,
                    user_id=ctx.user_id,
                    project_id=ctx.project_id,
                    issued_at=now,
                    expires_at=ctx.expires_at,
                    revoked=False,
                )
            )
            conn.execute(delete(tokens).where(tokens.c.expires_at < now - 86400))
        self._remember(ctx)
        return token, ctx

    def validate(self, token: str | None) -> AuthContext:
        if not token:
            raise Unauthorized("The request you have made requires authentication.")
        digest = token_digest(token)
        ctx = self._cache.get(digest)
        if ctx is None:
            ctx = self._load(digest)
        elif not self._still_valid(digest):
            # revoked (maybe through another controller on the same database) or purged
            self._cache.pop(digest, None)
            raise Unauthorized("The request you have made requires authentication.")
        if ctx.expires_at <= self._clock.now():
            self._cache.pop(digest, None)
            raise Unauthorized("The token has expired.")
        return ctx

    def _still_valid(self, digest: str) -> bool:
        """Whether a cached token is still unrevoked in the database: one primary-key
        read, so a token revoked through one controller stops working on every one."""
        with self._read.connect() as conn:
            revoked = conn.execute(
                select(tokens.c.revoked).where(tokens.c.token_hash == digest)
            ).scalar()
        return revoked is not None and not revoked

    def _load(self, digest: str) -> AuthContext:
        with self._engine.connect() as conn:
            row = (
                conn.execute(
                    select(
                        tokens,
                        users.c.name.label("user_name"),
                        projects.c.name.label("project_name"),
                    )
                    .join(users, users.c.id == tokens.c.user_id)
                    .join(projects, projects.c.id == tokens.c.project_id)
                    .where(tokens.c.token_hash == digest)
                )
                .mappings()
                .first()
            )
            if row is None or row["revoked"]:
                raise Unauthorized("The request you have made requires authentication.")
            roles = tuple(
                sorted(
                    r.role
                    for r in conn.execute(
                        select(role_assignments.c.role).where(
                            role_assignments.c.user_id == row["user_id"],
                            role_assignments.c.project_id == row["project_id"],
                        )
                    )
                )
            )
        ctx = AuthContext(
            user_id=row["user_id"],
            user_name=row["user_name"],
            project_id=row["project_id"],
            project_name=row["project_name"],
            roles=roles,
            issued_at=row["issued_at"],
            expires_at=row["expires_at"],
            token_hash=digest,
            is_cloud_admin=self._cloud_admin(row["project_name"], roles),
            is_cloud_reader=self._cloud_reader(row["project_name"], roles),
        )
        self._remember(ctx)
        return ctx

    def _remember(self, ctx: AuthContext) -> None:
        """Cache a token's context; bounded (a token not cached is read again)."""
        if len(self._cache) >= MAX_CACHED_TOKENS:
            self._cache.clear()
        self._cache[ctx.token_hash] = ctx

    def revoke(self, token: str) -> None:
        digest = token_digest(token)
        with self._engine.begin() as conn:
            res = conn.execute(
                update(tokens).where(tokens.c.token_hash == digest).values(revoked=True)
            )
        self._cache.pop(digest, None)
        if res.rowcount == 0:
            raise NotFound("Could not find token.")
