"""Change notifications on PostgreSQL: a write to users, API keys, saved configs, budgets or prices sends
`NOTIFY llmrelay_changes, '<table>'` when it commits, whoever made it (any replica, the CLI, psql), so
every replica reloads what changed at once instead of at its next poll (`db.changes.ChangeFeed`).

SQLite has no such thing: processes on one SQLite file poll, as before.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

CHANNEL = "llmrelay_changes"
WATCHED = {
    "users": "INSERT OR DELETE OR UPDATE",
    # not every UPDATE: the last-used time of keys is written every minute and changes nothing a replica holds
    "api_keys": "INSERT OR DELETE OR UPDATE OF key_hash, revoked_at, user_id",
    "ai_model_config": "INSERT OR DELETE OR UPDATE",
    # not every UPDATE: each lease taken bumps lease_seq
    "budgets": "INSERT OR DELETE OR UPDATE OF scope, user_id, agent_id, period, reset_day, limit_usd, soft_percent, "
               "unpriced, webhook_url",
    "ai_provider_costs": "INSERT OR DELETE OR UPDATE",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
        CREATE OR REPLACE FUNCTION llmrelay_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
            RETURN NULL;
        END $$""")
    for table, events in WATCHED.items():
        op.execute(f"CREATE TRIGGER llmrelay_notify_{table} AFTER {events} OR TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION llmrelay_notify_change()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in WATCHED:
        op.execute(f"DROP TRIGGER IF EXISTS llmrelay_notify_{table} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS llmrelay_notify_change()")
