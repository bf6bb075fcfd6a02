"""console: the merchant's time zone — no schema change

The time zone is a merchant setting (``TenantSettings.time_zone``), kept with the others in
the tenants table's ``settings`` JSON column, which already exists: a row without the key
reads as unset (Asia/Shanghai for a CNY merchant, UTC otherwise). Nothing to add or backfill,
so this revision only keeps its place in the linear history.

Revision ID: 0020
Revises: 0019
"""
from __future__ import annotations

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
