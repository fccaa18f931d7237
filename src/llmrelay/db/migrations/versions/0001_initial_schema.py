"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 11:02:36.571433
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import llmrelay.db.types

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ai_model_config',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('agent_id', sa.String(length=64), nullable=False),
    sa.Column('primary_provider', sa.String(length=32), nullable=False),
    sa.Column('primary_model', sa.String(length=200), nullable=False),
    sa.Column('fallback_chain', sa.JSON(), nullable=False),
    sa.Column('max_tokens', sa.Integer(), nullable=True),
    sa.Column('temperature', sa.Double(), nullable=True),
    sa.Column('created_at', llmrelay.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', llmrelay.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'agent_id', name='uq_ai_model_config_user_agent')
    )
    op.create_table('ai_model_usage',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('agent_id', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error_kind', sa.String(length=32), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('prompt_tokens', sa.Integer(), nullable=False),
    sa.Column('completion_tokens', sa.Integer(), nullable=False),
    sa.Column('total_tokens', sa.Integer(), nullable=False),
    sa.Column('cached_prompt_tokens', sa.Integer(), nullable=False),
    sa.Column('reasoning_tokens', sa.Integer(), nullable=False),
    sa.Column('cache_write_tokens', sa.Integer(), nullable=False),
    sa.Column('cost_usd', llmrelay.db.types.Money(precision=24, scale=12), nullable=True),
    sa.Column('input_price', llmrelay.db.types.Money(precision=24, scale=12), nullable=True),
    sa.Column('output_price', llmrelay.db.types.Money(precision=24, scale=12), nullable=True),
    sa.Column('cached_input_price', llmrelay.db.types.Money(precision=24, scale=12), nullable=True),
    sa.Column('cache_write_price', llmrelay.db.types.Money(precision=24, scale=12), nullable=True),
    sa.Column('unpriced', sa.Boolean(), nullable=False),
    sa.Column('provider_cost_usd', llmrelay.db.types.Money(precision=24, scale=12), nullable=True),
    sa.Column('cost_mismatch', sa.Boolean(), nullable=False),
    sa.Column('latency_ms', sa.Integer(), nullable=False),
    sa.Column('created_at', llmrelay.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ai_model_usage', schema=None) as batch_op:
        batch_op.create_index('ix_ai_model_usage_agent_created', ['agent_id', 'created_at'], unique=False)
        batch_op.create_index('ix_ai_model_usage_created_id', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_ai_model_usage_provider_created', ['provider', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ai_model_usage_request_id'), ['request_id'], unique=False)
        batch_op.create_index('ix_ai_model_usage_user_created', ['user_id', 'created_at'], unique=False)

    op.create_table('ai_provider_costs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('input_cost_per_1k_tokens', llmrelay.db.types.Money(precision=24, scale=12), nullable=False),
    sa.Column('output_cost_per_1k_tokens', llmrelay.db.types.Money(precision=24, scale=12), nullable=False),
    sa.Column('cached_input_cost_per_1k_tokens', llmrelay.db.types.Money(precision=24, scale=12), nullable=True),
    sa.Column('cache_write_cost_per_1k_tokens', llmrelay.db.types.Money(precision=24, scale=12), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('effective_from', llmrelay.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', llmrelay.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ai_provider_costs', schema=None) as batch_op:
        batch_op.create_index('ix_ai_provider_costs_lookup', ['provider', 'model', 'effective_from'], unique=False)

    op.create_table('conversations',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('agent_id', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=True),
    sa.Column('created_at', llmrelay.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', llmrelay.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversations_user_id'), ['user_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', llmrelay.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('api_keys',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=True),
    sa.Column('created_at', llmrelay.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', llmrelay.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', llmrelay.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_prefix'), ['prefix'], unique=False)
        batch_op.create_index(batch_op.f('ix_api_keys_user_id'), ['user_id'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('conversation_id', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=True),
    sa.Column('model', sa.String(length=200), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', llmrelay.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messages_conversation_id'), ['conversation_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_conversation_id'))

    op.drop_table('messages')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_user_id'))
        batch_op.drop_index(batch_op.f('ix_api_keys_prefix'))

    op.drop_table('api_keys')
    op.drop_table('users')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversations_user_id'))

    op.drop_table('conversations')
    with op.batch_alter_table('ai_provider_costs', schema=None) as batch_op:
        batch_op.drop_index('ix_ai_provider_costs_lookup')

    op.drop_table('ai_provider_costs')
    with op.batch_alter_table('ai_model_usage', schema=None) as batch_op:
        batch_op.drop_index('ix_ai_model_usage_user_created')
        batch_op.drop_index(batch_op.f('ix_ai_model_usage_request_id'))
        batch_op.drop_index('ix_ai_model_usage_provider_created')
        batch_op.drop_index('ix_ai_model_usage_created_id')
        batch_op.drop_index('ix_ai_model_usage_agent_created')

    op.drop_table('ai_model_usage')
    op.drop_table('ai_model_config')
