"""cross-border import: products' cross-border facts, orders' buyers and tax, yearly quota
counters, customs declarations

Revision ID: 0012
Revises: 0011
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import haina.core.db
from haina.migrations.partitioning import partition_by_tenant

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('crossborder_products',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('hs_code', sa.String(length=10), nullable=False),
    sa.Column('origin_country', sa.String(length=2), nullable=False),
    sa.Column('vat_rate', sa.String(length=8), nullable=False),
    sa.Column('consumption_rate', sa.String(length=8), nullable=False),
    sa.Column('net_weight_g', sa.Integer(), nullable=False),
    sa.Column('gross_weight_g', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_crossborder_products'))
    )
    op.create_table('crossborder_orders',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('buyer_name', sa.String(length=60), nullable=False),
    sa.Column('buyer_phone', sa.String(length=24), nullable=False),
    sa.Column('id_key', sa.String(length=16), nullable=False),
    sa.Column('id_cipher', sa.Text(), nullable=False),
    sa.Column('id_index', sa.String(length=64), nullable=False),
    sa.Column('id_masked', sa.String(length=18), nullable=False),
    sa.Column('dutiable_minor', sa.BigInteger(), nullable=False),
    sa.Column('tax_minor', sa.BigInteger(), nullable=False),
    sa.Column('tax_lines', JSON, nullable=False),
    sa.Column('quota_year', sa.Integer(), nullable=False),
    sa.Column('quota_status', sa.String(length=16), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('released_at', TS, nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_crossborder_orders'))
    )
    op.create_index('ix_crossborder_orders_identity', 'crossborder_orders',
                    ['tenant_id', 'id_index'])
    op.create_table('crossborder_quotas',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('id_index', sa.String(length=64), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('used_minor', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_crossborder_quotas')),
    sa.UniqueConstraint('tenant_id', 'id_index', 'year',
                        name='uq_crossborder_quotas_identity_year')
    )
    op.create_table('crossborder_declarations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('messages', JSON, nullable=False),
    sa.Column('receipts', JSON, nullable=False),
    sa.Column('tax_bill', JSON, nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_crossborder_declarations')),
    sa.UniqueConstraint('tenant_id', 'order_id', name='uq_crossborder_declarations_order')
    )
    partition_by_tenant(['crossborder_products', 'crossborder_orders', 'crossborder_quotas',
                         'crossborder_declarations'])


def downgrade() -> None:
    op.drop_table('crossborder_declarations')
    op.drop_table('crossborder_quotas')
    op.drop_table('crossborder_orders')
    op.drop_table('crossborder_products')
