"""dashboard indexes: member search by @username prefix, newest members, status filters

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 22:50:00

Measured with `python -m bench dashboard` at 100,000 members (docs/performance.md): without them, on
SQLite, the "active" filter costs 208 ms of CPU instead of 60, the plan filter 239 instead of 85, page
1000 101 instead of 6 and the @username prefix 29 instead of 2.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # LIKE 'prefix%' on lower() needs the pattern ops
        op.create_index("ix_users_username_ci", "users", [sa.text("lower(username) text_pattern_ops")])
    else:
        op.create_index("ix_users_username_ci", "users", [sa.text("lower(username)")])
    op.create_index("ix_users_created_at", "users", ["created_at", "id"])
    op.create_index(
        "ix_subscriptions_status_ends_at_user_id", "subscriptions", ["status", "ends_at", "user_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_subscriptions_status_ends_at_user_id", table_name="subscriptions")
    op.drop_index("ix_users_created_at", table_name="users")
    op.drop_index("ix_users_username_ci", table_name="users")
