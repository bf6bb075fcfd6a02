"""The Alembic history builds exactly the schema the models describe, on both backends."""

from __future__ import annotations

import re

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

import haina.models_registry  # noqa: F401
from haina.core.db import Base, make_engine
from haina.core.schema import SchemaBehind, current_revision, ensure_current, head_revision, upgrade


def _diffs(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(ctx, Base.metadata)
    # autogenerate cannot see inside expression indexes or SQLite's FTS shadow tables
    ignored = ("product_search",)
    if engine.dialect.name == "sqlite":
        ignored += ("ix_products_search_trgm",)  # a PostgreSQL-only (pg_trgm) index
        # PostgreSQL-only: the geo search's partial band indexes (migration 0026)
        ignored += ("ix_service_points_band_short", "ix_service_points_band_long")
    else:
        ignored += ("ix_service_points_tenant_band",)  # SQLite's one band index
    out = []
    for d in diffs:
        item = d[0] if isinstance(d, list) else d
        text_ = repr(item)
        # partitions (the partitioned test mode) and what PostgreSQL clones onto them are not
        # in the models (table names may hold digits: o2o_partnerships_p3)
        if re.search(r"\b[a-z0-9_]+_p\d+\b", text_):
            continue
        if any(name in text_ for name in ignored) or any(
                name in text_ for name in ("ix_members_tenant_lower_name",
                                           "ux_variants_tenant_lower_sku")):
            continue
        out.append(item)
    return out


def test_migrations_build_the_models_schema(empty_url):
    engine = make_engine(empty_url)
    with pytest.raises(SchemaBehind, match="haina migrate"):
        ensure_current(engine)
    before, after = upgrade(engine)
    assert before is None and after == head_revision()
    ensure_current(engine)
    assert _diffs(engine) == []
    assert "orders" in inspect(engine).get_table_names()
    # what autogenerate cannot compare, checked by name
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            names = set(conn.execute(text("SELECT name FROM sqlite_master")).scalars())
            assert {"product_search", "products_search_ai"} <= names
        else:
            names = set(conn.execute(text("SELECT indexname FROM pg_indexes")).scalars())
            assert {"ix_products_search_trgm", "ix_service_points_band_short",
                    "ix_service_points_band_long"} <= names
            assert "ix_service_points_tenant_band" not in names
        assert {"ix_members_tenant_lower_name", "ux_variants_tenant_lower_sku"} <= names
    # upgrading again is a no-op
    assert upgrade(engine) == (after, after)
    engine.dispose()


def test_the_app_refuses_a_database_that_is_behind(empty_url):
    from haina.api import create_app
    from haina.core.config import Settings
    engine = make_engine(empty_url)
    with pytest.raises(SchemaBehind, match="run `haina migrate`"):
        create_app(Settings(database_url=empty_url), engine=engine)
    assert current_revision(engine) is None
    engine.dispose()


def _fill(conn, table_name: str, **given) -> None:
    """Insert a row of the table as the database has it now (reflected), with ``given``
    values and a plain value for every other NOT NULL column without a default."""
    import datetime as dt

    from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, MetaData, Numeric, Table
    table = Table(table_name, MetaData(), autoload_with=conn)
    row = dict(given)
    for c in table.columns:
        if c.name in row or c.nullable or c.server_default is not None:
            continue
        t = c.type
        row[c.name] = (dt.datetime(2026, 1, 1, tzinfo=dt.UTC) if isinstance(t, DateTime)
                       else False if isinstance(t, Boolean)
                       else 0 if isinstance(t, (Integer, Float, Numeric))
                       else {} if isinstance(t, JSON) or "JSON" in type(t).__name__.upper()
                       else "x")
    conn.execute(table.insert().values(**row))


def test_0027_upgrades_points_and_bookings_holding_data(empty_url):
    """Points and bookings made before 0027 (partitioned too, under make test-partitioned):
    their rows stay, a point is in China with no ratings, a booking has no goods, and a
    rating can then be written."""
    engine = make_engine(empty_url)
    upgrade(engine, "0026")
    with engine.begin() as conn:
        _fill(conn, "tenants", id="ten_1", slug="acme", name="Acme")
        _fill(conn, "service_points", id="sp_1", tenant_id="ten_1", name="Bay",
              address="漕溪北路 88 号", lat=31.2, lng=121.4, status="active",
              timezone="Asia/Shanghai", opening_hours=[], exceptions=[], fitment={},
              service_codes=" tire-fitting ")
        _fill(conn, "point_services", id="svc_1", tenant_id="ten_1", point_id="sp_1",
              code="tire-fitting", capacity=1, duration_minutes=60)
        _fill(conn, "bookings", id="bkg_1", tenant_id="ten_1", point_id="sp_1",
              service_id="svc_1", service_code="tire-fitting", status="completed",
              member_id="mem_1")
    upgrade(engine, "head")
    with engine.begin() as conn:
        point = conn.execute(text(
            "SELECT address, country, city, rating_count, rating_sum FROM service_points")).one()
        assert tuple(point) == ("漕溪北路 88 号", "CN", None, 0, 0)
        assert conn.execute(text("SELECT id, goods FROM bookings")).one() == ("bkg_1", None)
        conn.execute(text(
            "INSERT INTO o2o_ratings (id, tenant_id, booking_id, point_id, member_id, score, "
            "created_at) VALUES ('rtg_1', 'ten_1', 'bkg_1', 'sp_1', 'mem_1', 5, :now)"),
            {"now": "2026-01-02 00:00:00+00:00"})
        assert conn.execute(text("SELECT count(*) FROM o2o_ratings")).scalar() == 1
    engine.dispose()
