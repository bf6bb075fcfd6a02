"""The dashboard's numbers (orders.service.sales_by_week): weeks from Monday (UTC, or the
merchant's time zone), net of refunds, full refunds and unpaid orders left out, and a member
new only in the week of their first paid order ever. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from haina.core.db import transaction
from haina.core.ids import new_id
from haina.orders import service as orders

UTC = dt.UTC


def _paid(tenant, member: str | None, at: dt.datetime, minor: int, refunded: int = 0,
          paid: bool = True):
    return orders.order_record(
        id=new_id("order"), tenant_id=tenant.id, member_id=member, channel="web",
        status="completed" if paid else "pending_payment", currency="CNY",
        subtotal_minor=minor, total_minor=minor, paid_minor=minor if paid else 0,
        refunded_minor=refunded, created_at=at, paid_at=at if paid else None)


def test_weeks_count_sales_net_of_refunds_and_new_against_returning_members(sessions, tenant):
    monday = dt.datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
    a, b, c = "mem_a", "mem_b", "mem_c"
    history = [
        _paid(tenant, a, monday - dt.timedelta(days=60), 5_000),   # a's first, before the window
        _paid(tenant, b, monday + dt.timedelta(hours=1), 10_000),  # b new in week 1
        _paid(tenant, b, monday + dt.timedelta(days=6, hours=23), 2_000),  # b again, still week 1
        _paid(tenant, a, monday + dt.timedelta(days=8), 30_000, refunded=10_000),  # a returns
        _paid(tenant, c, monday + dt.timedelta(days=9), 7_000, refunded=7_000),  # refunded in full
        _paid(tenant, None, monday + dt.timedelta(days=10), 1_500),  # a guest
        _paid(tenant, c, monday + dt.timedelta(days=11), 4_000, paid=False),  # never paid
    ]
    with transaction(sessions) as s:
        orders.import_orders(s, tenant, history, [])
    with transaction(sessions) as s:
        weeks = orders.sales_by_week(s, tenant, (monday + dt.timedelta(days=3)).date(),
                                     (monday + dt.timedelta(days=20)).date())
    assert [w.start for w in weeks] == [dt.date(2026, 11, 2), dt.date(2026, 11, 9),
                                        dt.date(2026, 11, 16)]
    first, second, third = weeks
    assert (first.orders, first.sales.minor, first.new_members, first.returning_members) == \
        (2, 12_000, 1, 0)
    assert (second.orders, second.sales.minor, second.new_members, second.returning_members) == \
        (2, 21_500, 0, 1)
    assert (third.orders, third.sales.minor, third.new_members) == (0, 0, 0)


def test_weeks_start_at_monday_midnight_in_the_merchants_time_zone(sessions, tenant):
    from zoneinfo import ZoneInfo
    # Monday 9 Nov 2026, 02:00 in Shanghai is still Sunday 8 Nov, 18:00 in UTC
    late = dt.datetime(2026, 11, 8, 18, tzinfo=UTC)
    with transaction(sessions) as s:
        orders.import_orders(s, tenant, [_paid(tenant, "mem_a", late, 8_000)], [])
    since, until = dt.date(2026, 11, 2), dt.date(2026, 11, 9)
    with transaction(sessions) as s:
        utc = orders.sales_by_week(s, tenant, since, until)
        china = orders.sales_by_week(s, tenant, since, until, zone=ZoneInfo("Asia/Shanghai"))
        new_york = orders.sales_by_week(s, tenant, since, until,
                                        zone=ZoneInfo("America/New_York"))
    assert [(w.start, w.orders, w.new_members) for w in utc] == \
        [(dt.date(2026, 11, 2), 1, 1), (dt.date(2026, 11, 9), 0, 0)]
    assert [(w.start, w.orders, w.new_members) for w in china] == \
        [(dt.date(2026, 11, 2), 0, 0), (dt.date(2026, 11, 9), 1, 1)]
    assert [w.orders for w in new_york] == [1, 0]
