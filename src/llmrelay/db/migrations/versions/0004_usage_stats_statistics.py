"""PostgreSQL: extended statistics on the columns and expressions usage statistics group by

Without them the planner cannot know that a month of ledger rows falls into a few thousand
(group, latency bucket) pairs: it estimates one group per row, and then neither aggregates in
parallel nor, for days, by hashing.  The expressions are, character for character in meaning,
the ones ledger/stats.py (DAY_SQL) and ledger/report.py (BUCKET_SQL) group by: the planner uses
the statistics only for identical expressions.  ANALYZE (autovacuum's, or the first manual one)
fills them.  SQLite has no such thing: nothing to do there.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NAME = "ai_model_usage_stats_groups"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"CREATE STATISTICS {NAME} (ndistinct) ON agent_id, user_id, provider, model, "
        "((created_at AT TIME ZONE 'UTC')::date), "
        "(CASE WHEN status IN ('success', 'fallback', 'failed') THEN latency_ms / 256 END) "
        "FROM ai_model_usage")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP STATISTICS IF EXISTS {NAME}")
