"""cross-border: qualification files, tracking; privacy erasures

Revision ID: 0015
Revises: 0014
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haina.core.db
from haina.migrations.partitioning import partition_by_tenant

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    # members erased at the person's request: their writes are refused (docs/privacy.md)
    op.create_table('member_erasures',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('erased_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'id'], ['members.tenant_id', 'members.id'],
                            name=op.f('fk_member_erasures_tenant_id_members')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_member_erasures'))
    )
    partition_by_tenant(['member_erasures'])


def downgrade() -> None:
    op.drop_table('member_erasures')
