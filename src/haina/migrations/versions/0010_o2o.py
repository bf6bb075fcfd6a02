"""o2o: service points, their services, fitment rules, slot counters and bookings

Revision ID: 0010
Revises: 0009
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import haina.core.db
from haina.migrations.partitioning import partition_by_tenant

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
ID = sa.String(length=40)


def upgrade() -> None:
    op.create_table('service_points',
    sa.Column('id', ID, nullable=False),
    sa.Column('tenant_id', ID, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('lat', sa.Double(), nullable=False),
    sa.Column('lng', sa.Double(), nullable=False),
    sa.Column('h3_r5', sa.String(length=16), nullable=False),
    sa.Column('h3_r7', sa.String(length=16), nullable=False),
    sa.Column('h3_r9', sa.String(length=16), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('opening_hours', JSON, nullable=False),
    sa.Column('exceptions', JSON, nullable=False),
    sa.Column('fitment', JSON, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_service_points'))
    )
    op.create_index('ix_service_points_tenant_h3_r7', 'service_points', ['tenant_id', 'h3_r7'])
    op.create_index('ix_service_points_tenant_h3_r5', 'service_points', ['tenant_id', 'h3_r5'])
    op.create_index('ix_service_points_tenant_h3_r9', 'service_points', ['tenant_id', 'h3_r9'])
    op.create_table('point_services',
    sa.Column('id', ID, nullable=False),
    sa.Column('tenant_id', ID, nullable=False),
    sa.Column('point_id', ID, nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('buffer_before_minutes', sa.Integer(), nullable=False),
    sa.Column('buffer_after_minutes', sa.Integer(), nullable=False),
    sa.Column('price_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'point_id'],
                            ['service_points.tenant_id', 'service_points.id'],
                            name=op.f('fk_point_services_tenant_id_service_points')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_point_services')),
    sa.UniqueConstraint('tenant_id', 'point_id', 'code',
                        name='uq_point_services_tenant_point_code')
    )
    op.create_index('ix_point_services_tenant_code', 'point_services', ['tenant_id', 'code'])
    op.create_table('fitment_rules',
    sa.Column('id', ID, nullable=False),
    sa.Column('tenant_id', ID, nullable=False),
    sa.Column('service_code', sa.String(length=64), nullable=False),
    sa.Column('category_id', ID, nullable=True),
    sa.Column('attribute', sa.String(length=64), nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_fitment_rules'))
    )
    op.create_index('ix_fitment_rules_tenant_service', 'fitment_rules',
                    ['tenant_id', 'service_code'])
    op.create_table('booking_slots',
    sa.Column('id', ID, nullable=False),
    sa.Column('tenant_id', ID, nullable=False),
    sa.Column('service_id', ID, nullable=False),
    sa.Column('start_at', TS, nullable=False),
    sa.Column('taken', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_booking_slots')),
    sa.UniqueConstraint('tenant_id', 'service_id', 'start_at',
                        name='uq_booking_slots_tenant_service_start')
    )
    op.create_table('bookings',
    sa.Column('id', ID, nullable=False),
    sa.Column('tenant_id', ID, nullable=False),
    sa.Column('point_id', ID, nullable=False),
    sa.Column('service_id', ID, nullable=False),
    sa.Column('service_code', sa.String(length=64), nullable=False),
    sa.Column('start_at', TS, nullable=False),
    sa.Column('end_at', TS, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('expires_at', TS, nullable=True),
    sa.Column('member_id', ID, nullable=True),
    sa.Column('order_id', ID, nullable=True),
    sa.Column('sku', sa.String(length=100), nullable=True),
    sa.Column('price_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'point_id'],
                            ['service_points.tenant_id', 'service_points.id'],
                            name=op.f('fk_bookings_tenant_id_service_points')),
    sa.ForeignKeyConstraint(['tenant_id', 'service_id'],
                            ['point_services.tenant_id', 'point_services.id'],
                            name=op.f('fk_bookings_tenant_id_point_services')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_bookings'))
    )
    op.create_index('ix_bookings_tenant_service_start', 'bookings',
                    ['tenant_id', 'service_id', 'start_at'])
    op.create_index('ix_bookings_tenant_point_start', 'bookings',
                    ['tenant_id', 'point_id', 'start_at'])
    op.create_index('ix_bookings_tenant_order', 'bookings', ['tenant_id', 'order_id'])
    op.create_index('ix_bookings_status_expiry', 'bookings', ['status', 'expires_at'])
    partition_by_tenant(['service_points', 'point_services', 'fitment_rules', 'booking_slots',
                         'bookings'])


def downgrade() -> None:
    op.drop_table('bookings')
    op.drop_table('booking_slots')
    op.drop_table('fitment_rules')
    op.drop_table('point_services')
    op.drop_table('service_points')
