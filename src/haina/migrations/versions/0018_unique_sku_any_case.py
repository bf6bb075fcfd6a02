"""catalog: a merchant's SKUs are unique without regard to case, in the database too

Revision ID: 0018
Revises: 0017
"""
from __future__ import annotations

from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the service has refused a second case of a SKU since the start, so existing rows comply
    # unless two creations raced; on PostgreSQL the index is built on every partition
    op.execute("CREATE UNIQUE INDEX ux_variants_tenant_lower_sku ON variants "
               "(tenant_id, lower(sku))")


def downgrade() -> None:
    op.execute("DROP INDEX ux_variants_tenant_lower_sku")
