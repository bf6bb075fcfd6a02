"""analytics: refresh jobs, runs, member scores, saved segments, imported transactions

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import haina.core.db

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
ACTIVE = "status IN ('queued', 'running')"


def upgrade() -> None:
    op.create_table('analytics_jobs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=True),
    sa.Column('params', JSON, nullable=False),
    sa.Column('run_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', haina.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', haina.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_jobs'))
    )
    op.create_index('ix_analytics_jobs_status', 'analytics_jobs', ['status'], unique=False)
    op.create_index('ix_analytics_jobs_tenant_id', 'analytics_jobs', ['tenant_id', 'id'],
                    unique=False)
    op.create_index('uq_analytics_jobs_active', 'analytics_jobs', ['tenant_id'], unique=True,
                    postgresql_where=sa.text(ACTIVE), sqlite_where=sa.text(ACTIVE))

    op.create_table('analytics_member_scores',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('frequency', sa.Integer(), nullable=False),
    sa.Column('recency', sa.Float(), nullable=False),
    sa.Column('age', sa.Float(), nullable=False),
    sa.Column('monetary_minor', sa.BigInteger(), nullable=False),
    sa.Column('p_alive', sa.Float(), nullable=False),
    sa.Column('expected_purchases_90d', sa.Float(), nullable=False),
    sa.Column('clv_minor', sa.BigInteger(), nullable=False),
    sa.Column('r_score', sa.SmallInteger(), nullable=False),
    sa.Column('f_score', sa.SmallInteger(), nullable=False),
    sa.Column('m_score', sa.SmallInteger(), nullable=False),
    sa.Column('segment', sa.String(length=16), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('computed_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'member_id', name=op.f('pk_analytics_member_scores'))
    )
    for name, column in (('clv', 'clv_minor'), ('p_alive', 'p_alive'), ('segment', 'segment'),
                         ('stage', 'stage')):
        op.create_index(f'ix_analytics_member_scores_tenant_{name}', 'analytics_member_scores',
                        ['tenant_id', column], unique=False)

    op.create_table('analytics_runs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('job_id', sa.String(length=40), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('engine', sa.String(length=16), nullable=False),
    sa.Column('model', sa.String(length=16), nullable=False),
    sa.Column('freq', sa.String(length=1), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('observation_end', sa.Date(), nullable=False),
    sa.Column('customers', sa.Integer(), nullable=False),
    sa.Column('transactions', sa.Integer(), nullable=False),
    sa.Column('params', JSON, nullable=False),
    sa.Column('standard_errors', JSON, nullable=False),
    sa.Column('log_likelihood', sa.Float(), nullable=False),
    sa.Column('spend', JSON, nullable=False),
    sa.Column('holdout', JSON, nullable=True),
    sa.Column('cohorts', JSON, nullable=False),
    sa.Column('plot_data', JSON, nullable=False),
    sa.Column('settings', JSON, nullable=False),
    sa.Column('notes', JSON, nullable=False),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_runs'))
    )
    op.create_index('ix_analytics_runs_tenant_id', 'analytics_runs', ['tenant_id', 'id'],
                    unique=False)

    op.create_table('analytics_segments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('rule', JSON, nullable=False),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_segments')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_analytics_segments_tenant_id_name'))
    )

    op.create_table('analytics_transactions',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('batch', sa.String(length=100), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.String(length=200), nullable=False),
    sa.Column('ordered_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('imported_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'batch', 'line', name=op.f('pk_analytics_transactions'))
    )


def downgrade() -> None:
    op.drop_table('analytics_transactions')
    op.drop_table('analytics_segments')
    op.drop_index('ix_analytics_runs_tenant_id', table_name='analytics_runs')
    op.drop_table('analytics_runs')
    for name in ('stage', 'segment', 'p_alive', 'clv'):
        op.drop_index(f'ix_analytics_member_scores_tenant_{name}',
                      table_name='analytics_member_scores')
    op.drop_table('analytics_member_scores')
    op.drop_index('uq_analytics_jobs_active', table_name='analytics_jobs',
                  postgresql_where=sa.text(ACTIVE), sqlite_where=sa.text(ACTIVE))
    op.drop_index('ix_analytics_jobs_tenant_id', table_name='analytics_jobs')
    op.drop_index('ix_analytics_jobs_status', table_name='analytics_jobs')
    op.drop_table('analytics_jobs')
