"""personal information: data requests, consent log, retention

Revision ID: 0009
Revises: 0008
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import haina.core.db
from haina.migrations.partitioning import partition_by_tenant

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
PENDING = "status = 'pending'"


def upgrade() -> None:
    op.create_table('member_consent_log',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=True),
    sa.Column('text_version', sa.String(length=64), nullable=True),
    sa.Column('text', sa.String(length=4000), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'member_id'], ['members.tenant_id', 'members.id'],
                            name=op.f('fk_member_consent_log_tenant_id_members')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_member_consent_log'))
    )
    op.create_index('ix_member_consent_log_tenant_member', 'member_consent_log',
                    ['tenant_id', 'member_id', 'id'])
    op.create_table('data_requests',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=True),
    sa.Column('member_ids', JSON, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=True),
    sa.Column('result', JSON, nullable=False),
    sa.Column('due_at', TS, nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('completed_at', TS, nullable=True),
    sa.Column('downloads', sa.Integer(), nullable=False),
    sa.Column('last_downloaded_at', TS, nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_data_requests'))
    )
    op.create_index('ix_data_requests_tenant_member', 'data_requests',
                    ['tenant_id', 'member_id', 'id'])
    op.create_table('data_request_archives',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('expires_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'id'], ['data_requests.tenant_id', 'data_requests.id'],
                            name=op.f('fk_data_request_archives_tenant_id_data_requests')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_data_request_archives'))
    )
    op.create_index('ix_data_request_archives_tenant_expires', 'data_request_archives',
                    ['tenant_id', 'expires_at'])
    op.create_table('data_request_acks',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('request_id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('due_at', TS, nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('acknowledged_at', TS, nullable=True),
    sa.Column('reminders', sa.Integer(), nullable=False),
    sa.Column('last_reminded_at', TS, nullable=True),
    sa.Column('overdue_at', TS, nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'request_id'],
                            ['data_requests.tenant_id', 'data_requests.id'],
                            name=op.f('fk_data_request_acks_tenant_id_data_requests')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_data_request_acks')),
    sa.UniqueConstraint('tenant_id', 'request_id', 'app_id',
                        name=op.f('uq_data_request_acks_tenant_id_request_id_app_id'))
    )
    op.create_index('ix_data_request_acks_app', 'data_request_acks', ['app_id', 'status'])
    op.create_index('ix_data_request_acks_pending', 'data_request_acks', ['due_at'],
                    postgresql_where=sa.text(PENDING), sqlite_where=sa.text(PENDING))
    partition_by_tenant(['member_consent_log', 'data_requests', 'data_request_archives',
                         'data_request_acks'])


def downgrade() -> None:
    op.drop_table('data_request_acks')
    op.drop_table('data_request_archives')
    op.drop_table('data_requests')
    op.drop_table('member_consent_log')
