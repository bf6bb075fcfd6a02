"""crossborder: trade mode on products, brands' validity, one erasure per person

Revision ID: 0019
Revises: 0018
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import haina.core.db

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

TS = haina.core.db.UTCDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql')
# copied from haina.catalog (TRADE_MODES): a product sold under cross-border retail import,
# and one whose brand lost its qualification (not for sale until listed again)
CROSSBORDER, SUSPENDED = "crossborder", "suspended"
ERASE = "kind = 'erase'"


def _earliest(authorisation: dict, documents: list) -> dt.date | None:
    """The last day a brand's file holds: its authorisation's or a document's
    ``valid_until``, whichever comes first (haina.crossborder.qualification)."""
    days = [authorisation.get("valid_until")] + [d.get("valid_until") for d in documents or []]
    found = [dt.date.fromisoformat(d) for d in days if d]
    return min(found) if found else None


def upgrade() -> None:
    # the catalogue's own copy of a product's trade mode, read by the order's variants query
    op.add_column('products', sa.Column('trade_mode', sa.String(length=16), nullable=True))
    op.execute(
        f"UPDATE products SET trade_mode = '{CROSSBORDER}' WHERE EXISTS (SELECT 1 FROM "
        "crossborder_products c WHERE c.tenant_id = products.tenant_id "
        "AND c.id = products.id AND c.enabled)")
    op.execute(
        f"UPDATE products SET trade_mode = '{SUSPENDED}' WHERE EXISTS (SELECT 1 FROM "
        "crossborder_products c JOIN crossborder_brands b ON b.tenant_id = c.tenant_id "
        "AND b.id = c.brand_id WHERE c.tenant_id = products.tenant_id AND c.id = products.id "
        "AND NOT c.enabled AND b.status = 'revoked')")
    # a brand's file holds until its authorisation or a document runs out
    op.add_column('crossborder_brands', sa.Column('valid_until', sa.Date(), nullable=True))
    op.add_column('crossborder_brands', sa.Column('expiry_reminded_at', TS, nullable=True))
    brands = sa.table('crossborder_brands', sa.column('tenant_id', sa.String),
                      sa.column('id', sa.String), sa.column('authorisation', JSON),
                      sa.column('documents', JSON), sa.column('valid_until', sa.Date))
    conn = op.get_bind()
    for tenant_id, brand_id, authorisation, documents in conn.execute(
            sa.select(brands.c.tenant_id, brands.c.id, brands.c.authorisation,
                      brands.c.documents)).all():
        conn.execute(brands.update().where(brands.c.tenant_id == tenant_id,
                                           brands.c.id == brand_id)
                     .values(valid_until=_earliest(authorisation, documents)))
    op.create_index('ix_crossborder_brands_expiry', 'crossborder_brands',
                    ['status', 'valid_until'])
    # one erasure per person: two requests at the same moment cannot both run (before this
    # index such a pair was possible, if rare; it would have to be resolved by hand first)
    op.create_index('ux_data_requests_one_erasure', 'data_requests', ['tenant_id', 'member_id'],
                    unique=True, postgresql_where=sa.text(ERASE), sqlite_where=sa.text(ERASE))


def downgrade() -> None:
    op.drop_index('ux_data_requests_one_erasure', table_name='data_requests')
    op.drop_index('ix_crossborder_brands_expiry', table_name='crossborder_brands')
    # plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): a rebuilt products table would lose
    # its search triggers
    op.drop_column('crossborder_brands', 'expiry_reminded_at')
    op.drop_column('crossborder_brands', 'valid_until')
    op.drop_column('products', 'trade_mode')
