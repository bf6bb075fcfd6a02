"""storefront: session families, code retention (placeholder)

Revision ID: 0022
Revises: 0021
"""
from __future__ import annotations

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
