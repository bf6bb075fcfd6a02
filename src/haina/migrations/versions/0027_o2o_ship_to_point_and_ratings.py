"""o2o: a service point's postal address (goods booked with a job there ship to it) and its
ratings — the province, city, district, postal code and country beside its street; the goods
coming on a booking; the buyers' ratings of completed bookings and, on the point, how many
and their sum

Revision ID: 0027
Revises: 0026
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import haina.core.db
from haina.migrations.partitioning import partition_by_tenant

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)
ID = sa.String(length=40)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    # the points already there: no province, city … (their street stays in ``address``),
    # in China, not rated yet
    with op.batch_alter_table('service_points') as batch:
        batch.add_column(sa.Column('province', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('city', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('district', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('postal_code', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('country', sa.String(length=2), nullable=False,
                                   server_default='CN'))
        batch.add_column(sa.Column('rating_count', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('rating_sum', sa.Integer(), nullable=False,
                                   server_default='0'))
    with op.batch_alter_table('bookings') as batch:
        batch.add_column(sa.Column('goods', JSON, nullable=True))
    op.create_table('o2o_ratings',
    sa.Column('id', ID, nullable=False),
    sa.Column('tenant_id', ID, nullable=False),
    sa.Column('booking_id', ID, nullable=False),
    sa.Column('point_id', ID, nullable=False),
    sa.Column('member_id', ID, nullable=True),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('comment', sa.String(length=1000), nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('merchant_tenant_id', ID, nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'booking_id'], ['bookings.tenant_id', 'bookings.id'],
                            name=op.f('fk_o2o_ratings_tenant_id_bookings')),
    sa.ForeignKeyConstraint(['tenant_id', 'point_id'],
                            ['service_points.tenant_id', 'service_points.id'],
                            name=op.f('fk_o2o_ratings_tenant_id_service_points')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_o2o_ratings')),
    sa.UniqueConstraint('tenant_id', 'booking_id', name='uq_o2o_ratings_tenant_booking')
    )
    op.create_index('ix_o2o_ratings_tenant_point', 'o2o_ratings',
                    ['tenant_id', 'point_id', 'id'])
    op.create_index('ix_o2o_ratings_tenant_member', 'o2o_ratings', ['tenant_id', 'member_id'])
    partition_by_tenant(['o2o_ratings'])


def downgrade() -> None:
    op.drop_index('ix_o2o_ratings_tenant_member', table_name='o2o_ratings')
    op.drop_index('ix_o2o_ratings_tenant_point', table_name='o2o_ratings')
    op.drop_table('o2o_ratings')
    with op.batch_alter_table('bookings') as batch:
        batch.drop_column('goods')
    with op.batch_alter_table('service_points') as batch:
        for name in ('rating_sum', 'rating_count', 'country', 'postal_code', 'district',
                     'city', 'province'):
            batch.drop_column(name)
