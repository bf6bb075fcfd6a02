"""storefront: publishable keys, sign-in codes, buyer sessions

Revision ID: 0013
Revises: 0012
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import haina.core.db
from haina.migrations.partitioning import partition_by_tenant

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def upgrade() -> None:
    # global (found by the key before the merchant is known), like api_tokens
    op.create_table('storefront_keys',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('allowed_origins', JSON, nullable=False),
    sa.Column('sandbox', sa.Boolean(), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('revoked_at', TS, nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_storefront_keys_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_storefront_keys')),
    sa.UniqueConstraint('key', name=op.f('uq_storefront_keys_key'))
    )
    op.create_index(op.f('ix_storefront_keys_tenant_id'), 'storefront_keys', ['tenant_id'])
    op.create_table('storefront_sign_in_codes',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('salt', sa.String(length=32), nullable=False),
    sa.Column('sandbox_code', sa.String(length=6), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('expires_at', TS, nullable=False),
    sa.Column('used_at', TS, nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_storefront_sign_in_codes'))
    )
    op.create_index('ix_storefront_sign_in_codes_phone', 'storefront_sign_in_codes',
                    ['tenant_id', 'phone', 'created_at'])
    op.create_table('storefront_sessions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('access_hash', sa.String(length=64), nullable=False),
    sa.Column('refresh_hash', sa.String(length=64), nullable=False),
    sa.Column('access_expires_at', TS, nullable=False),
    sa.Column('refresh_expires_at', TS, nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('revoked_at', TS, nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_storefront_sessions'))
    )
    op.create_index('uq_storefront_sessions_access', 'storefront_sessions',
                    ['tenant_id', 'access_hash'], unique=True)
    op.create_index('uq_storefront_sessions_refresh', 'storefront_sessions',
                    ['tenant_id', 'refresh_hash'], unique=True)
    op.create_index('ix_storefront_sessions_member', 'storefront_sessions',
                    ['tenant_id', 'member_id'])
    partition_by_tenant(['storefront_sign_in_codes', 'storefront_sessions'])


def downgrade() -> None:
    op.drop_table('storefront_sessions')
    op.drop_table('storefront_sign_in_codes')
    op.drop_index(op.f('ix_storefront_keys_tenant_id'), table_name='storefront_keys')
    op.drop_table('storefront_keys')
