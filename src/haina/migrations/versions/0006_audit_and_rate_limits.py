"""audit and rate limits: each event names its actor; token buckets; apps' rate-limit plans

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from haina.migrations.partitioning import partition_by_tenant, partition_mode

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('events') as batch:
        batch.add_column(sa.Column('actor_type', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('actor_id', sa.String(length=40), nullable=True))
    with op.batch_alter_table('apps') as batch:
        batch.add_column(sa.Column('rate_plan', sa.String(length=16), nullable=False,
                                   server_default='standard'))
    # unlogged on PostgreSQL: a bucket lost in a crash only refills early (partitioned tables
    # cannot be unlogged: the partition test mode keeps them logged)
    unlogged = op.get_bind().dialect.name == 'postgresql' and not partition_mode()
    op.create_table('rate_buckets',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('tokens', sa.Float(), nullable=False),
    sa.Column('stamp', sa.Float(), nullable=False),
    sa.Column('allowed', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'key', name=op.f('pk_rate_buckets')),
    prefixes=['UNLOGGED'] if unlogged else []
    )
    partition_by_tenant(['rate_buckets'])


def downgrade() -> None:
    op.drop_table('rate_buckets')
    with op.batch_alter_table('apps') as batch:
        batch.drop_column('rate_plan')
    with op.batch_alter_table('events') as batch:
        batch.drop_column('actor_id')
        batch.drop_column('actor_type')
