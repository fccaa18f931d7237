"""Budgets: `budgets` (a USD limit per period on a user, an agent or a user's use of an agent), `budget_leases`
(money of a period set aside by one process for the requests it admits), `budget_events` (thresholds crossed,
once each, for the webhook), and ai_model_usage.budget_downgraded.

Existing rows were not downgraded.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from llmrelay.db.types import Money, UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ai_model_usage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("budget_downgraded", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "budgets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("reset_day", sa.Integer(), nullable=False),
        sa.Column("limit_usd", Money(), nullable=False),
        sa.Column("soft_percent", sa.Integer(), nullable=False),
        sa.Column("unpriced", sa.String(length=8), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("lease_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope"),
    )
    op.create_table(
        "budget_leases",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("budget_id", sa.String(length=64), nullable=False),
        sa.Column("period_start", UTCDateTime(timezone=True), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("used", Money(), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["budget_id"], ["budgets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_budget_leases_budget_period", "budget_leases", ["budget_id", "period_start"])
    op.create_table(
        "budget_events",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("budget_id", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("spent_usd", Money(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["budget_id"], ["budgets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("budget_events")
    op.drop_index("ix_budget_leases_budget_period", table_name="budget_leases")
    op.drop_table("budget_leases")
    op.drop_table("budgets")
    with op.batch_alter_table("ai_model_usage", schema=None) as batch_op:
        batch_op.drop_column("budget_downgraded")
