"""story lifecycle: a lifecycle column on attack stories and their append-only history

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attack_stories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lifecycle", sa.String(length=16), nullable=False, server_default="open"))
    op.create_table(
        "story_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("story_id", sa.String(length=64), nullable=False),
        sa.Column("deployment", sa.String(length=512), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=253), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("story_version", sa.Integer(), nullable=False),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("story_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_story_events_story_id"), ["story_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("story_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_story_events_story_id"))
    op.drop_table("story_events")
    with op.batch_alter_table("attack_stories", schema=None) as batch_op:
        batch_op.drop_column("lifecycle")
