"""ai_model_usage.first_on_provider / first_on_model: a request's first attempt on a provider (model)

Usage statistics by provider or model count the requests that reached each one.  A request can
try several providers, and one provider more than once (retries, or two of its models), so that
count was a DISTINCT over request ids: a sort of the whole window, a pass of its own.  With these
flags, set by the fallback executor as it records each attempt, it is a plain count.

Existing rows are backfilled from their request's earlier attempts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ai_model_usage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_on_provider", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column("first_on_model", sa.Boolean(), server_default=sa.true(), nullable=False))
    earlier = ("UPDATE ai_model_usage SET {flag} = false WHERE attempt > 1 AND EXISTS ("
               "SELECT 1 FROM ai_model_usage AS e WHERE e.request_id = ai_model_usage.request_id "
               "AND e.provider = ai_model_usage.provider AND e.attempt < ai_model_usage.attempt{model})")
    op.execute(earlier.format(flag="first_on_provider", model=""))
    op.execute(earlier.format(flag="first_on_model", model=" AND e.model = ai_model_usage.model"))


def downgrade() -> None:
    with op.batch_alter_table("ai_model_usage", schema=None) as batch_op:
        batch_op.drop_column("first_on_model")
        batch_op.drop_column("first_on_provider")
