"""ai_model_usage.tool_calls / images: how many tool calls an attempt's answer held, and how many
images its request sent (agent-grade requests: tools, images and structured output).

Existing rows are text-only calls: 0 and 0.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ai_model_usage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tool_calls", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("images", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("parts")
    with op.batch_alter_table("ai_model_usage", schema=None) as batch_op:
        batch_op.drop_column("images")
        batch_op.drop_column("tool_calls")
