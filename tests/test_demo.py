"""The demo data: idempotent, consistent, and with customers for the analytics to find."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import pytest
from rich.console import Console
from sqlalchemy import text

from haina.core.db import make_engine, make_sessionmaker, transaction
from haina.demo import load_demo
from haina.platform import service as platform


@pytest.fixture
def demo_sessions(demo_db_url):
    engine = make_engine(demo_db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_demo_loads_once_and_its_books_balance(demo_db_url, demo_sessions, request):
    # the demo database is a copy of the template that `haina demo --quick` loaded into a
    # fresh database once for the run (tests/support.py, DemoTemplate): that load created
    # both merchants, as its report of each says; loading again finds them
    built = request.getfixturevalue("sqlite_demo_template" if demo_db_url.startswith("sqlite")
                                    else "pg_demo_template")
    assert built.code == 0, built.stderr
    assert [line for line in built.stderr.splitlines()
            if re.fullmatch(r"demo merchant \S+: \w+", line)] == [
        "demo merchant demo-tires: created", "demo merchant demo-beauty: created"]
    sessions = demo_sessions
    quiet = Console(quiet=True)
    assert load_demo(sessions, quick=True, console=quiet) == {"demo-tires": "exists",
                                                              "demo-beauty": "exists"}
    with transaction(sessions) as s:
        if not demo_db_url.startswith("sqlite"):
            # the load analysed what it wrote: the planner has the merchants' statistics
            analysed = s.execute(text(
                "SELECT count(DISTINCT tablename) FROM pg_stats WHERE schemaname = 'public' "
                "AND attname = 'tenant_id' AND tablename IN "
                "('products', 'orders', 'members', 'journal_lines')")).scalar()
            assert analysed == 4
        tenant = platform.tenant_for_slug(s, "demo-tires")
        t = {"t": tenant.id}
        products = s.execute(text("SELECT count(*) FROM products WHERE tenant_id = :t"), t).scalar()
        assert 40 <= products <= 60
        tires = s.execute(text("SELECT count(*) FROM products WHERE tenant_id = :t "
                               "AND search_text LIKE '%轮胎%'"), t).scalar()
        assert tires >= 25
        orders = s.execute(text("SELECT member_id, created_at, status, paid_minor FROM orders "
                                "WHERE tenant_id = :t"), t).all()
        assert 1000 <= len(orders) <= 4000  # the full demo has about 20,000
        # every journal entry balances and cash equals what was paid
        unbalanced = s.execute(text(
            "SELECT entry_id FROM journal_lines WHERE tenant_id = :t GROUP BY entry_id "
            "HAVING sum(debit_minor) <> sum(credit_minor)"), t).all()
        assert unbalanced == []
        cash = s.execute(text("SELECT sum(debit_minor) - sum(credit_minor) FROM journal_lines "
                              "WHERE tenant_id = :t AND account = 'platform_cash'"), t).scalar()
        assert cash == sum(o.paid_minor for o in orders)
        # points balances equal the sum of each member's ledger
        mismatched = s.execute(text(
            "SELECT m.id FROM members m LEFT JOIN (SELECT member_id, sum(points) AS p FROM "
            "points_entries WHERE tenant_id = :t GROUP BY member_id) l ON l.member_id = m.id "
            "WHERE m.tenant_id = :t AND m.points_balance <> coalesce(l.p, 0)"), t).all()
        assert mismatched == []
        # 30 partner shops, 15 around Shanghai, and tires found with the ones that fit them
        from haina.o2o import service as o2o
        assert s.execute(text("SELECT count(*) FROM service_points WHERE tenant_id = :t"),
                         t).scalar() == 30
        # each with the postal address an order with a fitting ships to
        assert s.execute(text(
            "SELECT count(*) FROM service_points WHERE tenant_id = :t AND address IS NOT NULL "
            "AND city IS NOT NULL AND postal_code IS NOT NULL AND phone IS NOT NULL"),
            t).scalar() == 30
        near = o2o.nearby(s, tenant, 31.2304, 121.4737, 40, service="tire-fitting", limit=30)
        assert len(near.data) == 15 and near.data[0].next_slots
        found = o2o.search(s, tenant, "轮胎", 31.2304, 121.4737, 20).products
        assert found and all(p.service == "tire-fitting" for p in found)
        assert any(p.service_points for p in found)
    per_member = Counter(o.member_id for o in orders)
    last: dict[str, dt.datetime] = {}
    for o in orders:
        at = o.created_at if isinstance(o.created_at, dt.datetime) else dt.datetime.fromisoformat(o.created_at)
        at = at.replace(tzinfo=None)
        last[o.member_id] = max(last.get(o.member_id, at), at)
    now = max(last.values())
    lapsed = sum(1 for d in last.values() if now - d > dt.timedelta(days=180))
    assert max(per_member.values()) >= 8          # loyal regulars
    assert sum(1 for c in per_member.values() if c == 1) >= 10   # one-off buyers
    assert lapsed >= 20                            # and customers who drifted away
    assert Counter(o.status for o in orders)["cancelled"] >= 1
