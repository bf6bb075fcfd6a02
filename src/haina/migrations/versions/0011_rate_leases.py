"""rate limits: a bucket records the size of the last lease it gave (haina.core.ratelimit)

Revision ID: 0011
Revises: 0010
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rate_buckets') as batch:
        batch.add_column(sa.Column('taken', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('rate_buckets') as batch:
        batch.drop_column('taken')
