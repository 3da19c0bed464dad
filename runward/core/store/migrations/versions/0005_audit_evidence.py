"""audit evidence: would-be violations per agent (seccomp log, gateway, network allowlist)

Revision ID: 0005_audit_evidence
Revises: 0004
Create Date: 2026-11-30 16:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_audit_evidence"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_evidence",
        sa.Column("evidence_id", sa.String(length=128), nullable=False),
        sa.Column("deployment", sa.String(length=512), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=512), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("evidence_id"),
    )
    with op.batch_alter_table("audit_evidence", schema=None) as batch_op:
        batch_op.create_index("ix_audit_evidence_deployment_ts", ["deployment", "ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_evidence", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_evidence_deployment_ts")
    op.drop_table("audit_evidence")
