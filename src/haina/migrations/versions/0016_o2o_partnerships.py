"""o2o: the next free slots kept per point service; installer partnerships and the
merchant's links to bookings at its partners' points; service fee order lines

Revision ID: 0016
Revises: 0015
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import haina.core.db
from haina.migrations.partitioning import partition_by_tenant

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
ID = sa.String(length=40)


def upgrade() -> None:
    # rows already there start stale (NULL): read through the slow path until the worker
    # refreshes them
    with op.batch_alter_table('point_services') as batch:
        batch.add_column(sa.Column('next_free', JSON, nullable=True))
        batch.add_column(sa.Column('next_free_until', TS, nullable=True))
    op.create_index('ix_point_services_next_free_until', 'point_services', ['next_free_until'])
    with op.batch_alter_table('bookings') as batch:
        batch.add_column(sa.Column('merchant_tenant_id', ID, nullable=True))
        batch.add_column(sa.Column('partnership_id', ID, nullable=True))
    # a service fee's order line: the booking it pays for
    with op.batch_alter_table('order_lines') as batch:
        batch.add_column(sa.Column('booking_id', ID, nullable=True))
    op.create_table('o2o_partnerships',
    sa.Column('id', ID, nullable=False),
    sa.Column('tenant_id', ID, nullable=False),
    sa.Column('partner_tenant_id', ID, nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('invited_by', sa.String(length=16), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_o2o_partnerships')),
    sa.UniqueConstraint('tenant_id', 'partner_tenant_id',
                        name='uq_o2o_partnerships_tenant_partner')
    )
    op.create_table('o2o_partner_bookings',
    sa.Column('id', ID, nullable=False),
    sa.Column('tenant_id', ID, nullable=False),
    sa.Column('installer_tenant_id', ID, nullable=False),
    sa.Column('partnership_id', ID, nullable=False),
    sa.Column('order_id', ID, nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_o2o_partner_bookings'))
    )
    op.create_index('ix_o2o_partner_bookings_tenant_order', 'o2o_partner_bookings',
                    ['tenant_id', 'order_id'])
    partition_by_tenant(['o2o_partnerships', 'o2o_partner_bookings'])


def downgrade() -> None:
    op.drop_table('o2o_partner_bookings')
    op.drop_table('o2o_partnerships')
    with op.batch_alter_table('order_lines') as batch:
        batch.drop_column('booking_id')
    with op.batch_alter_table('bookings') as batch:
        batch.drop_column('partnership_id')
        batch.drop_column('merchant_tenant_id')
    op.drop_index('ix_point_services_next_free_until', table_name='point_services')
    with op.batch_alter_table('point_services') as batch:
        batch.drop_column('next_free_until')
        batch.drop_column('next_free')
