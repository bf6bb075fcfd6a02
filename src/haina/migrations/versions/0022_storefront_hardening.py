"""storefront: refresh-token families (spent tokens), code redaction, retention indexes

Revision ID: 0022
Revises: 0021
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import haina.core.db
from haina.migrations.partitioning import partition_by_tenant

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)
UNREDACTED = "redacted_at IS NULL"


def upgrade() -> None:
    # codes already there: redacted by the worker's next pass once expired (NULL: not yet)
    with op.batch_alter_table('storefront_sign_in_codes') as batch:
        batch.add_column(sa.Column('redacted_at', TS, nullable=True))
    op.create_index('ix_storefront_sign_in_codes_unredacted', 'storefront_sign_in_codes',
                    ['expires_at'], postgresql_where=sa.text(UNREDACTED),
                    sqlite_where=sa.text(UNREDACTED))
    op.create_index('ix_storefront_sign_in_codes_created', 'storefront_sign_in_codes',
                    ['created_at'])
    op.create_index('ix_storefront_sessions_refresh_expiry', 'storefront_sessions',
                    ['refresh_expires_at'])
    op.create_table('storefront_spent_refresh_tokens',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('session_id', sa.String(length=40), nullable=False),
    sa.Column('spent_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_storefront_spent_refresh_tokens'))
    )
    op.create_index('ix_storefront_spent_refresh_tokens_session',
                    'storefront_spent_refresh_tokens', ['tenant_id', 'session_id'])
    op.create_index('ix_storefront_spent_refresh_tokens_spent_at',
                    'storefront_spent_refresh_tokens', ['spent_at'])
    partition_by_tenant(['storefront_spent_refresh_tokens'])


def downgrade() -> None:
    op.drop_table('storefront_spent_refresh_tokens')
    op.drop_index('ix_storefront_sessions_refresh_expiry', table_name='storefront_sessions')
    op.drop_index('ix_storefront_sign_in_codes_created', table_name='storefront_sign_in_codes')
    op.drop_index('ix_storefront_sign_in_codes_unredacted',
                  table_name='storefront_sign_in_codes')
    with op.batch_alter_table('storefront_sign_in_codes') as batch:
        batch.drop_column('redacted_at')
