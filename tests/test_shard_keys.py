"""Ready to shard by merchant: every tenant table keyed (tenant_id, …), unique constraints and
lookup indexes led by tenant_id, foreign keys within one merchant; the migration that made it
so keeps every row; and on a hash-partitioned PostgreSQL the hot statements each touch one
partition (the local stand-in for a Citus router query)."""

from __future__ import annotations

import pytest
from rich.console import Console
from sqlalchemy import (
    Column,
    ForeignKeyConstraint,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
    inspect,
    null,
    select,
    text,
)

import haina.models_registry  # noqa: F401
from haina.core.db import GLOBAL_TABLES, Base, make_engine, make_sessionmaker, transaction
from haina.core.schema import upgrade

# indexes for the worker's scans across merchants (each shard scans its own rows under Citus),
# and the trigram index that search uses together with tenant_id
CROSS_TENANT_INDEXES = {
    "ix_orders_status_hold": "unpaid-order expiry",
    "ix_reservations_status_expiry": "hold expiry",
    "ix_bookings_status_expiry": "booking-hold expiry",
    "ix_point_services_next_free_until": "the worker's refresh of precomputed next free slots",
    "ix_points_entries_expiring": "points expiry",
    "ix_idempotency_keys_created_at": "idempotency-key purge",
    "ix_analytics_jobs_status": "the worker's queue of analytics refreshes",
    "ix_events_pending": "the webhook dispatcher's queue of events not yet fanned out",
    "ix_webhook_deliveries_due": "the webhook worker's scan for due deliveries",
    "ix_products_search_trgm": "trigram search (GIN), queried with tenant_id",
    "ix_app_grants_app_id": "an app's installations across merchants (its own calls)",
    "ix_data_request_acks_app": "an app's privacy requests across merchants (its own calls)",
    "ix_data_request_acks_pending": "the worker's reminders and deadlines of privacy requests",
    "ix_storefront_sign_in_codes_unredacted": "the worker's redaction of expired sign-in codes",
    "ix_storefront_sign_in_codes_created": "the worker's purge of sign-in codes after a day",
    "ix_storefront_sessions_refresh_expiry": "the worker's purge of ended buyer sessions",
    "ix_storefront_spent_refresh_tokens_spent_at": "the worker's purge of spent refresh tokens",
    "ix_crossborder_brands_expiry": "the worker's reminders and expiry of qualification files",
    "ix_campaigns_due": "the worker's launches, re-evaluations and ends of due campaigns",
    "ix_campaign_jobs_active": "the worker's queue of campaign enrolments (launches in batches)",
}


def shard_key_problems(metadata: MetaData) -> list[str]:
    """What keeps ``metadata``'s tenant tables from being distributed by tenant_id."""
    problems = []
    for table in metadata.sorted_tables:
        if table.name in GLOBAL_TABLES:
            continue
        where = f"table {table.name}"
        if "tenant_id" not in table.c:
            problems.append(f"{where} has no tenant_id (or list it in core.db.GLOBAL_TABLES)")
            continue
        pk = [c.name for c in table.primary_key.columns]
        if not pk or pk[0] != "tenant_id":
            problems.append(f"{where}: primary key {pk} does not start with tenant_id")
        elif "id" in table.c and pk != ["tenant_id", "id"]:
            problems.append(f"{where}: primary key {pk} is not (tenant_id, id)")
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint):
                columns = [c.name for c in constraint.columns]
                if columns[:1] != ["tenant_id"]:
                    problems.append(f"{where}: unique {columns} does not start with tenant_id")
            if isinstance(constraint, ForeignKeyConstraint):
                referred = constraint.referred_table.name
                if referred in GLOBAL_TABLES:
                    continue
                pairs = {(e.parent.name, e.column.name) for e in constraint.elements}
                if ("tenant_id", "tenant_id") not in pairs:
                    problems.append(f"{where}: foreign key to {referred} leaves out tenant_id")
        for index in table.indexes:
            first = index.expressions[0] if index.expressions else None
            name = getattr(first, "name", None)
            if name != "tenant_id" and index.name not in CROSS_TENANT_INDEXES:
                problems.append(f"{where}: index {index.name} does not start with tenant_id")
    return problems


def test_every_tenant_table_can_be_distributed_by_tenant_id():
    assert shard_key_problems(Base.metadata) == []


def test_a_table_breaking_the_rules_is_caught():
    metadata = MetaData()
    Table("parents", metadata, Column("tenant_id", String, primary_key=True),
          Column("id", String, primary_key=True))
    Table("children", metadata, Column("id", String, primary_key=True),
          Column("tenant_id", String), Column("parent_id", String), Column("code", String),
          ForeignKeyConstraint(["parent_id"], ["parents.id"]), UniqueConstraint("code"),
          Index("ix_children_code", "code"))
    Table("notes", metadata, Column("id", String, primary_key=True))
    assert sorted(shard_key_problems(metadata)) == [
        "table children: foreign key to parents leaves out tenant_id",
        "table children: index ix_children_code does not start with tenant_id",
        "table children: primary key ['id'] does not start with tenant_id",
        "table children: unique ['code'] does not start with tenant_id",
        "table notes has no tenant_id (or list it in core.db.GLOBAL_TABLES)",
    ]


