"""records a broker restart lost in flight, per stage

Revision ID: 0006
Revises: 0005_audit_evidence
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005_audit_evidence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stage_health", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lost_in_flight", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("stage_health", schema=None) as batch_op:
        batch_op.drop_column("lost_in_flight")
