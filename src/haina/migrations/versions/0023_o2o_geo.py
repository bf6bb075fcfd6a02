"""o2o: the nearest-first search's box lookup — each point's latitude band and the codes of
the services it offers on its row, and the (tenant_id, lat_band, lng, lat) index

Revision ID: 0023
Revises: 0022
"""
from __future__ import annotations

import math

import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

#: as haina.o2o.geo.BANDS_PER_DEGREE when this migration was written
BANDS_PER_DEGREE = 100


def upgrade() -> None:
    with op.batch_alter_table('service_points') as batch:
        batch.add_column(sa.Column('lat_band', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('service_codes', sa.Text(), nullable=False,
                                   server_default=' '))
    # the points already there: their band, and " code code " of their services
    conn = op.get_bind()
    codes: dict[tuple[str, str], list[str]] = {}
    for tenant_id, point_id, code in conn.execute(sa.text(
            "SELECT tenant_id, point_id, code FROM point_services")):
        codes.setdefault((tenant_id, point_id), []).append(code)
    rows = [{"tenant_id": tenant_id, "id": point_id,
             "band": math.floor(lat * BANDS_PER_DEGREE),
             "codes": " " + "".join(f"{c} " for c in sorted(codes.get((tenant_id, point_id), [])))}
            for tenant_id, point_id, lat in conn.execute(sa.text(
                "SELECT tenant_id, id, lat FROM service_points"))]
    if rows:
        conn.execute(sa.text("UPDATE service_points SET lat_band = :band, service_codes = :codes "
                             "WHERE tenant_id = :tenant_id AND id = :id"), rows)
    op.create_index('ix_service_points_tenant_band', 'service_points',
                    ['tenant_id', 'lat_band', 'lng', 'lat'])


def downgrade() -> None:
    op.drop_index('ix_service_points_tenant_band', table_name='service_points')
    with op.batch_alter_table('service_points') as batch:
        batch.drop_column('service_codes')
        batch.drop_column('lat_band')
