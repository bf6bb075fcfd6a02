"""webhooks: a rotated secret keeps signing beside the new one for a grace period

Revision ID: 0017
Revises: 0016
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_endpoints') as batch:
        batch.add_column(sa.Column('previous_secret', sa.String(100), nullable=True))
        batch.add_column(sa.Column('previous_secret_until', sa.DateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhook_endpoints') as batch:
        batch.drop_column('previous_secret_until')
        batch.drop_column('previous_secret')
