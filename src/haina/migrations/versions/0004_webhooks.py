"""webhooks: endpoints, deliveries, attempts; the outbox's pending marker on events

``events.pending`` is true from the insert (a server default: writers do not name it) until the
webhook dispatcher has fanned the event out; a partial index holds just the pending ones.
Events already in the database are left NULL (not pending): endpoints did not exist before.

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

from haina.migrations.partitioning import partition_by_tenant

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# constants of this revision (a migration never imports live code)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
DUE = "status = 'pending'"
TABLES = ["webhook_endpoints", "webhook_deliveries", "webhook_attempts"]


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # no default while adding: existing rows stay NULL without a rewrite of the table
        op.add_column('events', sa.Column('pending', sa.Boolean(), nullable=True))
        op.alter_column('events', 'pending', server_default=sa.true())
    else:
        op.add_column('events', sa.Column('pending', sa.Boolean(), nullable=True,
                                          server_default=sa.true()))
        op.execute("UPDATE events SET pending = NULL")
    op.create_index('ix_events_pending', 'events', ['id'], unique=False,
                    postgresql_where=sa.text('pending'), sqlite_where=sa.text('pending = 1'))

    op.create_table('webhook_endpoints',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=True),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('event_types', JSON, nullable=False),
    sa.Column('secret', sa.String(length=100), nullable=False),
    sa.Column('disabled', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('disabled_reason', sa.String(length=200), nullable=True),
    sa.Column('failing_since', _ts(), nullable=True),
    sa.Column('created_at', _ts(), nullable=False),
    sa.Column('updated_at', _ts(), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_webhook_endpoints'))
    )
    op.create_index('ix_webhook_endpoints_tenant_app', 'webhook_endpoints',
                    ['tenant_id', 'app_id'], unique=False)

    op.create_table('webhook_deliveries',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('endpoint_id', sa.String(length=40), nullable=False),
    sa.Column('event_id', sa.String(length=40), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', _ts(), nullable=True),
    sa.Column('last_attempt_at', _ts(), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', _ts(), nullable=False),
    sa.Column('delivered_at', _ts(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'endpoint_id'],
                            ['webhook_endpoints.tenant_id', 'webhook_endpoints.id'],
                            name=op.f('fk_webhook_deliveries_tenant_id_webhook_endpoints')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('tenant_id', 'endpoint_id', 'event_id',
                        name=op.f('uq_webhook_deliveries_tenant_id_endpoint_id_event_id'))
    )
    op.create_index('ix_webhook_deliveries_tenant_status', 'webhook_deliveries',
                    ['tenant_id', 'status', 'id'], unique=False)
    op.create_index('ix_webhook_deliveries_tenant_event', 'webhook_deliveries',
                    ['tenant_id', 'event_id'], unique=False)
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['next_attempt_at'],
                    unique=False, postgresql_where=sa.text(DUE), sqlite_where=sa.text(DUE))

    op.create_table('webhook_attempts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('delivery_id', sa.String(length=40), nullable=False),
    sa.Column('endpoint_id', sa.String(length=40), nullable=False),
    sa.Column('event_id', sa.String(length=40), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('succeeded', sa.Boolean(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('latency_ms', sa.Integer(), nullable=False),
    sa.Column('response_excerpt', sa.String(length=1000), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_at', _ts(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'delivery_id'],
                            ['webhook_deliveries.tenant_id', 'webhook_deliveries.id'],
                            name=op.f('fk_webhook_attempts_tenant_id_webhook_deliveries')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_webhook_attempts'))
    )
    op.create_index('ix_webhook_attempts_tenant_endpoint', 'webhook_attempts',
                    ['tenant_id', 'endpoint_id', 'id'], unique=False)
    op.create_index('ix_webhook_attempts_tenant_delivery', 'webhook_attempts',
                    ['tenant_id', 'delivery_id', 'id'], unique=False)

    partition_by_tenant(TABLES)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
    op.drop_index('ix_events_pending', table_name='events')
    op.drop_column('events', 'pending')
