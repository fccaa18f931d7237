"""Per-user rate-limit overrides; a partial index for the unpriced-usage report

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rpm_limit", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("tpm_limit", sa.Integer(), nullable=True))
    op.create_index("ix_ai_model_usage_unpriced", "ai_model_usage", ["created_at"], unique=False,
                    postgresql_where=sa.text("unpriced"), sqlite_where=sa.text("unpriced"))


def downgrade() -> None:
    op.drop_index("ix_ai_model_usage_unpriced", table_name="ai_model_usage")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("tpm_limit")
        batch_op.drop_column("rpm_limit")
