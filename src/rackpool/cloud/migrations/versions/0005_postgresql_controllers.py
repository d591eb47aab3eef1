"""several controllers on PostgreSQL: server sequence, 64-bit image sizes

Revision ID: 0005
Revises: 0004

``server_seq`` (PostgreSQL only; SQLite has no sequences and one writer) hands out
``servers.seq``, the order servers are listed and paginated in, so two controllers never
give one number twice; it starts past the highest number already used.
``images.size`` becomes 64-bit: an image of more than 2 GiB did not fit PostgreSQL's
``integer`` (SQLite's integers were 64-bit already).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.alter_column("size", existing_type=sa.Integer(), type_=sa.BigInteger())
    if bind.dialect.name == "postgresql":
        top = bind.execute(sa.text("SELECT COALESCE(MAX(seq), 0) FROM servers")).scalar()
        op.execute(sa.schema.CreateSequence(sa.Sequence("server_seq", start=int(top or 0) + 1)))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.schema.DropSequence(sa.Sequence("server_seq")))
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.alter_column("size", existing_type=sa.BigInteger(), type_=sa.Integer())
