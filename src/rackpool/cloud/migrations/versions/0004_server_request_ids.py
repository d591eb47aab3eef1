"""servers keep the request ids of their create

Revision ID: 0004
Revises: 0003

``servers.request_id`` and ``servers.global_request_id``: the region's request id of
the create call and the client's global id, if it sent one (docs/ops.md "Request ids").
Both nullable, so servers created before this revision simply have none.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("global_request_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.drop_column("global_request_id")
        batch_op.drop_column("request_id")
