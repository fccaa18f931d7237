"""Seed prices of the embedding models the catalog knows

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Prices in USD per 1M input tokens, stored per 1k tokens as the table's columns say (0002's shape);
an embedding call has no output tokens, so its output price is 0.  Effective from 2024-01-01 like
0002's, so every call llmrelay could have made is priced.  OpenAI: text-embedding-3-small $0.02,
text-embedding-3-large $0.13, text-embedding-ada-002 $0.10; OpenRouter passes OpenAI's on; Gemini:
gemini-embedding-001 $0.15 (paid tier), text-embedding-004 free of charge as Google published it.
Ollama's embedding models are priced by its `*` row (0, from 0002).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import llmrelay.db.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

EFFECTIVE = datetime(2024, 1, 1, tzinfo=UTC)
SOURCE = "seed"

# provider, model, input (USD per 1M tokens)
SEED: list[tuple[str, str, str]] = [
    ("openai", "text-embedding-3-small", "0.02"),
    ("openai", "text-embedding-3-large", "0.13"),
    ("openai", "text-embedding-ada-002", "0.10"),
    ("openrouter", "openai/text-embedding-3-small", "0.02"),
    ("google", "gemini-embedding-001", "0.15"),
    ("google", "text-embedding-004", "0"),
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


def upgrade() -> None:
    op.bulk_insert(costs, [
        {"provider": p, "model": m, "input_cost_per_1k_tokens": Decimal(i) / 1000,
         "output_cost_per_1k_tokens": Decimal(0), "cached_input_cost_per_1k_tokens": None,
         "cache_write_cost_per_1k_tokens": None, "source": SOURCE, "effective_from": EFFECTIVE,
         "updated_at": EFFECTIVE}
        for p, m, i in SEED
    ])


def downgrade() -> None:
    """Only these rows: 0002's seed rows share their `source`."""
    for p, m, _ in SEED:
        op.execute(costs.delete().where(costs.c.source == SOURCE, costs.c.provider == p, costs.c.model == m,
                                        costs.c.effective_from == EFFECTIVE))
