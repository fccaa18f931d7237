"""Seed prices: the seed plan's figures plus the built-in agents' other models

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Prices in USD per 1M tokens (input, output, cached input read, cache write), stored per 1k
tokens as the table's columns say.  They are effective from 2024-01-01 so that every call
llmrelay could have made is priced; a later price is a new row (`llmrelay pricing set`).
Anthropic bills cache writes at 1.25x input and cache reads at 0.1x; OpenAI and Gemini bill
cached input at their cached price; Ollama runs locally and costs nothing (model `*`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import llmrelay.db.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

EFFECTIVE = datetime(2024, 1, 1, tzinfo=UTC)

# provider, model, input, output, cached input, cache write  (USD per 1M tokens)
SEED: list[tuple[str, str, str, str, str | None, str | None]] = [
    ("anthropic", "claude-3-5-sonnet-20241022", "3", "15", "0.30", "3.75"),
    ("anthropic", "claude-3-5-sonnet-20240620", "3", "15", "0.30", "3.75"),
    ("anthropic", "claude-3-5-sonnet-latest", "3", "15", "0.30", "3.75"),
    ("anthropic", "claude-3-7-sonnet-20250219", "3", "15", "0.30", "3.75"),
    ("anthropic", "claude-sonnet-4-20250514", "3", "15", "0.30", "3.75"),
    ("anthropic", "claude-sonnet-4-5", "3", "15", "0.30", "3.75"),
    ("anthropic", "claude-3-5-haiku-20241022", "0.80", "4", "0.08", "1"),
    ("anthropic", "claude-3-5-haiku-latest", "0.80", "4", "0.08", "1"),
    ("anthropic", "claude-3-haiku-20240307", "0.25", "1.25", "0.03", "0.30"),
    ("anthropic", "claude-haiku-4-5", "1", "5", "0.10", "1.25"),
    ("openai", "gpt-4", "10", "30", None, None),
    ("openai", "gpt-4-turbo", "10", "30", None, None),
    ("openai", "gpt-4o", "2.50", "10", "1.25", None),
    ("openai", "gpt-4o-mini", "0.15", "0.60", "0.075", None),
    ("openai", "gpt-4.1", "2", "8", "0.50", None),
    ("openai", "gpt-4.1-mini", "0.40", "1.60", "0.10", None),
    ("openai", "o3-mini", "1.10", "4.40", "0.55", None),
    ("google", "gemini-2.0-flash", "0.075", "0.30", "0.01875", None),
    ("google", "gemini-2.5-flash", "0.30", "2.50", "0.075", None),
    ("google", "gemini-2.5-flash-lite", "0.10", "0.40", "0.025", None),
    ("google", "gemini-2.5-pro", "1.25", "10", "0.31", None),
    ("openrouter", "meta-llama/llama-3.1-70b-instruct", "0.40", "0.40", None, None),
    ("openrouter", "openai/gpt-4o", "2.50", "10", "1.25", None),
    ("openrouter", "openai/gpt-4o-mini", "0.15", "0.60", "0.075", None),
    ("openrouter", "anthropic/claude-3.5-sonnet", "3", "15", "0.30", "3.75"),
    ("ollama", "*", "0", "0", None, None),
]

costs = sa.table(
    "ai_provider_costs",
    sa.column("provider", sa.String), sa.column("model", sa.String),
    sa.column("input_cost_per_1k_tokens", llmrelay.db.types.Money()),
    sa.column("output_cost_per_1k_tokens", llmrelay.db.types.Money()),
    sa.column("cached_input_cost_per_1k_tokens", llmrelay.db.types.Money()),
    sa.column("cache_write_cost_per_1k_tokens", llmrelay.db.types.Money()),
    sa.column("source", sa.String), sa.column("effective_from", llmrelay.db.types.UTCDateTime()),
    sa.column("updated_at", llmrelay.db.types.UTCDateTime()),
)


def _per_1k(per_1m: str | None) -> Decimal | None:
    return None if per_1m is None else Decimal(per_1m) / 1000


def upgrade() -> None:
    op.bulk_insert(costs, [
        {"provider": p, "model": m, "input_cost_per_1k_tokens": _per_1k(i), "output_cost_per_1k_tokens": _per_1k(o),
         "cached_input_cost_per_1k_tokens": _per_1k(c), "cache_write_cost_per_1k_tokens": _per_1k(w),
         "source": "seed", "effective_from": EFFECTIVE, "updated_at": EFFECTIVE}
        for p, m, i, o, c, w in SEED
    ])


def downgrade() -> None:
    op.execute(costs.delete().where(costs.c.source == "seed"))
