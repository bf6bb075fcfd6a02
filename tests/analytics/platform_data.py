"""Helpers that write platform rows for the analytics tests (a module name of its own)."""

from __future__ import annotations

import datetime as dt
import random

from haina.core.db import transaction
from haina.core.ids import new_id

UTC = dt.UTC


def order_rows(tenant_id: str, member_id: str | None, paid_at: dt.datetime | None,
               paid_minor: int, *, refunded_minor: int = 0, currency: str = "CNY",
               status: str | None = None) -> tuple[dict, dict]:
    """An ``orders`` row and one ``order_lines`` row for ``orders.service.import_orders``."""
    order_id = new_id("order")
    status = status or ("completed" if paid_at else "cancelled")
    if paid_at is not None and refunded_minor >= paid_minor > 0:
        status = "refunded"
    created = paid_at or dt.datetime(2024, 1, 1, tzinfo=UTC)
    order = {
        "id": order_id, "tenant_id": tenant_id, "member_id": member_id, "channel": "web",
        "app_id": None, "location_id": None, "status": status,
        "refund_status": "none" if not refunded_minor else
        ("full" if refunded_minor >= paid_minor else "partial"),
        "currency": currency, "subtotal_minor": paid_minor or 1000, "discount_minor": 0,
        "shipping_minor": 0, "tax_minor": 0, "total_minor": paid_minor or 1000,
        "paid_minor": paid_minor, "refunded_minor": refunded_minor, "points_redeemed": 0,
        "coupon_code": None, "address": None, "note": None, "metadata": None,
        "hold_expires_at": None, "created_at": created, "updated_at": created,
        "paid_at": paid_at, "fulfilled_at": None, "completed_at": None,
        "cancelled_at": None if paid_at else created, "cancel_reason": None,
    }
    line = {"id": new_id("order_line"), "tenant_id": tenant_id, "order_id": order_id,
            "variant_id": "var_x", "product_id": "prod_x", "sku": "X", "title": "X",
            "unit_price_minor": paid_minor or 1000, "quantity": 1,
            "total_minor": paid_minor or 1000, "shipped_quantity": 1}
    return order, line


def buying_history(tenant_id: str, member_ids: list[str], *, end: dt.date, days: int = 400,
                   seed: int = 1) -> tuple[list[dict], list[dict]]:
    """Orders drawn so that most members buy again: enough repeat buyers for the models."""
    rnd = random.Random(seed)
    orders, lines = [], []
    start = dt.datetime.combine(end - dt.timedelta(days=days), dt.time(10), tzinfo=UTC)
    for member_id in member_ids:
        day = rnd.randrange(0, days // 2)
        rate = rnd.uniform(1 / 60, 1 / 10)
        while day < days:
            at = start + dt.timedelta(days=day, minutes=rnd.randrange(600))
            o, ln = order_rows(tenant_id, member_id, at, rnd.randrange(5_000, 60_000))
            orders.append(o)
            lines.append(ln)
            if rnd.random() < 0.08:
                break
            day += 1 + int(rnd.expovariate(rate))
    return orders, lines


def new_members(sessions, tenant, n: int) -> list[str]:
    from haina.members import service as members
    from haina.members.schemas import MemberCreate

    with transaction(sessions) as s:
        return [members.create_member(s, tenant, MemberCreate(name=f"m{i}")).id for i in range(n)]


def write_orders(sessions, tenant, rows: list[tuple[dict, dict]]) -> None:
    """Write (order, line) pairs through ``orders.service.import_orders``."""
    from haina.orders import service as orders

    with transaction(sessions) as s:
        orders.import_orders(s, tenant, [o for o, _ in rows], [ln for _, ln in rows])
