"""tenant keys: every tenant table keyed (tenant_id, id), foreign keys within a merchant

Every tenant table's primary key becomes (tenant_id, id) and every foreign key between tenant
tables (tenant_id, column) → (tenant_id, id), so that the tables can be distributed by
tenant_id (Citus) or hash-partitioned by it (HAINA_PARTITION_BY_TENANT=1, see
docs/scaling.md). Indexes on tenant_id alone, now the primary key's prefix, are dropped.

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

from alembic import op

from haina.migrations.partitioning import partition_by_tenant

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# tables keyed by `id` alone until now, parents before children (constants of this revision:
# a migration never imports live code)
REKEYED = [
    "analytics_jobs", "analytics_runs", "analytics_segments", "attribute_defs", "carts",
    "categories", "events", "journal_entries", "locations", "member_tiers", "orders",
    "payment_intents", "payouts", "reservations", "stock_adjustments", "journal_lines",
    "members", "order_lines", "products", "refunds", "shipments", "media",
    "member_identities", "member_spend", "points_entries", "variants",
]
# (table, column, referred table): foreign keys that gain tenant_id
FOREIGN_KEYS = [
    ("categories", "parent_id", "categories"),
    ("journal_lines", "entry_id", "journal_entries"),
    ("members", "tier_id", "member_tiers"),
    ("order_lines", "order_id", "orders"),
    ("products", "category_id", "categories"),
    ("refunds", "payment_intent_id", "payment_intents"),
    ("shipments", "order_id", "orders"),
    ("media", "product_id", "products"),
    ("member_identities", "member_id", "members"),
    ("member_spend", "member_id", "members"),
    ("points_entries", "member_id", "members"),
    ("variants", "product_id", "products"),
]
# indexes the new keys make redundant, and their replacements
DROPPED_INDEXES = {
    "analytics_jobs": ["ix_analytics_jobs_tenant_id"],
    "analytics_runs": ["ix_analytics_runs_tenant_id"],
    "attribute_defs": ["ix_attribute_defs_tenant_id"],
    "carts": ["ix_carts_tenant_id"],
    "categories": ["ix_categories_tenant_id"],
    "events": ["ix_events_tenant_id"],
    "locations": ["ix_locations_tenant_id"],
    "payouts": ["ix_payouts_tenant_id"],
    "products": ["ix_products_tenant_id"],
    "journal_lines": ["ix_journal_lines_entry_id"],
    "variants": ["ix_variants_product_id"],
}
ADDED_INDEXES = {
    "journal_lines": [("ix_journal_lines_tenant_entry", ["tenant_id", "entry_id"])],
    "variants": [("ix_variants_tenant_product", ["tenant_id", "product_id"])],
}
SQLITE_REBUILT = [
    "CREATE INDEX IF NOT EXISTS ix_members_tenant_lower_name ON members (tenant_id, lower(name))",
    "CREATE TRIGGER IF NOT EXISTS products_search_ai AFTER INSERT ON products BEGIN "
    "INSERT INTO product_search(product_id, tenant_id, body) "
    "VALUES (new.id, new.tenant_id, new.search_text); END",
    "CREATE TRIGGER IF NOT EXISTS products_search_au AFTER UPDATE OF search_text ON products BEGIN "
    "UPDATE product_search SET body = new.search_text WHERE product_id = new.id; END",
    "CREATE TRIGGER IF NOT EXISTS products_search_ad AFTER DELETE ON products BEGIN "
    "DELETE FROM product_search WHERE product_id = old.id; END",
]


def _old_fk(table: str, column: str, referred: str) -> str:
    return f"fk_{table}_{column}_{referred}"


def _new_fk(table: str, referred: str) -> str:
    return f"fk_{table}_tenant_id_{referred}"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _upgrade_sqlite()
    else:
        _upgrade_postgresql()
        partition_by_tenant(TENANT_TABLES)


def _upgrade_postgresql() -> None:
    for table, column, referred in FOREIGN_KEYS:
        op.drop_constraint(_old_fk(table, column, referred), table, type_="foreignkey")
    for table in REKEYED:
        for name in DROPPED_INDEXES.get(table, []):
            op.drop_index(name, table_name=table)
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, ["tenant_id", "id"])
        for name, columns in ADDED_INDEXES.get(table, []):
            op.create_index(name, table, columns)
    for table, column, referred in FOREIGN_KEYS:
        op.create_foreign_key(_new_fk(table, referred), table, referred,
                              ["tenant_id", column], ["tenant_id", "id"])


def _upgrade_sqlite() -> None:
    # SQLite rebuilds each table (Alembic's batch mode) while its children point at it: the
    # upgrade runs with foreign keys off and checks them all before it commits
    # (haina.core.schema.upgrade)
    fks: dict[str, list[tuple[str, str]]] = {}
    for table, column, referred in FOREIGN_KEYS:
        fks.setdefault(table, []).append((column, referred))
    for table in REKEYED:
        for name in DROPPED_INDEXES.get(table, []):
            op.drop_index(name, table_name=table)
        with op.batch_alter_table(table, recreate="always") as batch:
            for column, referred in fks.get(table, []):
                batch.drop_constraint(_old_fk(table, column, referred), type_="foreignkey")
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["tenant_id", "id"])
            for column, referred in fks.get(table, []):
                batch.create_foreign_key(_new_fk(table, referred), referred,
                                         ["tenant_id", column], ["tenant_id", "id"])
        for name, columns in ADDED_INDEXES.get(table, []):
            op.create_index(name, table, columns)
    for statement in SQLITE_REBUILT:  # lost with the old tables: batch mode cannot copy them
        op.execute(statement)


# every tenant table of this revision (those keyed (tenant_id, …) from the start included)
TENANT_TABLES = [
    "analytics_jobs", "analytics_member_scores", "analytics_runs", "analytics_segments",
    "analytics_transactions", "attribute_defs", "carts", "categories", "events",
    "idempotency_keys", "journal_entries", "locations", "member_tiers", "orders",
    "payment_intents", "payouts", "reservations", "stock_adjustments", "stock_levels",
    "journal_lines", "members", "order_lines", "products", "refunds", "shipments", "media",
    "member_identities", "member_spend", "points_entries", "variants",
]


def downgrade() -> None:
    raise NotImplementedError("tenant keys are not undone; restore a backup instead")
