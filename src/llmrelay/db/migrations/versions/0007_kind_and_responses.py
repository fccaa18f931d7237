"""ai_model_usage.kind (`chat` | `embedding`), and the `responses` table: what the OpenAI Responses API
stores for `previous_response_id` and `GET /v1/responses/{id}`.

Existing rows are chats.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from llmrelay.db.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ai_model_usage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), server_default=sa.text("'chat'"), nullable=False))
    op.create_table(
        "responses",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("previous_id", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("turns", sa.JSON(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_responses_user_id", "responses", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_responses_user_id", table_name="responses")
    op.drop_table("responses")
    with op.batch_alter_table("ai_model_usage", schema=None) as batch_op:
        batch_op.drop_column("kind")
