"""o2o: resources a point's services share (a lift) and their counters; the merchant's
points per resolution-7 cell (where a nearest-first search starts); the buyer on the link to
a booking at a partner's point

Revision ID: 0021
Revises: 0020
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haina.core.db
from haina.migrations.partitioning import partition_by_tenant

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)
ID = sa.String(length=40)


def upgrade() -> None:
    op.create_table('o2o_resources',
    sa.Column('id', ID, nullable=False),
    sa.Column('tenant_id', ID, nullable=False),
    sa.Column('point_id', ID, nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'point_id'],
                            ['service_points.tenant_id', 'service_points.id'],
                            name=op.f('fk_o2o_resources_tenant_id_service_points')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_o2o_resources')),
    sa.UniqueConstraint('tenant_id', 'point_id', 'code',
                        name='uq_o2o_resources_tenant_point_code')
    )
    op.create_table('o2o_resource_slots',
    sa.Column('id', ID, nullable=False),
    sa.Column('tenant_id', ID, nullable=False),
    sa.Column('resource_id', ID, nullable=False),
    sa.Column('start_at', TS, nullable=False),
    sa.Column('taken', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_o2o_resource_slots')),
    sa.UniqueConstraint('tenant_id', 'resource_id', 'start_at',
                        name='uq_o2o_resource_slots_tenant_resource_start')
    )
    op.create_table('o2o_point_density',
    sa.Column('id', sa.String(length=16), nullable=False),
    sa.Column('tenant_id', ID, nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_o2o_point_density'))
    )
    # the density of the points already there: active points per (merchant, res-7 cell)
    op.execute("INSERT INTO o2o_point_density (tenant_id, id, points) "
               "SELECT tenant_id, h3_r7, count(*) FROM service_points WHERE status = 'active' "
               "GROUP BY tenant_id, h3_r7")
    with op.batch_alter_table('point_services') as batch:
        batch.add_column(sa.Column('resource_id', ID, nullable=True))
    with op.batch_alter_table('o2o_partner_bookings') as batch:
        batch.add_column(sa.Column('member_id', ID, nullable=True))
    op.create_index('ix_o2o_partner_bookings_tenant_member', 'o2o_partner_bookings',
                    ['tenant_id', 'member_id'])
    partition_by_tenant(['o2o_resources', 'o2o_resource_slots', 'o2o_point_density'])


def downgrade() -> None:
    op.drop_index('ix_o2o_partner_bookings_tenant_member', table_name='o2o_partner_bookings')
    with op.batch_alter_table('o2o_partner_bookings') as batch:
        batch.drop_column('member_id')
    with op.batch_alter_table('point_services') as batch:
        batch.drop_column('resource_id')
    op.drop_table('o2o_point_density')
    op.drop_table('o2o_resource_slots')
    op.drop_table('o2o_resources')
