"""go-live history (hash chain) and waivers

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-30 14:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "golive_history",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("deployment", sa.String(length=512), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=512), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("hash"),
    )
    with op.batch_alter_table("golive_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_golive_history_deployment"), ["deployment"], unique=False)

    op.create_table(
        "waivers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment", sa.String(length=512), nullable=False),
        sa.Column("check", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=1024), nullable=True),
        sa.Column("actor", sa.String(length=512), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("history_seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["history_seq"], ["golive_history.seq"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("waivers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_waivers_deployment"), ["deployment"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("waivers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_waivers_deployment"))
    op.drop_table("waivers")
    with op.batch_alter_table("golive_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_golive_history_deployment"))
    op.drop_table("golive_history")
