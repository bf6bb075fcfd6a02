"""initial schema

Revision ID: 0001
Revises: 
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import haina.core.db

# copied from catalog.models as of this revision: a migration never imports live code
PG_TRGM = "CREATE EXTENSION IF NOT EXISTS pg_trgm"
SQLITE_SEARCH_DDL = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS product_search USING fts5("
    "product_id UNINDEXED, tenant_id UNINDEXED, body, tokenize='trigram')",
    "CREATE TRIGGER IF NOT EXISTS products_search_ai AFTER INSERT ON products BEGIN "
    "INSERT INTO product_search(product_id, tenant_id, body) "
    "VALUES (new.id, new.tenant_id, new.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS products_search_au AFTER UPDATE OF search_text ON products BEGIN "
    "UPDATE product_search SET body = new.search_text WHERE product_id = new.id; END",
    "CREATE TRIGGER IF NOT EXISTS products_search_ad AFTER DELETE ON products BEGIN "
    "DELETE FROM product_search WHERE product_id = old.id; END",
]
SQLITE_SEARCH_DROP = [
    "DROP TRIGGER IF EXISTS products_search_ad", "DROP TRIGGER IF EXISTS products_search_au",
    "DROP TRIGGER IF EXISTS products_search_ai", "DROP TABLE IF EXISTS product_search",
]

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

# indexes on expressions, which autogenerate cannot compare
EXTRA_UPGRADE = ['CREATE INDEX ix_members_tenant_lower_name ON members (tenant_id, lower(name))']


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(PG_TRGM)  # trigram search on products.search_text
    op.create_table('attribute_defs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=True),
    sa.Column('options', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attribute_defs')),
    sa.UniqueConstraint('tenant_id', 'code', name=op.f('uq_attribute_defs_tenant_id_code'))
    )
    with op.batch_alter_table('attribute_defs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attribute_defs_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('carts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=True),
    sa.Column('lines', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_carts'))
    )
    with op.batch_alter_table('carts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_carts_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('categories',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('slug', sa.String(length=100), nullable=False),
    sa.Column('parent_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['categories.id'], name=op.f('fk_categories_parent_id_categories')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_categories')),
    sa.UniqueConstraint('tenant_id', 'slug', name=op.f('uq_categories_tenant_id_slug'))
    )
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_categories_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('subject_id', sa.String(length=40), nullable=True),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_events_tenant_subject', ['tenant_id', 'subject_id'], unique=False)
        batch_op.create_index('ix_events_tenant_type', ['tenant_id', 'type', 'id'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('body', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'key', name=op.f('pk_idempotency_keys'))
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_created_at'), ['created_at'], unique=False)

    op.create_table('journal_entries',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('ref_id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('memo', sa.String(length=300), nullable=True),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_entries'))
    )
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.create_index('ix_journal_entries_tenant_ref', ['tenant_id', 'ref_id'], unique=False)

    op.create_table('locations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=True),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_locations')),
    sa.UniqueConstraint('tenant_id', 'code', name=op.f('uq_locations_tenant_id_code'))
    )
    with op.batch_alter_table('locations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_locations_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('member_tiers',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('min_spend_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('window_days', sa.Integer(), nullable=False),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_tiers')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_member_tiers_tenant_id_name')),
    sa.UniqueConstraint('tenant_id', 'rank', name=op.f('uq_member_tiers_tenant_id_rank'))
    )
    op.create_table('orders',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=True),
    sa.Column('location_id', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('refund_status', sa.String(length=10), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('subtotal_minor', sa.BigInteger(), nullable=False),
    sa.Column('discount_minor', sa.BigInteger(), nullable=False),
    sa.Column('shipping_minor', sa.BigInteger(), nullable=False),
    sa.Column('tax_minor', sa.BigInteger(), nullable=False),
    sa.Column('total_minor', sa.BigInteger(), nullable=False),
    sa.Column('paid_minor', sa.BigInteger(), nullable=False),
    sa.Column('refunded_minor', sa.BigInteger(), nullable=False),
    sa.Column('points_redeemed', sa.Integer(), nullable=False),
    sa.Column('coupon_code', sa.String(length=64), nullable=True),
    sa.Column('address', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('note', sa.String(length=1000), nullable=True),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('hold_expires_at', haina.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('paid_at', haina.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('fulfilled_at', haina.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_at', haina.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', haina.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancel_reason', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_status_hold', ['status', 'hold_expires_at'], unique=False)
        batch_op.create_index('ix_orders_tenant_member', ['tenant_id', 'member_id'], unique=False)
        batch_op.create_index('ix_orders_tenant_status', ['tenant_id', 'status'], unique=False)

    op.create_table('payment_intents',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('capture_method', sa.String(length=10), nullable=False),
    sa.Column('captured_minor', sa.BigInteger(), nullable=False),
    sa.Column('refunded_minor', sa.BigInteger(), nullable=False),
    sa.Column('fee_minor', sa.BigInteger(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('provider_ref', sa.String(length=100), nullable=True),
    sa.Column('payment_method', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('failure_code', sa.String(length=64), nullable=True),
    sa.Column('failure_message', sa.String(length=300), nullable=True),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_intents'))
    )
    with op.batch_alter_table('payment_intents', schema=None) as batch_op:
        batch_op.create_index('ix_payment_intents_tenant_order', ['tenant_id', 'order_id'], unique=False)

    op.create_table('payouts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payouts'))
    )
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payouts_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('reservations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('variant_id', sa.String(length=40), nullable=False),
    sa.Column('location_id', sa.String(length=40), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('expires_at', haina.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reservations'))
    )
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.create_index('ix_reservations_status_expiry', ['status', 'expires_at'], unique=False)
        batch_op.create_index('ix_reservations_tenant_order', ['tenant_id', 'order_id'], unique=False)

    op.create_table('stock_adjustments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('variant_id', sa.String(length=40), nullable=False),
    sa.Column('location_id', sa.String(length=40), nullable=False),
    sa.Column('delta', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('order_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_adjustments'))
    )
    with op.batch_alter_table('stock_adjustments', schema=None) as batch_op:
        batch_op.create_index('ix_stock_adjustments_tenant_variant', ['tenant_id', 'variant_id'], unique=False)

    op.create_table('stock_levels',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('variant_id', sa.String(length=40), nullable=False),
    sa.Column('location_id', sa.String(length=40), nullable=False),
    sa.Column('on_hand', sa.Integer(), nullable=False),
    sa.Column('reserved', sa.Integer(), nullable=False),
    sa.CheckConstraint('on_hand >= 0', name=op.f('ck_stock_levels_on_hand_not_negative')),
    sa.CheckConstraint('reserved <= on_hand', name=op.f('ck_stock_levels_reserved_within_on_hand')),
    sa.CheckConstraint('reserved >= 0', name=op.f('ck_stock_levels_reserved_not_negative')),
    sa.PrimaryKeyConstraint('tenant_id', 'variant_id', 'location_id', name=op.f('pk_stock_levels'))
    )
    op.create_table('tenants',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('settings', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants')),
    sa.UniqueConstraint('slug', name=op.f('uq_tenants_slug'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('scopes', sa.String(length=2000), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=True),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', haina.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('use_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_api_tokens_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('journal_lines',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=False),
    sa.Column('account', sa.String(length=40), nullable=False),
    sa.Column('debit_minor', sa.BigInteger(), nullable=False),
    sa.Column('credit_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.CheckConstraint('(debit_minor = 0) OR (credit_minor = 0)', name=op.f('ck_journal_lines_one_side')),
    sa.CheckConstraint('debit_minor >= 0 AND credit_minor >= 0', name=op.f('ck_journal_lines_non_negative')),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], name=op.f('fk_journal_lines_entry_id_journal_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_lines'))
    )
    with op.batch_alter_table('journal_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_journal_lines_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index('ix_journal_lines_tenant_account', ['tenant_id', 'account', 'currency'], unique=False)

    op.create_table('members',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('birthday', sa.Date(), nullable=True),
    sa.Column('tier_id', sa.String(length=40), nullable=True),
    sa.Column('points_balance', sa.BigInteger(), nullable=False),
    sa.Column('email_marketing', sa.Boolean(), nullable=False),
    sa.Column('email_marketing_at', haina.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sms_marketing', sa.Boolean(), nullable=False),
    sa.Column('sms_marketing_at', haina.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('data_analysis', sa.Boolean(), nullable=False),
    sa.Column('data_analysis_at', haina.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('merged_into', sa.String(length=40), nullable=True),
    sa.Column('merged_at', haina.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tier_id'], ['member_tiers.id'], name=op.f('fk_members_tier_id_member_tiers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members'))
    )
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.create_index('ix_members_tenant_email', ['tenant_id', 'email'], unique=False)
        batch_op.create_index('ix_members_tenant_merged_into', ['tenant_id', 'merged_into'], unique=False)
        batch_op.create_index('ix_members_tenant_phone', ['tenant_id', 'phone'], unique=False)
        batch_op.create_index('ix_members_tenant_tier', ['tenant_id', 'tier_id'], unique=False)

    op.create_table('order_lines',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('variant_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('sku', sa.String(length=100), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('unit_price_minor', sa.BigInteger(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('total_minor', sa.BigInteger(), nullable=False),
    sa.Column('shipped_quantity', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_lines_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_lines'))
    )
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.create_index('ix_order_lines_tenant_order', ['tenant_id', 'order_id'], unique=False)

    op.create_table('products',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('category_id', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], name=op.f('fk_products_category_id_categories')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_products'))
    )
    with op.batch_alter_table('products', schema=None) as batch_op:
        if dialect == "postgresql":
            batch_op.create_index('ix_products_search_trgm', ['search_text'], unique=False, postgresql_using='gin', postgresql_ops={'search_text': 'gin_trgm_ops'})
        batch_op.create_index('ix_products_tenant_category', ['tenant_id', 'category_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_products_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('refunds',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('payment_intent_id', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('provider_ref', sa.String(length=100), nullable=True),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['payment_intent_id'], ['payment_intents.id'], name=op.f('fk_refunds_payment_intent_id_payment_intents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds'))
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index('ix_refunds_tenant_order', ['tenant_id', 'order_id'], unique=False)

    op.create_table('shipments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('carrier', sa.String(length=64), nullable=False),
    sa.Column('tracking_number', sa.String(length=100), nullable=True),
    sa.Column('lines', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_shipments_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipments'))
    )
    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.create_index('ix_shipments_tenant_order', ['tenant_id', 'order_id'], unique=False)

    op.create_table('media',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('alt', sa.String(length=300), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('uploaded_by', sa.String(length=40), nullable=True),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_media_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media'))
    )
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.create_index('ix_media_tenant_product', ['tenant_id', 'product_id'], unique=False)

    op.create_table('member_identities',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=True),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_identities_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_identities')),
    sa.UniqueConstraint('tenant_id', 'kind', 'value', name=op.f('uq_member_identities_tenant_id_kind_value'))
    )
    with op.batch_alter_table('member_identities', schema=None) as batch_op:
        batch_op.create_index('ix_member_identities_tenant_member', ['tenant_id', 'member_id'], unique=False)

    op.create_table('member_spend',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('origin_member_id', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('points_earned', sa.BigInteger(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=60), nullable=True),
    sa.Column('spend_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_spend_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_spend')),
    sa.UniqueConstraint('tenant_id', 'dedupe_key', name=op.f('uq_member_spend_tenant_id_dedupe_key'))
    )
    with op.batch_alter_table('member_spend', schema=None) as batch_op:
        batch_op.create_index('ix_member_spend_tenant_member_at', ['tenant_id', 'member_id', 'spend_at'], unique=False)
        batch_op.create_index('ix_member_spend_tenant_order', ['tenant_id', 'order_id'], unique=False)

    op.create_table('points_entries',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('origin_member_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('remaining', sa.BigInteger(), nullable=True),
    sa.Column('expires_at', haina.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('order_id', sa.String(length=40), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('reverses_id', sa.String(length=40), nullable=True),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_points_entries_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_points_entries'))
    )
    with op.batch_alter_table('points_entries', schema=None) as batch_op:
        batch_op.create_index('ix_points_entries_expiring', ['expires_at'], unique=False, postgresql_where=sa.text('remaining > 0'), sqlite_where=sa.text('remaining > 0'))
        batch_op.create_index('ix_points_entries_tenant_member', ['tenant_id', 'member_id', 'id'], unique=False)
        batch_op.create_index('ix_points_entries_tenant_order', ['tenant_id', 'order_id'], unique=False)
        batch_op.create_index('ix_points_entries_tenant_origin', ['tenant_id', 'origin_member_id'], unique=False)

    op.create_table('variants',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('sku', sa.String(length=100), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('price_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', haina.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_variants_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_variants')),
    sa.UniqueConstraint('tenant_id', 'sku', name=op.f('uq_variants_tenant_id_sku'))
    )
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_variants_product_id'), ['product_id'], unique=False)
    if dialect == "sqlite":
        for statement in SQLITE_SEARCH_DDL:  # FTS5 trigram search index and its triggers
            op.execute(statement)
    for statement in EXTRA_UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_SEARCH_DROP:
            op.execute(statement)
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_variants_product_id'))

    op.drop_table('variants')
    with op.batch_alter_table('points_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_points_entries_tenant_origin')
        batch_op.drop_index('ix_points_entries_tenant_order')
        batch_op.drop_index('ix_points_entries_tenant_member')
        batch_op.drop_index('ix_points_entries_expiring', postgresql_where=sa.text('remaining > 0'), sqlite_where=sa.text('remaining > 0'))

    op.drop_table('points_entries')
    with op.batch_alter_table('member_spend', schema=None) as batch_op:
        batch_op.drop_index('ix_member_spend_tenant_order')
        batch_op.drop_index('ix_member_spend_tenant_member_at')

    op.drop_table('member_spend')
    with op.batch_alter_table('member_identities', schema=None) as batch_op:
        batch_op.drop_index('ix_member_identities_tenant_member')

    op.drop_table('member_identities')
    with op.batch_alter_table('media', schema=None) as batch_op:
        batch_op.drop_index('ix_media_tenant_product')

    op.drop_table('media')
    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.drop_index('ix_shipments_tenant_order')

    op.drop_table('shipments')
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index('ix_refunds_tenant_order')

    op.drop_table('refunds')
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_products_tenant_id'))
        batch_op.drop_index('ix_products_tenant_category')
        if op.get_bind().dialect.name == "postgresql":
            batch_op.drop_index('ix_products_search_trgm', postgresql_using='gin', postgresql_ops={'search_text': 'gin_trgm_ops'})

    op.drop_table('products')
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_order_lines_tenant_order')

    op.drop_table('order_lines')
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index('ix_members_tenant_tier')
        batch_op.drop_index('ix_members_tenant_phone')
        batch_op.drop_index('ix_members_tenant_merged_into')
        batch_op.drop_index('ix_members_tenant_email')

    op.drop_table('members')
    with op.batch_alter_table('journal_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_journal_lines_tenant_account')
        batch_op.drop_index(batch_op.f('ix_journal_lines_entry_id'))

    op.drop_table('journal_lines')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_tenant_id'))

    op.drop_table('api_tokens')
    op.drop_table('tenants')
    op.drop_table('stock_levels')
    with op.batch_alter_table('stock_adjustments', schema=None) as batch_op:
        batch_op.drop_index('ix_stock_adjustments_tenant_variant')

    op.drop_table('stock_adjustments')
    with op.batch_alter_table('reservations', schema=None) as batch_op:
        batch_op.drop_index('ix_reservations_tenant_order')
        batch_op.drop_index('ix_reservations_status_expiry')

    op.drop_table('reservations')
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payouts_tenant_id'))

    op.drop_table('payouts')
    with op.batch_alter_table('payment_intents', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_intents_tenant_order')

    op.drop_table('payment_intents')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_tenant_status')
        batch_op.drop_index('ix_orders_tenant_member')
        batch_op.drop_index('ix_orders_status_hold')

    op.drop_table('orders')
    op.drop_table('member_tiers')
    with op.batch_alter_table('locations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_locations_tenant_id'))

    op.drop_table('locations')
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_journal_entries_tenant_ref')

    op.drop_table('journal_entries')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_created_at'))

    op.drop_table('idempotency_keys')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_tenant_type')
        batch_op.drop_index('ix_events_tenant_subject')
        batch_op.drop_index(batch_op.f('ix_events_tenant_id'))

    op.drop_table('events')
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_categories_tenant_id'))

    op.drop_table('categories')
    with op.batch_alter_table('carts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_carts_tenant_id'))

    op.drop_table('carts')
    with op.batch_alter_table('attribute_defs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attribute_defs_tenant_id'))

    op.drop_table('attribute_defs')
