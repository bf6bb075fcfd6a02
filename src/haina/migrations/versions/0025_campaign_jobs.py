"""campaigns: re-evaluation and batched launch — placeholder, filled on its branch

Revision ID: 0025
Revises: 0024
"""
from __future__ import annotations

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
