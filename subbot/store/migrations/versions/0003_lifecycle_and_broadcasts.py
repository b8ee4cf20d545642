"""lifecycle and broadcasts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 19:27:48.467500
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("segment", sa.String(length=16), nullable=False),
        sa.Column("segment_days", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    with op.batch_alter_table("outbox_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index(
            "ix_outbox_jobs_state_priority_run_at", ["state", "priority", "run_at"], unique=False
        )

    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_reminder_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_subscriptions_status_next_reminder_at", ["status", "next_reminder_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriptions_status_next_reminder_at")
        batch_op.drop_column("next_reminder_at")

    with op.batch_alter_table("outbox_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_jobs_state_priority_run_at")
        batch_op.drop_column("priority")

    op.drop_table("broadcasts")
