"""cross-border: qualification files, tracking; privacy erasures

Revision ID: 0015
Revises: 0014
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import haina.core.db
from haina.migrations.partitioning import partition_by_tenant

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def upgrade() -> None:
    # members erased at the person's request: their writes are refused (docs/privacy.md)
    op.create_table('member_erasures',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('erased_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'id'], ['members.tenant_id', 'members.id'],
                            name=op.f('fk_member_erasures_tenant_id_members')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_member_erasures'))
    )
    # foreign brands' qualification files and every submission and decision on them
    op.create_table('crossborder_brands',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('origin_country', sa.String(length=2), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('agency_app_id', sa.String(length=40), nullable=True),
    sa.Column('agency_name', sa.String(length=200), nullable=False),
    sa.Column('authorisation', JSON, nullable=False),
    sa.Column('documents', JSON, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('submitted_by', sa.String(length=200), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', TS, nullable=True),
    sa.Column('reason', sa.String(length=2000), nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_crossborder_brands')),
    sa.UniqueConstraint('tenant_id', 'name', name='uq_crossborder_brands_name')
    )
    op.create_index('ix_crossborder_brands_status', 'crossborder_brands',
                    ['tenant_id', 'status'])
    op.create_table('crossborder_brand_decisions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('brand_id', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.String(length=2000), nullable=True),
    sa.Column('at', TS, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'brand_id'],
                            ['crossborder_brands.tenant_id', 'crossborder_brands.id'],
                            name=op.f('fk_crossborder_brand_decisions_tenant_id_crossborder_brands')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_crossborder_brand_decisions'))
    )
    op.create_index('ix_crossborder_brand_decisions_brand', 'crossborder_brand_decisions',
                    ['tenant_id', 'brand_id', 'id'])
    # apps the platform delegated reviews to (global: they review for every merchant)
    op.create_table('crossborder_reviewers',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('delegated_by', sa.String(length=200), nullable=False),
    sa.Column('evidence', sa.String(length=2000), nullable=False),
    sa.Column('delegated_at', TS, nullable=False),
    sa.Column('revoked_at', TS, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crossborder_reviewers'))
    )
    with op.batch_alter_table('crossborder_products') as batch:
        batch.add_column(sa.Column('brand_id', sa.String(length=40), nullable=True))
    # partial refunds give back the quota in proportion; the tax's share of refunds
    with op.batch_alter_table('crossborder_orders') as batch:
        batch.add_column(sa.Column('quota_returned_minor', sa.BigInteger(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('tax_refunded_minor', sa.BigInteger(), nullable=False,
                                   server_default='0'))
    # the latest carrier status of each cross-border order's parcel
    op.create_table('crossborder_tracking',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('carrier', sa.String(length=64), nullable=False),
    sa.Column('tracking_number', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('at', TS, nullable=False),
    sa.Column('location', sa.String(length=200), nullable=True),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_crossborder_tracking'))
    )
    # the enterprise a merchant's declarations name by default
    op.create_table('crossborder_customs_profiles',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('enterprise', JSON, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_crossborder_customs_profiles'))
    )
    partition_by_tenant(['member_erasures', 'crossborder_brands',
                         'crossborder_brand_decisions', 'crossborder_tracking',
                         'crossborder_customs_profiles'])


def downgrade() -> None:
    op.drop_table('crossborder_customs_profiles')
    op.drop_table('crossborder_tracking')
    with op.batch_alter_table('crossborder_orders') as batch:
        batch.drop_column('tax_refunded_minor')
        batch.drop_column('quota_returned_minor')
    with op.batch_alter_table('crossborder_products') as batch:
        batch.drop_column('brand_id')
    op.drop_table('crossborder_reviewers')
    op.drop_table('crossborder_brand_decisions')
    op.drop_table('crossborder_brands')
    op.drop_table('member_erasures')
