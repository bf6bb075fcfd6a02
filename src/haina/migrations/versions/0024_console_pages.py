"""console: payments, carts, staff and audit pages — placeholder, filled on its branch

Revision ID: 0024
Revises: 0023
"""
from __future__ import annotations

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
