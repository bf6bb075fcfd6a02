"""marketing: promotions, their target index and redemptions; order lines' allocated discount

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import haina.core.db
from haina.migrations.partitioning import partition_by_tenant

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('promotions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('stacking_group', sa.String(length=64), nullable=True),
    sa.Column('exclusive', sa.Boolean(), nullable=False),
    sa.Column('product_ids', JSON, nullable=True),
    sa.Column('category_ids', JSON, nullable=True),
    sa.Column('tier_ids', JSON, nullable=True),
    sa.Column('min_subtotal_minor', sa.BigInteger(), nullable=False),
    sa.Column('params', JSON, nullable=False),
    sa.Column('budget_minor', sa.BigInteger(), nullable=True),
    sa.Column('spent_minor', sa.BigInteger(), nullable=False),
    sa.Column('starts_at', TS, nullable=True),
    sa.Column('ends_at', TS, nullable=True),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_promotions'))
    )
    op.create_index('ix_promotions_tenant_status', 'promotions', ['tenant_id', 'status'])
    op.create_table('promotion_targets',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('promotion_id', sa.String(length=40), nullable=False),
    sa.Column('target', sa.String(length=48), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'promotion_id'],
                            ['promotions.tenant_id', 'promotions.id'],
                            name=op.f('fk_promotion_targets_tenant_id_promotions')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_promotion_targets'))
    )
    op.create_index('ix_promotion_targets_target', 'promotion_targets',
                    ['tenant_id', 'target', 'promotion_id'])
    op.create_table('promotion_redemptions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('promotion_id', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=True),
    sa.Column('discount_minor', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('released_at', TS, nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'promotion_id'],
                            ['promotions.tenant_id', 'promotions.id'],
                            name=op.f('fk_promotion_redemptions_tenant_id_promotions')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_promotion_redemptions'))
    )
    op.create_index('ix_promotion_redemptions_order', 'promotion_redemptions',
                    ['tenant_id', 'order_id'])
    op.create_index('ix_promotion_redemptions_promotion', 'promotion_redemptions',
                    ['tenant_id', 'promotion_id'])
    with op.batch_alter_table('order_lines') as batch:
        batch.add_column(sa.Column('discount_minor', sa.BigInteger(), nullable=False,
                                   server_default='0'))
    partition_by_tenant(['promotions', 'promotion_targets', 'promotion_redemptions'])


def downgrade() -> None:
    with op.batch_alter_table('order_lines') as batch:
        batch.drop_column('discount_minor')
    op.drop_table('promotion_redemptions')
    op.drop_table('promotion_targets')
    op.drop_table('promotions')