def _counts(engine) -> dict[str, int]:
    tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
    with engine.connect() as conn:
        return {t: conn.execute(select(func.count()).select_from(text(f'"{t}"'))).scalar()
                for t in tables}


# it unsets HAINA_PARTITION_BY_TENANT itself: the partitioned run would repeat it unchanged
@pytest.mark.partition_neutral
@pytest.mark.slow
def test_the_tenant_keys_migration_keeps_every_row_of_the_demo(empty_url, monkeypatch):
    from haina.demo import load_demo
    monkeypatch.delenv("HAINA_PARTITION_BY_TENANT", raising=False)
    engine = make_engine(empty_url)
    upgrade(engine, "0002")
    # the demo as the 0002 schema can hold it: O2O's partner shops came with migration 0010
    import haina.demo
    monkeypatch.setattr(haina.demo, "_partner_shops", lambda *args: None)
    monkeypatch.setattr(haina.demo, "_shop_key", lambda *args: None)  # storefront keys: 0013
    # the demo is loaded into the schema of 0002, which has no consent log yet (0009)
    monkeypatch.setattr("haina.members.profiles._log_consents", lambda *a, **k: None)
    # nor products' trade mode (0019): the order's variants query selects a NULL in its place
    # (its compiled statements cached afresh for this test), and nor erasures (0015): an
    # order's member is resolved without asking whether the person was erased
    import haina.catalog.service as catalog
    import haina.members.service as members
    monkeypatch.setattr(catalog, "_TRADE_MODE", null().label("trade_mode"))
    monkeypatch.setattr(catalog, "_VARIANTS_BY_SKU", {})
    monkeypatch.setattr(catalog, "_VARIANTS_BY_LOWER_SKU", {})
    monkeypatch.setattr(members, "resolve_buyer_id", members.resolve_member_id)
    monkeypatch.setattr(members, "resolve_buyer", lambda s, t, m: (
        members.resolve_member_id(s, t, m),
        members.tier_id_of(s, t, members.resolve_member_id(s, t, m))))
    # 20 members a merchant instead of the quick demo's 200 and 50: the same tables hold rows
    # (19 on PostgreSQL, 25 on SQLite with its search index's), 435 orders instead of 2,534,
    # 1,251 journal lines instead of 7,326; the load takes a fifth of the time
    load_demo(make_sessionmaker(engine), quick=True, console=Console(quiet=True), members=20)
    before = _counts(engine)
    assert before["orders"] > 300 and before["journal_lines"] > 800
    assert all(before[t] > 0 for t in (
        "tenants", "members", "member_identities", "member_tiers", "member_spend", "products",
        "variants", "stock_levels", "stock_adjustments", "orders", "order_lines",
        "payment_intents", "journal_entries", "journal_lines", "points_entries", "events"))
    upgrade(engine, "head")
    after = _counts(engine)  # later revisions add tables of their own, empty here
    assert {t: after[t] for t in before} == before
    found = inspect(engine)
    for table in Base.metadata.sorted_tables:
        expected = [c.name for c in table.primary_key.columns]
        assert found.get_pk_constraint(table.name)["constrained_columns"] == expected, table.name
        for fk in found.get_foreign_keys(table.name):
            if fk["referred_table"] not in GLOBAL_TABLES:
                assert fk["constrained_columns"][0] == "tenant_id", (table.name, fk)
    # and the platform still works on the moved data: a demo merchant's orders list
    from haina.orders import service as orders
    from haina.platform import service as platform
    with transaction(make_sessionmaker(engine)) as s:
        tenant = platform.tenant_for_slug(s, "demo-tires")
        assert len(orders.list_orders(s, tenant, limit=20).data) == 20
    engine.dispose()


# ------------------------------------------------------------------ hash-partitioned PostgreSQL

@pytest.fixture(scope="module")
def partitioned_template(pg_cluster):
    """The migrations run once per module with HAINA_PARTITION_BY_TENANT=1 (16 s at load 8;
    a copy takes a second or two)."""
    from support import pg_database
    with pytest.MonkeyPatch.context() as env, pg_database(pg_cluster, "pt_") as url:
        env.setenv("HAINA_PARTITION_BY_TENANT", "1")
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def partitioned_url(pg_cluster, partitioned_template, monkeypatch):
    """A copy of the hash-partitioned schema, with the partitioned mode's engine settings."""
    from support import pg_database
    monkeypatch.setenv("HAINA_PARTITION_BY_TENANT", "1")
    with pg_database(pg_cluster, "p_", partitioned_template, reuse=False) as url:
        yield url


