"""The 1-hour part of a call's cache writes and the price it was billed at, on its ledger row
(`ai_model_usage.cache_write_1h_tokens`, `cache_write_1h_price`), so that every row explains its own cost;
`usage_usd` shows both (the 1-hour price per 1M tokens, like the others).

Rows written before have 0 1-hour tokens: until now every cache write was billed at the 5-minute price.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from llmrelay.db.types import Money

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_COLUMNS = ("id, request_id, attempt, user_id, agent_id, provider, model, kind, status, error_kind, error_message, "
            "created_at, prompt_tokens, completion_tokens, total_tokens, cached_prompt_tokens, reasoning_tokens, "
            "cache_write_tokens, cache_write_1h_tokens, tool_calls, images, latency_ms, unpriced, cost_mismatch, "
            "budget_downgraded")
_PRICES = ("input", "output", "cached_input", "cache_write", "cache_write_1h")


def view_sql(dialect: str, hour: bool = True) -> str:
    """CREATE VIEW usage_usd (as 0012's, with the 1-hour cache writes unless `hour` is false) for `dialect`."""
    names = _COLUMNS if hour else _COLUMNS.replace(" cache_write_1h_tokens,", "")
    prices = _PRICES if hour else _PRICES[:4]
    if dialect == "sqlite":  # integer pico-dollars: USD = n / 10^12; USD per 1M = (per 1k) * 1000 = n / 10^9
        usd = "u.{0} / 1000000000000.0 AS {0}"
        per_1m = "u.{0}_price / 1000000000.0 AS {0}_usd_per_1m"
    else:  # NUMERIC USD
        usd = "u.{0} AS {0}"
        per_1m = "u.{0}_price * 1000 AS {0}_usd_per_1m"
    columns = ", ".join(f"u.{c.strip()}" for c in names.split(","))
    money = ", ".join([usd.format("cost_usd"), usd.format("provider_cost_usd"),
                       *(per_1m.format(p) for p in prices)])
    return (f"CREATE VIEW usage_usd AS WITH u AS (SELECT * FROM ai_model_usage) "  # noqa: S608
            f"SELECT {columns}, {money} FROM u")


def upgrade() -> None:
    op.execute("DROP VIEW IF EXISTS usage_usd")  # SQLite rebuilds the table below; the view is made again after
    with op.batch_alter_table("ai_model_usage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cache_write_1h_tokens", sa.Integer(), server_default=sa.text("0"),
                                      nullable=False))
        batch_op.add_column(sa.Column("cache_write_1h_price", Money(precision=24, scale=12), nullable=True))
    op.execute(view_sql(op.get_bind().dialect.name))


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS usage_usd")
    with op.batch_alter_table("ai_model_usage", schema=None) as batch_op:
        batch_op.drop_column("cache_write_1h_price")
        batch_op.drop_column("cache_write_1h_tokens")
    op.execute(view_sql(op.get_bind().dialect.name, hour=False))
