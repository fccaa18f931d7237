"""The tables.  Names and fields follow the seed plan (`ai_model_usage`, `ai_model_config`,
`ai_provider_costs`), extended where the issues say so.  Every change to this file comes with a
new Alembic migration in `migrations/versions/`; a test checks that the two agree."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .types import Money, UTCDateTime, utcnow


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rpm_limit: Mapped[int | None] = mapped_column(Integer)
    """Requests per minute for this user; None: the server's default."""
    tpm_limit: Mapped[int | None] = mapped_column(Integer)
    """Tokens per minute for this user; None: the server's default."""


class ApiKey(Base):
    """A user's API key.  Only its SHA-256 is stored, and a short prefix to recognise it by."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AIModelUsage(Base):
    """One row per attempt: every try, retry, fallback and skip of every request."""

    __tablename__ = "ai_model_usage"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    """1-based position of this attempt within its request."""
    user_id: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    """success (served by the chain's first link) | fallback (served by a later link) | failed | skipped"""
    error_kind: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    total_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    """USD; NULL exactly when the model has no known price (and then `unpriced` is true).  Stored as
    `Money`: NUMERIC(24, 12) on PostgreSQL, integer pico-dollars (10^-12 USD) on SQLite, where a
    direct reader sees 3000000 for $0.000003; the `usage_usd` view gives every amount in dollars."""
    input_price: Mapped[Decimal | None] = mapped_column(Money)
    """USD per 1k input tokens applied (the tier the call's input selected); likewise the other prices."""
    output_price: Mapped[Decimal | None] = mapped_column(Money)
    cached_input_price: Mapped[Decimal | None] = mapped_column(Money)
    cache_write_price: Mapped[Decimal | None] = mapped_column(Money)
    unpriced: Mapped[bool] = mapped_column(Boolean, default=False)
    provider_cost_usd: Mapped[Decimal | None] = mapped_column(Money)
    """What the provider itself said the call cost (OpenRouter), kept beside ours."""
    cost_mismatch: Mapped[bool] = mapped_column(Boolean, default=False)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_on_provider: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    """The request's first attempt on this provider: a provider's requests are a count of these."""
    first_on_model: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    """The request's first attempt on this provider and model."""
    tool_calls: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    """How many tool calls the attempt's answer held."""
    images: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    """How many images the request sent to this attempt (0 for a skipped link)."""
    kind: Mapped[str] = mapped_column(String(16), default="chat", server_default=text("'chat'"))
    """What the request asked for: `chat` or `embedding`."""
    budget_downgraded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """A budget kept some link of the request's chain from serving (its skip rows say which and why)."""
    cache_write_1h_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    """Of `cache_write_tokens`, those written to a 1-hour cache (Anthropic), billed at `cache_write_1h_price`."""
    cache_write_1h_price: Mapped[Decimal | None] = mapped_column(Money)
    """USD per 1k 1-hour cache-write tokens applied (NULL: none known; such writes cost the 5-minute price)."""

    # Each composite index also serves lookups on its first column alone: five indexes in all,
    # not nine, because every one of them costs time on the insert path.
    __table_args__ = (
        Index("ix_ai_model_usage_user_created", "user_id", "created_at"),
        Index("ix_ai_model_usage_agent_created", "agent_id", "created_at"),
        Index("ix_ai_model_usage_provider_created", "provider", "created_at"),
        Index("ix_ai_model_usage_created_id", "created_at", "id"),
        # only unpriced rows: the unpriced-usage report reads it, inserts of priced rows never touch it
        Index("ix_ai_model_usage_unpriced", "created_at", postgresql_where=text("unpriced"),
              sqlite_where=text("unpriced")),
    )


class AIModelConfig(Base):
    """A user's saved model preference for one agent."""

    __tablename__ = "ai_model_config"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[str] = mapped_column(String(64))
    primary_provider: Mapped[str] = mapped_column(String(32))
    primary_model: Mapped[str] = mapped_column(String(200))
    fallback_chain: Mapped[list] = mapped_column(JSON, default=list)
    """[{"provider": …, "model": …}, …] tried after the primary, in order."""
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    temperature: Mapped[float | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("user_id", "agent_id", name="uq_ai_model_config_user_agent"),)


class AIProviderCost(Base):
    """A price, effective from a moment on.  A new price is a new row: history is never rewritten.

    Prices are USD per 1k tokens, as the column names say (people read them per 1M: `llmrelay pricing
    list`, the CSV export, the `usage_usd` view).  `Money` stores them exactly: NUMERIC(24, 12) on
    PostgreSQL, an integer count of pico-dollars (10^-12 USD) on SQLite, so a person reading the SQLite
    file directly sees 3000000 for $3 per 1M tokens ($0.000003 a token, $0.003 per 1k).

    A tiered price is several rows with the same provider, model and `effective_from`: the base row
    (`above_input_tokens` 0) and one row per tier, whose prices apply to every token of a call with
    more input tokens than its `above_input_tokens`."""

    __tablename__ = "ai_provider_costs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    """A model id, or `*` for every model of the provider without a row of its own."""
    input_cost_per_1k_tokens: Mapped[Decimal] = mapped_column(Money)
    output_cost_per_1k_tokens: Mapped[Decimal] = mapped_column(Money)
    """Reasoning tokens included: providers bill them as output."""
    cached_input_cost_per_1k_tokens: Mapped[Decimal | None] = mapped_column(Money)
    """Input read from a prompt cache (NULL: billed as input)."""
    cache_write_cost_per_1k_tokens: Mapped[Decimal | None] = mapped_column(Money)
    """Input written to a prompt cache, Anthropic's 5-minute writes (NULL: billed as input)."""
    source: Mapped[str] = mapped_column(String(32), default="manual")
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cache_write_1h_cost_per_1k_tokens: Mapped[Decimal | None] = mapped_column(Money)
    """Input written to a 1-hour prompt cache (Anthropic; NULL: billed as a 5-minute write)."""
    above_input_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    """0: the base price; n > 0: a tier, the prices of a call with more than n input tokens (all of them)."""

    __table_args__ = (Index("ix_ai_provider_costs_lookup", "provider", "model", "effective_from"),)


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    agent_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConversationMessage(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    """The turn's text."""
    parts: Mapped[list | None] = mapped_column(JSON)
    """The turn's parts (`content.parts_to_json`) when it holds more than text: images, tool calls and
    results, reasoning; NULL for a text-only turn."""
    provider: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StoredResponse(Base):
    """A response of the OpenAI Responses API kept for `previous_response_id` and `GET /v1/responses/{id}`
    (`store`, the API's default): its owner, the whole conversation up to and including it, and its body."""

    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    previous_id: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(300))
    turns: Mapped[list] = mapped_column(JSON)
    """The conversation including this response's output: `[{"role", "parts"}]` (`content.parts_to_json`),
    with the instructions as a `system` turn when there were some."""
    body: Mapped[dict] = mapped_column(JSON)
    """The response object as it was returned."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Budget(Base):
    """A USD limit per period on a user, an agent, or one user's use of one agent (`scope`:
    `user:<id>`, `agent:<id>`, `user:<id>/agent:<id>`).  What a period has spent is read from the ledger."""

    __tablename__ = "budgets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[str | None] = mapped_column(String(64))
    agent_id: Mapped[str | None] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(8), default="month")
    """`month` (calendar month in UTC from `reset_day`), `week` (from Monday 00:00 UTC) or `day`."""
    reset_day: Mapped[int] = mapped_column(Integer, default=1)
    """The day of the month a monthly period starts on (1-31; a shorter month's last day stands in)."""
    limit_usd: Mapped[Decimal] = mapped_column(Money)
    """The hard limit."""
    soft_percent: Mapped[int] = mapped_column(Integer, default=80)
    """The soft threshold, in percent of the hard limit."""
    unpriced: Mapped[str] = mapped_column(String(8), default="refuse")
    """`refuse` (a model without a known price may not serve: its cost is unknown) or `allow`."""
    webhook_url: Mapped[str | None] = mapped_column(Text)
    """Told (POST, JSON) when a period's spend crosses the soft or the hard threshold."""
    lease_seq: Mapped[int] = mapped_column(Integer, default=0)
    """Bumped by every lease taken: the write that serialises admissions across processes."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BudgetLease(Base):
    """Money of one budget's period set aside by one process for the requests it admits.  It counts as
    spent for `amount - used` (what is reserved but not yet in the ledger) until it expires; the ledger
    writer adds each row's cost to `used` in the transaction that inserts the row."""

    __tablename__ = "budget_leases"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    budget_id: Mapped[str] = mapped_column(ForeignKey("budgets.id", ondelete="CASCADE"))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    amount: Mapped[Decimal] = mapped_column(Money)
    used: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_budget_leases_budget_period", "budget_id", "period_start"),)


class BudgetEvent(Base):
    """A threshold a budget's period crossed, once (its id: budget, period start, level), and whether its
    webhook took it."""

    __tablename__ = "budget_events"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    budget_id: Mapped[str] = mapped_column(ForeignKey("budgets.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(8))
    spent_usd: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """One admin action (`db/audit.py` writes it, in the transaction of the change it records): who did
    what to what, with the new values.  Never a secret: a key is named by its prefix, a URL kept without
    its query and credentials."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    """A user id (the API), or `cli:<os user>` (the command line)."""
    action: Mapped[str] = mapped_column(String(32))
    """`user.add`, `key.create`, `key.revoke`, `budget.set`, `budget.clear`, `price.set`, `price.sync`."""
    target: Mapped[str] = mapped_column(String(300))
    """What was acted on: a user name, a key's prefix, a budget's scope, `provider/model`, a provider."""
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(8))
    """`cli` or `api`."""

    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_action_at", "action", "at"))
