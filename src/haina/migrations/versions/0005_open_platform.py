"""open platform: staff accounts and sessions, apps and their certifications, merchants'
grants to apps, OAuth 2 codes and tokens

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import haina.core.db
from haina.migrations.partitioning import partition_by_tenant

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
TS = haina.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('staff_accounts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', TS, nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('disabled_at', TS, nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_staff_accounts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_accounts')),
    sa.UniqueConstraint('email', name=op.f('uq_staff_accounts_email'))
    )
    op.create_index(op.f('ix_staff_accounts_tenant_id'), 'staff_accounts', ['tenant_id'])

    op.create_table('staff_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.String(length=40), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('expires_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_accounts.id'],
                            name=op.f('fk_staff_sessions_staff_id_staff_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sessions'))
    )
    op.create_index(op.f('ix_staff_sessions_staff_id'), 'staff_sessions', ['staff_id'])

    op.create_table('apps',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=2000), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('redirect_uris', JSON, nullable=False),
    sa.Column('scopes', sa.String(length=2000), nullable=False),
    sa.Column('webhook_url', sa.String(length=2000), nullable=True),
    sa.Column('pricing', sa.String(length=500), nullable=False),
    sa.Column('listed', sa.Boolean(), nullable=False),
    sa.Column('owner_tenant_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['owner_tenant_id'], ['tenants.id'],
                            name=op.f('fk_apps_owner_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_apps'))
    )

    op.create_table('app_certifications',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('evidence', sa.String(length=2000), nullable=False),
    sa.Column('granted_by', sa.String(length=200), nullable=False),
    sa.Column('granted_at', TS, nullable=False),
    sa.Column('revoked_at', TS, nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'],
                            name=op.f('fk_app_certifications_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_certifications'))
    )
    op.create_index(op.f('ix_app_certifications_app_id'), 'app_certifications', ['app_id'])

    op.create_table('app_grants',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('scopes', sa.String(length=2000), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('installed_by', sa.String(length=40), nullable=True),
    sa.Column('installed_at', TS, nullable=False),
    sa.Column('uninstalled_at', TS, nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_app_grants')),
    sa.UniqueConstraint('tenant_id', 'app_id', name='uq_app_grants_tenant_app')
    )
    op.create_index('ix_app_grants_app_id', 'app_grants', ['app_id'])

    op.create_table('oauth_codes',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('grant_id', sa.String(length=40), nullable=False),
    sa.Column('staff_id', sa.String(length=40), nullable=False),
    sa.Column('redirect_uri', sa.String(length=2000), nullable=False),
    sa.Column('scope', sa.String(length=2000), nullable=False),
    sa.Column('code_challenge', sa.String(length=128), nullable=False),
    sa.Column('code_challenge_method', sa.String(length=8), nullable=False),
    sa.Column('expires_at', TS, nullable=False),
    sa.Column('used_at', TS, nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_oauth_codes_app_id_apps')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_oauth_codes_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_oauth_codes_code_hash'))
    )

    op.create_table('oauth_tokens',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('family_id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=True),
    sa.Column('grant_id', sa.String(length=40), nullable=True),
    sa.Column('scope', sa.String(length=2000), nullable=False),
    sa.Column('expires_at', TS, nullable=False),
    sa.Column('rotated_at', TS, nullable=True),
    sa.Column('revoked_at', TS, nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_oauth_tokens_app_id_apps')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_oauth_tokens_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_oauth_tokens_token_hash'))
    )
    op.create_index(op.f('ix_oauth_tokens_family_id'), 'oauth_tokens', ['family_id'])
    op.create_index(op.f('ix_oauth_tokens_grant_id'), 'oauth_tokens', ['grant_id'])

    partition_by_tenant(['app_grants'])


def downgrade() -> None:
    for table in ('oauth_tokens', 'oauth_codes', 'app_grants', 'app_certifications', 'apps',
                  'staff_sessions', 'staff_accounts'):
        op.drop_table(table)
