"""campaigns: enrolment jobs (a launch in batches, re-evaluations), the due time the worker
scans by, the re-evaluation schedule

Revision ID: 0025
Revises: 0024
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haina.core.db
from haina.migrations.partitioning import partition_by_tenant

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)
DUE = sa.text("due_at IS NOT NULL")
ACTIVE_JOB = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    with op.batch_alter_table('campaigns') as batch:
        batch.add_column(sa.Column('reevaluate_hours', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('reevaluated_at', TS, nullable=True))
        batch.add_column(sa.Column('due_at', TS, nullable=True))
    # what the worker looked for before: a scheduled campaign's start, the others' end
    op.execute("UPDATE campaigns SET due_at = CASE WHEN status = 'scheduled' THEN starts_at "
               "ELSE ends_at END WHERE status <> 'ended'")
    op.create_index('ix_campaigns_due', 'campaigns', ['due_at'],
                    postgresql_where=DUE, sqlite_where=DUE)
    op.create_table('campaign_jobs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('batch_size', sa.Integer(), nullable=False),
    sa.Column('audience', sa.Integer(), nullable=False),
    sa.Column('enrolled_before', sa.Integer(), nullable=False),
    sa.Column('walked', sa.Integer(), nullable=False),
    sa.Column('treated', sa.Integer(), nullable=False),
    sa.Column('holdout', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.Column('started_at', TS, nullable=True),
    sa.Column('finished_at', TS, nullable=True),
    sa.ForeignKeyConstraint(['tenant_id', 'campaign_id'], ['campaigns.tenant_id', 'campaigns.id'],
                            name=op.f('fk_campaign_jobs_tenant_id_campaigns')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_campaign_jobs'))
    )
    op.create_index('ix_campaign_jobs_campaign', 'campaign_jobs',
                    ['tenant_id', 'campaign_id', 'id'])
    op.create_index('uq_campaign_jobs_active', 'campaign_jobs', ['tenant_id', 'campaign_id'],
                    unique=True, postgresql_where=ACTIVE_JOB, sqlite_where=ACTIVE_JOB)
    op.create_index('ix_campaign_jobs_active', 'campaign_jobs', ['updated_at'],
                    postgresql_where=ACTIVE_JOB, sqlite_where=ACTIVE_JOB)
    partition_by_tenant(['campaign_jobs'])


def downgrade() -> None:
    op.drop_table('campaign_jobs')
    op.drop_index('ix_campaigns_due', table_name='campaigns')
    with op.batch_alter_table('campaigns') as batch:
        batch.drop_column('due_at')
        batch.drop_column('reevaluated_at')
        batch.drop_column('reevaluate_hours')
