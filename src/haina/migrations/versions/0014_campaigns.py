"""marketing: the coupon wallet (coupons issued to members, public vs issued-only coupons);
campaigns and their members (treated or holdout); first-order claims

Revision ID: 0014
Revises: 0013
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import haina.core.db
from haina.migrations.partitioning import partition_by_tenant

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('coupons') as batch:
        batch.add_column(sa.Column('audience', sa.String(length=16), nullable=False,
                                   server_default='public'))
        batch.add_column(sa.Column('issued', sa.Integer(), nullable=False, server_default='0'))
    op.create_table('coupon_wallet',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('coupon_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=48), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=True),
    sa.Column('issued_at', TS, nullable=False),
    sa.Column('used_at', TS, nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'coupon_id'], ['coupons.tenant_id', 'coupons.id'],
                            name=op.f('fk_coupon_wallet_tenant_id_coupons')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_coupon_wallet')),
    sa.UniqueConstraint('tenant_id', 'coupon_id', 'member_id',
                        name='uq_coupon_wallet_coupon_member')
    )
    op.create_index('ix_coupon_wallet_member', 'coupon_wallet', ['tenant_id', 'member_id', 'id'])
    op.create_index('ix_coupon_wallet_order', 'coupon_wallet', ['tenant_id', 'order_id'])
    op.create_table('campaigns',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('segment_id', sa.String(length=40), nullable=True),
    sa.Column('member_ids', JSON, nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('coupon_id', sa.String(length=40), nullable=False),
    sa.Column('coupon_code', sa.String(length=64), nullable=False),
    sa.Column('unit_cost_minor', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('holdout_bps', sa.Integer(), nullable=False),
    sa.Column('seed', sa.String(length=64), nullable=False),
    sa.Column('budget_minor', sa.BigInteger(), nullable=True),
    sa.Column('committed_minor', sa.BigInteger(), nullable=False),
    sa.Column('audience', sa.Integer(), nullable=False),
    sa.Column('candidates', sa.Integer(), nullable=False),
    sa.Column('treated', sa.Integer(), nullable=False),
    sa.Column('holdout', sa.Integer(), nullable=False),
    sa.Column('left_out', sa.Integer(), nullable=False),
    sa.Column('starts_at', TS, nullable=False),
    sa.Column('ends_at', TS, nullable=False),
    sa.Column('launched_at', TS, nullable=True),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_campaigns'))
    )
    op.create_index('ix_campaigns_tenant_status', 'campaigns', ['tenant_id', 'status'])
    op.create_table('campaign_members',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('arm', sa.String(length=16), nullable=False),
    sa.Column('basis', sa.String(length=64), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'campaign_id'], ['campaigns.tenant_id', 'campaigns.id'],
                            name=op.f('fk_campaign_members_tenant_id_campaigns')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_campaign_members')),
    sa.UniqueConstraint('tenant_id', 'campaign_id', 'member_id',
                        name='uq_campaign_members_member')
    )
    op.create_index('ix_campaign_members_member', 'campaign_members', ['tenant_id', 'member_id'])
    op.create_table('first_order_claims',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('promotion_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'promotion_id'],
                            ['promotions.tenant_id', 'promotions.id'],
                            name=op.f('fk_first_order_claims_tenant_id_promotions')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_first_order_claims')),
    sa.UniqueConstraint('tenant_id', 'promotion_id', 'member_id',
                        name='uq_first_order_claims_member')
    )
    op.create_index('ix_first_order_claims_order', 'first_order_claims', ['tenant_id', 'order_id'])
    partition_by_tenant(['coupon_wallet', 'campaigns', 'campaign_members', 'first_order_claims'])


def downgrade() -> None:
    op.drop_table('first_order_claims')
    op.drop_table('campaign_members')
    op.drop_table('campaigns')
    op.drop_table('coupon_wallet')
    with op.batch_alter_table('coupons') as batch:
        batch.drop_column('issued')
        batch.drop_column('audience')