# partitioned_url sets HAINA_PARTITION_BY_TENANT=1 itself: the partitioned run would repeat
# these unchanged
@pytest.mark.partition_neutral
@pytest.mark.pg
def test_the_migrations_partition_every_tenant_table_in_eight(partitioned_url):
    engine = make_engine(partitioned_url)
    with engine.connect() as conn:
        partitioned = dict(conn.execute(text(
            "SELECT c.relname, count(i.inhrelid) FROM pg_partitioned_table p "
            "JOIN pg_class c ON c.oid = p.partrelid "
            "LEFT JOIN pg_inherits i ON i.inhparent = p.partrelid GROUP BY c.relname")).all())
    tenant_tables = {t.name for t in Base.metadata.sorted_tables if t.name not in GLOBAL_TABLES}
    assert set(partitioned) == tenant_tables
    assert set(partitioned.values()) == {8}
    engine.dispose()


def _relations(plan: dict) -> set[str]:
    found = set()
    if "Relation Name" in plan:
        found.add(plan["Relation Name"])
    for child in plan.get("Plans", []):
        found |= _relations(child)
    return found


@pytest.mark.partition_neutral
@pytest.mark.pg
def test_each_hot_statement_touches_one_partition(partitioned_url):
    """Run the hot paths through the services, capture every statement they send (the
    precompiled order path included) with its parameters, and EXPLAIN each one."""
    from sqlalchemy import event
    from support import make_tenant

    from haina.analytics import service as analytics
    from haina.catalog import service as catalog
    from haina.catalog.schemas import ProductCreate
    from haina.core import db
    from haina.core.events import list_events
    from haina.core.money import Money
    from haina.orders import service as orders
    from haina.orders.schemas import LineIn, OrderCreate

    engine = make_engine(partitioned_url)
    sessions = make_sessionmaker(engine)
    tenants = [make_tenant(sessions, f"shop-{i}")[0] for i in range(3)]  # spread over partitions
    for tenant in tenants:
        with transaction(sessions) as s:
            catalog.create_product(s, tenant, ProductCreate(
                sku="TIRE-1", title="Tire", price=Money(amount="100.00", currency="CNY"),
                stock=100))
    tenant = tenants[0]
    captured: list[tuple[str, object, str]] = []  # (sql, parameters, kind)

    def on_execute(conn, cursor, statement, parameters, context, executemany):
        if not executemany:  # (many-row inserts: each row is routed to its tenant's partition)
            captured.append((statement, parameters, "sqlalchemy"))

    original = db.Precompiled.rows

    def precompiled_rows(self, session, params):
        sql, names, _ = self._compiled(db._connection(session).dialect)
        captured.append((sql, [params[n] for n in names], "raw"))
        return original(self, session, params)

    event.listen(engine, "before_cursor_execute", on_execute)
    db.Precompiled.rows = precompiled_rows
    try:
        with transaction(sessions) as s:  # place order: stock claim + the combined insert
            order = orders.place_order(s, tenant, OrderCreate(
                lines=[LineIn(sku="TIRE-1", quantity=1)]))
        with transaction(sessions) as s:  # list orders, events page, analytics read
            orders.list_orders(s, tenant, limit=20)
            list_events(s, tenant, limit=50)
            orders.purchase_page(s, tenant, "CNY", after=("", ""), limit=500)
            analytics.segments_overview(s, tenant)
    finally:
        db.Precompiled.rows = original
        event.remove(engine, "before_cursor_execute", on_execute)
    assert order.id and len(captured) >= 8

    import psycopg
    from psycopg.types.json import Jsonb
    partition_names = {f"{t.name}_p{i}" for t in Base.metadata.sorted_tables for i in range(8)}
    checked = 0
    with psycopg.connect(partitioned_url.replace("postgresql+psycopg", "postgresql")) as conn:
        for sql, params, kind in captured:
            if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH")):
                continue  # an INSERT … VALUES routes each row to its tenant's partition
            cursor = psycopg.RawCursor(conn) if kind == "raw" else conn.cursor()
            if isinstance(params, list | tuple):
                params = [Jsonb(p) if isinstance(p, dict | list) else p for p in params]
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params or None)
            plan = cursor.fetchone()[0][0]["Plan"]
            touched = _relations(plan) & partition_names
            per_table: dict[str, set[str]] = {}
            for name in touched:
                per_table.setdefault(name.rsplit("_p", 1)[0], set()).add(name)
            assert all(len(parts) == 1 for parts in per_table.values()), (sql, per_table)
            checked += 1
            conn.rollback()
    assert checked >= 8
    engine.dispose()

