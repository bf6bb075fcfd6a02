"""marketing: coupons and their redemptions

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import haina.core.db
from haina.migrations.partitioning import partition_by_tenant

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('coupons',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('percent_bps', sa.Integer(), nullable=True),
    sa.Column('amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('min_spend_minor', sa.BigInteger(), nullable=False),
    sa.Column('max_discount_minor', sa.BigInteger(), nullable=True),
    sa.Column('max_redemptions', sa.Integer(), nullable=True),
    sa.Column('per_member_limit', sa.Integer(), nullable=True),
    sa.Column('redeemed', sa.Integer(), nullable=False),
    sa.Column('starts_at', TS, nullable=True),
    sa.Column('ends_at', TS, nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('product_ids', JSON, nullable=True),
    sa.Column('category_ids', JSON, nullable=True),
    sa.Column('tier_ids', JSON, nullable=True),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_coupons')),
    sa.UniqueConstraint('tenant_id', 'code', name='uq_coupons_tenant_code')
    )
    op.create_table('coupon_redemptions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('coupon_id', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=True),
    sa.Column('discount_minor', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('released_at', TS, nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'coupon_id'], ['coupons.tenant_id', 'coupons.id'],
                            name=op.f('fk_coupon_redemptions_tenant_id_coupons')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_coupon_redemptions'))
    )
    op.create_index('ix_coupon_redemptions_coupon_member', 'coupon_redemptions',
                    ['tenant_id', 'coupon_id', 'member_id'])
    op.create_index('ix_coupon_redemptions_order', 'coupon_redemptions', ['tenant_id', 'order_id'])
    partition_by_tenant(['coupons', 'coupon_redemptions'])


def downgrade() -> None:
    op.drop_table('coupon_redemptions')
    op.drop_table('coupons')
