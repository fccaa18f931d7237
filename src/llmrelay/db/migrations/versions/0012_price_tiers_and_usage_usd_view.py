"""Tiered prices and 1-hour cache writes in ai_provider_costs; the read-only view `usage_usd`

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

ai_provider_costs gains two columns; no row changes (history is never rewritten):
- `cache_write_1h_cost_per_1k_tokens`: input written to a 1-hour prompt cache (Anthropic bills it at
  2x input, the 5-minute writes at 1.25x); NULL: billed as a 5-minute write.
- `above_input_tokens` (default 0): 0 on a base price; n > 0 on a tier row, whose prices apply to
  every token of a call with more than n input tokens (Gemini 2.5 Pro and long-context Claude Sonnet
  above 200k).  A tier row has the same provider, model and `effective_from` as its base row.

Money's stored unit, unchanged: on SQLite an integer count of pico-dollars (10^-12 USD) in every
money column (`ai_model_usage.cost_usd` holds 3000000 for $0.000003; a price column, per 1k tokens,
holds 3000000 for $3 per 1M tokens); on PostgreSQL exact NUMERIC(24, 12) in USD.  The columns keep
their names: renaming them would break every reader for no gain in exactness.  Instead `usage_usd`,
a read-only view of `ai_model_usage` on both databases, gives the amounts as plain numbers for BI
tools: `cost_usd` and `provider_cost_usd` in USD, the applied prices as `*_usd_per_1m` (USD per 1M
tokens).  On SQLite these are REAL (a double: exact to the pico-dollar below about $9,000 per row);
on PostgreSQL NUMERIC.  Sums in SQL over the view on SQLite are floating-point: llmrelay's own
figures (`llmrelay usage`, the API) add the integers exactly.  The view is not updatable on either
database (SQLite views never are; on PostgreSQL its WITH clause keeps it from being auto-updatable).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import llmrelay.db.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_COLUMNS = ("id, request_id, attempt, user_id, agent_id, provider, model, kind, status, error_kind, error_message, "
            "created_at, prompt_tokens, completion_tokens, total_tokens, cached_prompt_tokens, reasoning_tokens, "
            "cache_write_tokens, tool_calls, images, latency_ms, unpriced, cost_mismatch, budget_downgraded")
_PRICES = ("input", "output", "cached_input", "cache_write")


def view_sql(dialect: str) -> str:
    """CREATE VIEW usage_usd for `dialect` (sqlite or postgresql)."""
    if dialect == "sqlite":  # integer pico-dollars: USD = n / 10^12; USD per 1M = (per 1k) * 1000 = n / 10^9
        usd = "u.{0} / 1000000000000.0 AS {0}"
        per_1m = "u.{0}_price / 1000000000.0 AS {0}_usd_per_1m"
    else:  # NUMERIC USD
        usd = "u.{0} AS {0}"
        per_1m = "u.{0}_price * 1000 AS {0}_usd_per_1m"
    columns = ", ".join(f"u.{c.strip()}" for c in _COLUMNS.split(","))
    money = ", ".join([usd.format("cost_usd"), usd.format("provider_cost_usd"),
                       *(per_1m.format(p) for p in _PRICES)])
    return (f"CREATE VIEW usage_usd AS WITH u AS (SELECT * FROM ai_model_usage) "  # noqa: S608
            f"SELECT {columns}, {money} FROM u")


def upgrade() -> None:
    with op.batch_alter_table("ai_provider_costs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cache_write_1h_cost_per_1k_tokens",
                                      llmrelay.db.types.Money(precision=24, scale=12), nullable=True))
        batch_op.add_column(sa.Column("above_input_tokens", sa.Integer(), server_default="0", nullable=False))
    op.execute(view_sql(op.get_bind().dialect.name))


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS usage_usd")
    with op.batch_alter_table("ai_provider_costs", schema=None) as batch_op:
        batch_op.drop_column("above_input_tokens")
        batch_op.drop_column("cache_write_1h_cost_per_1k_tokens")
