"""o2o: on PostgreSQL, the nearest-first search's box read index-only — the band index
replaced by two partial ones on 0.04° bands (``floor(lat * 25)``): the points whose service
codes and fitment are short, with the columns the search filters and answers included, and
the others (SQLite keeps its one index on ``lat_band``)

Revision ID: 0026
Revises: 0025
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

#: as haina.o2o.models.BAND_SHORT and PG_BAND when this migration was written
SHORT = ("octet_length(service_codes) <= 400 "
         "AND octet_length(CAST(fitment AS TEXT)) <= 300")
BAND: list[str | sa.TextClause] = ['tenant_id', sa.text('floor(lat * 25)'), 'lng', 'lat']


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.create_index('ix_service_points_band_short', 'service_points', BAND,
                    postgresql_include=['id', 'status', 'service_codes', 'fitment'],
                    postgresql_where=sa.text(SHORT))
    op.create_index('ix_service_points_band_long', 'service_points', BAND,
                    postgresql_where=sa.text(f"NOT ({SHORT})"))
    op.drop_index('ix_service_points_tenant_band', table_name='service_points')


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.create_index('ix_service_points_tenant_band', 'service_points',
                    ['tenant_id', 'lat_band', 'lng', 'lat'])
    op.drop_index('ix_service_points_band_long', table_name='service_points')
    op.drop_index('ix_service_points_band_short', table_name='service_points')
