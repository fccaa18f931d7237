"""Seed prices of current models, from genai-prices 0.2.5, effective 2026-12-06

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

The figures are genai-prices' (pydantic's maintained price data, https://github.com/pydantic/genai-prices),
package version 0.2.5, as its data gives them for 2026-12-06 (`llmrelay.ledger.price_sources.genai_price`),
not typed from memory: Claude Sonnet 4.x / Haiku 4.5 / Opus 4.x (aliases and dated ids), the GPT-4o / 4.1 / 5
family, o1 / o3 / o3-pro / o4-mini, Gemini 2.0 / 2.5 Pro / Flash / Flash-Lite, popular OpenRouter Llama,
Mistral, DeepSeek and Qwen models and OpenRouter's OpenAI / Anthropic / Google ones; the embedding models
(0008) already had genai-prices' figures.  Only models whose price differs from 0002's and 0008's, or that had
none, get a row.

Every row is new and dated 2026-12-06 00:00 UTC: 0002's and 0008's rows stay as they were (history is never
rewritten), so a call made before keeps the price it had.  Among the changes 0002 had wrong or stale: gpt-4
$30 / $60 (0002 said $10 / $30), gemini-2.0-flash $0.10 / $0.40 (0002: $0.075 / $0.30), Gemini 2.5's cached
input ($0.125 Pro, $0.03 Flash, $0.01 Flash-Lite), OpenRouter's llama-3.1-70b $0.72 / $0.72; every Anthropic
model gains its 1-hour cache-write price (2x input) and Claude Sonnet 4.5 and Gemini 2.5 Pro their tier above
200k input tokens.

Prices in USD per 1M tokens (input, output, cached input, cache write 5 min, cache write 1 h; then the tiers:
above how many input tokens, and the same five), stored per 1k tokens as the table's columns say.  Where
genai-prices gives a price to more decimals than the table keeps (OpenRouter's per-token figures such as
$0.0833333333 per 1M), it is rounded half-even to the pico-dollar per 1k.  `meta-llama/llama-3.3-70b-instruct:free`
is left out: genai-prices has no per-token price for it (OpenRouter's own list prices it at 0: `pricing sync`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import llmrelay.db.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

EFFECTIVE = datetime(2026, 12, 6, tzinfo=UTC)
SOURCE = "seed"
GENAI_PRICES_VERSION = "0.2.5"

# provider, model, input, output, cached input, cache write 5m, cache write 1h, ((above, *the five figures), …)
SEED: list[tuple] = [
    ("anthropic", "claude-3-5-sonnet-20241022", "3", "15", "0.3", "3.75", "6", ()),
    ("anthropic", "claude-3-5-sonnet-20240620", "3", "15", "0.3", "3.75", "6", ()),
    ("anthropic", "claude-3-5-sonnet-latest", "3", "15", "0.3", "3.75", "6", ()),
    ("anthropic", "claude-3-7-sonnet-20250219", "3", "15", "0.3", "3.75", "6", ()),
    ("anthropic", "claude-3-7-sonnet-latest", "3", "15", "0.3", "3.75", "6", ()),
    ("anthropic", "claude-3-5-haiku-20241022", "0.8", "4", "0.08", "1", "1.6", ()),
    ("anthropic", "claude-3-5-haiku-latest", "0.8", "4", "0.08", "1", "1.6", ()),
    ("anthropic", "claude-3-haiku-20240307", "0.25", "1.25", "0.03", "0.3", "0.5", ()),
    ("anthropic", "claude-sonnet-4-0", "3", "15", "0.3", "3.75", "6", ()),
    ("anthropic", "claude-sonnet-4-20250514", "3", "15", "0.3", "3.75", "6", ()),
    ("anthropic", "claude-sonnet-4-5", "3", "15", "0.3", "3.75", "6", ((200000, "6", "22.5", "0.6", "7.5", "12"),)),
    ("anthropic", "claude-sonnet-4-5-20250929", "3", "15", "0.3", "3.75", "6",
     ((200000, "6", "22.5", "0.6", "7.5", "12"),)),
    ("anthropic", "claude-sonnet-4-6", "3", "15", "0.3", "3.75", "6", ()),
    ("anthropic", "claude-haiku-4-5", "1", "5", "0.1", "1.25", "2", ()),
    ("anthropic", "claude-haiku-4-5-20251001", "1", "5", "0.1", "1.25", "2", ()),
    ("anthropic", "claude-opus-4-0", "15", "75", "1.5", "18.75", "30", ()),
    ("anthropic", "claude-opus-4-20250514", "15", "75", "1.5", "18.75", "30", ()),
    ("anthropic", "claude-opus-4-1", "15", "75", "1.5", "18.75", "30", ()),
    ("anthropic", "claude-opus-4-1-20250805", "15", "75", "1.5", "18.75", "30", ()),
    ("anthropic", "claude-opus-4-5", "5", "25", "0.5", "6.25", "10", ()),
    ("anthropic", "claude-opus-4-5-20251101", "5", "25", "0.5", "6.25", "10", ()),
    ("anthropic", "claude-opus-4-6", "5", "25", "0.5", "6.25", "10", ()),
    ("anthropic", "claude-opus-4-7", "5", "25", "0.5", "6.25", "10", ()),
    ("anthropic", "claude-opus-4-8", "5", "25", "0.5", "6.25", "10", ()),
    ("openai", "gpt-4", "30", "60", None, None, None, ()),
    ("openai", "gpt-4o-2024-08-06", "2.5", "10", "1.25", None, None, ()),
    ("openai", "gpt-4o-2024-11-20", "2.5", "10", "1.25", None, None, ()),
    ("openai", "gpt-4o-mini-2024-07-18", "0.15", "0.6", "0.075", None, None, ()),
    ("openai", "gpt-4.1-2025-04-14", "2", "8", "0.5", None, None, ()),
    ("openai", "gpt-4.1-mini-2025-04-14", "0.4", "1.6", "0.1", None, None, ()),
    ("openai", "gpt-4.1-nano", "0.1", "0.4", "0.025", None, None, ()),
    ("openai", "gpt-5", "1.25", "10", "0.125", None, None, ()),
    ("openai", "gpt-5-2025-08-07", "1.25", "10", "0.125", None, None, ()),
    ("openai", "gpt-5-mini", "0.25", "2", "0.025", None, None, ()),
    ("openai", "gpt-5-mini-2025-08-07", "0.25", "2", "0.025", None, None, ()),
    ("openai", "gpt-5-nano", "0.05", "0.4", "0.005", None, None, ()),
    ("openai", "gpt-5.1", "1.25", "10", "0.125", None, None, ()),
    ("openai", "gpt-5.2", "1.75", "14", "0.175", None, None, ()),
    ("openai", "o1", "15", "60", "7.5", None, None, ()),
    ("openai", "o3", "2", "8", "0.5", None, None, ()),
    ("openai", "o3-2025-04-16", "2", "8", "0.5", None, None, ()),
    ("openai", "o3-pro", "20", "80", None, None, None, ()),
    ("openai", "o4-mini", "1.1", "4.4", "0.275", None, None, ()),
    ("openai", "o4-mini-2025-04-16", "1.1", "4.4", "0.275", None, None, ()),
    ("google", "gemini-2.0-flash", "0.1", "0.4", "0.025", None, None, ()),
    ("google", "gemini-2.0-flash-lite", "0.075", "0.3", None, None, None, ()),
    ("google", "gemini-2.5-pro", "1.25", "10", "0.125", None, None, ((200000, "2.5", "15", "0.25", None, None),)),
    ("google", "gemini-2.5-flash", "0.3", "2.5", "0.03", None, None, ()),
    ("google", "gemini-2.5-flash-lite", "0.1", "0.4", "0.01", None, None, ()),
    ("openrouter", "meta-llama/llama-3.1-70b-instruct", "0.72", "0.72", None, None, None, ()),
    ("openrouter", "meta-llama/llama-3.1-8b-instruct", "0.05", "0.08", "0.025", None, None, ()),
    ("openrouter", "meta-llama/llama-3.1-405b-instruct", "0.8", "0.8", None, None, None, ()),
    ("openrouter", "meta-llama/llama-3.3-70b-instruct", "0.59", "0.79", "0.295", None, None, ()),
    ("openrouter", "meta-llama/llama-4-maverick", "0.35", "1", "0.17", None, None, ()),
    ("openrouter", "meta-llama/llama-4-scout", "0.1", "0.3", None, None, None, ()),
    ("openrouter", "mistralai/mistral-small-3.2-24b-instruct", "0.1", "0.3", "0.01", None, None, ()),
    ("openrouter", "mistralai/mistral-medium-3.1", "0.4", "2", "0.04", None, None, ()),
    ("openrouter", "mistralai/mistral-large-2512", "0.5", "1.5", "0.05", None, None, ()),
    ("openrouter", "mistralai/mistral-nemo", "0.15", "0.15", "0.015", None, None, ()),
    ("openrouter", "mistralai/codestral-2508", "0.3", "0.9", "0.03", None, None, ()),
    ("openrouter", "mistralai/devstral-2512", "0.4", "2", "0.04", None, None, ()),
    ("openrouter", "deepseek/deepseek-chat", "0.2574", "1.0287", None, None, None, ()),
    ("openrouter", "deepseek/deepseek-chat-v3-0324", "0.25", "1", "0.11", None, None, ()),
    ("openrouter", "deepseek/deepseek-chat-v3.1", "0.27", "1", None, None, None, ()),
    ("openrouter", "deepseek/deepseek-r1", "0.7", "2.5", None, None, None, ()),
    ("openrouter", "deepseek/deepseek-r1-0528", "0.5", "2.15", "0.35", None, None, ()),
    ("openrouter", "deepseek/deepseek-v3.2", "0.26", "0.38", "0.13", None, None, ()),
    ("openrouter", "qwen/qwen-2.5-72b-instruct", "0.36", "0.4", None, None, None, ()),
    ("openrouter", "qwen/qwen3-32b", "0.14", "0.4", "0.09", None, None, ()),
    ("openrouter", "qwen/qwen3-235b-a22b-2507", "0.09", "0.55", None, None, None, ()),
    ("openrouter", "qwen/qwen3-coder", "0.3", "1", "0.1", None, None, ()),
    ("openrouter", "qwen/qwen3-30b-a3b", "0.12", "0.5", None, None, None, ()),
    ("openrouter", "openai/gpt-4.1", "2", "8", "0.5", None, None, ()),
    ("openrouter", "openai/gpt-4.1-mini", "0.4", "1.6", "0.1", None, None, ()),
    ("openrouter", "openai/gpt-5", "1.25", "10", "0.125", None, None, ()),
    ("openrouter", "openai/gpt-5-mini", "0.25", "2", "0.025", None, None, ()),
    ("openrouter", "openai/o3", "2", "8", "0.5", None, None, ()),
    ("openrouter", "openai/o4-mini", "1.1", "4.4", "0.275", None, None, ()),
    ("openrouter", "anthropic/claude-3.5-sonnet", "3", "15", None, None, None, ()),
    ("openrouter", "anthropic/claude-sonnet-4", "3", "15", "0.3", "3.75", None, ()),
    ("openrouter", "anthropic/claude-sonnet-4.5", "3", "15", "0.3", "3.75", None,
     ((200000, "6", "22.5", "0.6", "7.5", None),)),
    ("openrouter", "anthropic/claude-haiku-4.5", "1", "5", "0.1", "1.25", None, ()),
    ("openrouter", "anthropic/claude-opus-4.5", "5", "25", "0.5", "6.25", None, ()),
    ("openrouter", "google/gemini-2.5-pro", "1.25", "10", "0.125", "0.375", None,
     ((200000, "2.5", "15", "0.25", "0.375", None),)),
    ("openrouter", "google/gemini-2.5-flash", "0.3", "2.5", "0.03", "0.083333333", None, ()),
    ("openrouter", "google/gemini-2.5-flash-lite", "0.1", "0.4", "0.01", "0.083333333", None, ()),
]

costs = sa.table(
    "ai_provider_costs",
    sa.column("provider", sa.String), sa.column("model", sa.String),
    sa.column("input_cost_per_1k_tokens", llmrelay.db.types.Money()),
    sa.column("output_cost_per_1k_tokens", llmrelay.db.types.Money()),
    sa.column("cached_input_cost_per_1k_tokens", llmrelay.db.types.Money()),
    sa.column("cache_write_cost_per_1k_tokens", llmrelay.db.types.Money()),
    sa.column("cache_write_1h_cost_per_1k_tokens", llmrelay.db.types.Money()),
    sa.column("above_input_tokens", sa.Integer),
    sa.column("source", sa.String), sa.column("effective_from", llmrelay.db.types.UTCDateTime()),
    sa.column("updated_at", llmrelay.db.types.UTCDateTime()),
)


def _per_1k(per_1m: str | None) -> Decimal | None:
    return None if per_1m is None else Decimal(per_1m) / 1000


def _row(provider: str, model: str, above: int, figures: tuple) -> dict:
    i, o, c, w, h = figures
    return {"provider": provider, "model": model, "input_cost_per_1k_tokens": _per_1k(i),
            "output_cost_per_1k_tokens": _per_1k(o), "cached_input_cost_per_1k_tokens": _per_1k(c),
            "cache_write_cost_per_1k_tokens": _per_1k(w), "cache_write_1h_cost_per_1k_tokens": _per_1k(h),
            "above_input_tokens": above, "source": SOURCE, "effective_from": EFFECTIVE, "updated_at": EFFECTIVE}


def rows() -> list[dict]:
    out = []
    for provider, model, *figures, tiers in SEED:
        out.append(_row(provider, model, 0, tuple(figures)))
        out.extend(_row(provider, model, above, tuple(rest)) for above, *rest in tiers)
    return out


def upgrade() -> None:
    op.bulk_insert(costs, rows())


def downgrade() -> None:
    """Only these rows: 0002's and 0008's seed rows share their `source`, not their date."""
    op.execute(costs.delete().where(costs.c.source == SOURCE, costs.c.effective_from == EFFECTIVE))
