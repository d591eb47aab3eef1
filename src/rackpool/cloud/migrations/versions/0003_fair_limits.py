"""fair limits: quota defaults from region.yaml, O(1) address allocation state

Revision ID: 0003
Revises: 0002

Project quota columns become nullable (NULL: the region's ``default_quota``); values
already stored stay as explicit per-project quotas. ``address_ranges`` and
``free_addresses`` hold the allocator's state; they are filled from ``addresses`` at the
first start on the new schema (``AddressPool.ensure``).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        for col in ("quota_cores", "quota_ram", "quota_instances"):
            batch_op.alter_column(col, existing_type=sa.Integer(), nullable=True)
    op.create_table(
        "address_ranges",
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("next_free", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("cidr"),
    )
    op.create_table(
        "free_addresses",
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.BigInteger(), nullable=False),
        sa.Column("released_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("address"),
    )
    op.create_index("ix_free_addresses_released", "free_addresses", ["released_at", "ip"])


def downgrade() -> None:
    op.drop_index("ix_free_addresses_released", table_name="free_addresses")
    op.drop_table("free_addresses")
    op.drop_table("address_ranges")
    op.execute("UPDATE projects SET quota_cores = -1 WHERE quota_cores IS NULL")
    op.execute("UPDATE projects SET quota_ram = -1 WHERE quota_ram IS NULL")
    op.execute("UPDATE projects SET quota_instances = -1 WHERE quota_instances IS NULL")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        for col in ("quota_cores", "quota_ram", "quota_instances"):
            batch_op.alter_column(col, existing_type=sa.Integer(), nullable=False)
