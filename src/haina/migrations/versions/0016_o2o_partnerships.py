"""o2o: the next free slots precomputed per point service

Revision ID: 0016
Revises: 0015
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import haina.core.db

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')


def upgrade() -> None:
    # rows already there start stale (NULL): read through the slow path until the worker
    # refreshes them
    with op.batch_alter_table('point_services') as batch:
        batch.add_column(sa.Column('next_free', JSON, nullable=True))
        batch.add_column(sa.Column('next_free_until', TS, nullable=True))
    op.create_index('ix_point_services_next_free_until', 'point_services', ['next_free_until'])


def downgrade() -> None:
    op.drop_index('ix_point_services_next_free_until', table_name='point_services')
    with op.batch_alter_table('point_services') as batch:
        batch.drop_column('next_free_until')
        batch.drop_column('next_free')
