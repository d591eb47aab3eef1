"""Tables of a region controller, in portable SQLAlchemy Core (no backend-specific SQL).

The same schema on SQLite and PostgreSQL; where the backends differ (``server_seq``
exists on PostgreSQL only) cloud/db/engine.py hides it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Sequence,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

projects = Table(
    "projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    # NULL: the region's default_quota (region.yaml), as Nova's quota defaults work
    Column("quota_cores", Integer, nullable=True),
    Column("quota_ram", Integer, nullable=True),
    Column("quota_instances", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
)

role_assignments = Table(
    "role_assignments",
    metadata,
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("role", String(32), primary_key=True),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("project_id", String(64), nullable=False),
    Column("issued_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
    Column("revoked", Boolean, nullable=False, default=False),
)

flavors = Table(
    "flavors",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("vcpus", Integer, nullable=False),
    Column("ram", Integer, nullable=False),
    Column("disk", Integer, nullable=False),
    Column("is_public", Boolean, nullable=False, default=True),
)

images = Table(
    "images",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=True, index=True),
    Column("owner", String(64), nullable=True, index=True),
    Column("visibility", String(16), nullable=False, default="private"),
    Column("status", String(16), nullable=False, default="queued"),
    Column("disk_format", String(16), nullable=True),
    Column("container_format", String(16), nullable=True),
    Column("size", BigInteger, nullable=True),  # bytes: images pass 2 GiB
    Column("checksum", String(64), nullable=True),
    Column("os_hash_algo", String(16), nullable=True),
    Column("os_hash_value", String(128), nullable=True),
    Column("min_disk", Integer, nullable=False, default=0),
    Column("min_ram", Integer, nullable=False, default=0),
    Column("protected", Boolean, nullable=False, default=False),
    Column("builtin", String(32), nullable=True),
    Column("properties", JSON, nullable=False, default=dict),
    Column("tags", JSON, nullable=False, default=list),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

keypairs = Table(
    "keypairs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("fingerprint", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("user_id", "name", name="uq_keypairs_user_name"),
)

hosts = Table(
    "hosts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("availability_zone", String(255), nullable=False, default="nova"),
    Column("driver", String(32), nullable=False),
    Column("vcpus", Integer, nullable=False),
    Column("ram_mb", Integer, nullable=False),
    Column("disk_gb", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("state", String(16), nullable=False, default="up"),
    Column("disabled_reason", Text, nullable=True),
    Column("version", String(64), nullable=True),
    Column("last_heartbeat", Float, nullable=False),
    Column("registered_at", Float, nullable=False),
)

# One secret per host, stored as a SHA-256 digest (the secret is 256 random bits, so no
# slow hash is needed); kept apart from ``hosts`` so an admin can issue one before the
# host first registers.
host_credentials = Table(
    "host_credentials",
    metadata,
    Column("host", String(255), primary_key=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("issued_at", Float, nullable=False),
)

servers = Table(
    "servers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("seq", Integer, nullable=False, index=True),
    Column("project_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("task_state", String(32), nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("host", String(255), nullable=True, index=True),
    Column("flavor_id", String(64), nullable=False),
    Column("vcpus", Integer, nullable=False),
    Column("ram", Integer, nullable=False),
    Column("disk", Integer, nullable=False),
    Column("image_id", String(64), nullable=False),
    Column("key_name", String(255), nullable=True),
    Column("public_key", Text, nullable=True),
    Column("address", String(64), nullable=True),
    Column("mac", String(32), nullable=True),
    Column("availability_zone", String(255), nullable=True),
    Column("metadata", JSON, nullable=False, default=dict),
    Column("user_data", Text, nullable=True),
    Column("config_drive", Boolean, nullable=False, default=False),
    Column("security_groups", JSON, nullable=False, default=list),
    Column("fault_message", Text, nullable=True),
    Column("fault_code", Integer, nullable=True),
    Column("fault_at", Float, nullable=True),
    Column("host_keys", JSON, nullable=False, default=list),
    Column("console_log", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("launched_at", Float, nullable=True),
    # The ids of the create call (docs/ops.md "Request ids"): the agent's and the region's
    # log lines about the instance carry them, so one search shows its whole story.
    Column("request_id", String(64), nullable=True),
    Column("global_request_id", String(64), nullable=True),
    Index("ix_servers_project_deleted_seq", "project_id", "deleted", "seq"),
)

# Where ``servers.seq`` comes from on PostgreSQL, so several controllers never hand out
# one number twice (SQLite has no sequences and one writer: there it is max(seq) + 1).
server_seq = Sequence("server_seq", metadata=metadata)

addresses = Table(
    "addresses",
    metadata,
    Column("address", String(64), primary_key=True),
    Column("server_id", String(64), nullable=False, index=True),
    Column("allocated_at", Float, nullable=False),
)

# Allocation state of a range: ``next_free`` (an address as an integer) and every address
# above it were never handed out; released addresses wait in ``free_addresses`` and are
# reused oldest first once no fresh address is left, so exhaustion is known in O(1).
address_ranges = Table(
    "address_ranges",
    metadata,
    Column("cidr", String(64), primary_key=True),
    Column("next_free", BigInteger, nullable=False),
)

free_addresses = Table(
    "free_addresses",
    metadata,
    Column("address", String(64), primary_key=True),
    Column("ip", BigInteger, nullable=False),
    Column("released_at", Float, nullable=False),
    Index("ix_free_addresses_released", "released_at", "ip"),
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
