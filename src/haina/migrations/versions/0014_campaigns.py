"""marketing: the coupon wallet (coupons issued to members, public vs issued-only coupons)

Revision ID: 0014
Revises: 0013
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haina.core.db
from haina.migrations.partitioning import partition_by_tenant

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)


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
    partition_by_tenant(['coupon_wallet'])


def downgrade() -> None:
    op.drop_table('coupon_wallet')
    with op.batch_alter_table('coupons') as batch:
        batch.drop_column('issued')
        batch.drop_column('audience')
