"""storefront: publishable keys, buyer sessions, sign-in codes (placeholder)

Revision ID: 0013
Revises: 0012
"""
from __future__ import annotations

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
