"""A first-order promotion goes to one order per member, even when two first orders are
placed at once (a claim row unique per promotion and member, taken in the order's
transaction), and a cancelled first order gives it back — SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from haina.core.db import transaction
from haina.core.errors import Problem
from haina.orders import service as orders
from haina.orders.schemas import OrderCreate


def ok(r, status=(200, 201)):
    assert r.status_code in ((status,) if isinstance(status, int) else status), r.text
    return r.json()


def setup(client):
    for sku in ("A-1", "B-1"):
        ok(client.post("/v1/products", json={"sku": sku, "title": sku, "stock": 10,
                                             "price": {"amount": "100.00", "currency": "CNY"}}))
    ok(client.post("/v1/promotions", json={"name": "新客立减", "kind": "first_order",
                                           "off": {"amount": "10.00", "currency": "CNY"}}))
    return ok(client.post("/v1/members", json={"name": "Li"}))["id"]


def test_two_first_orders_at_once_get_the_first_order_discount_once(client, sessions):
    from haina.platform import service as platform
    member = setup(client)
    with transaction(sessions) as s:
        tenant = platform.tenant_for_slug(s, "acme")
    start, lock = threading.Barrier(2), threading.Lock()
    discounts: list[str] = []
    errors: list[BaseException] = []

    def buy(sku: str) -> None:
        try:
            start.wait()
            # different goods: the stock rows do not queue the two orders
            with transaction(sessions) as s:
                o = orders.place_order(s, tenant, OrderCreate(
                    lines=[{"sku": sku, "quantity": 1}], member_id=member))
            with lock:
                discounts.append(str(o.totals.discount.amount))
        except (Problem, BaseException) as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=buy, args=(sku,)) for sku in ("A-1", "B-1")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sorted(discounts) == ["0.00", "10.00"]


def test_a_cancelled_first_order_gives_the_first_order_discount_back(client):
    member = setup(client)
    first = ok(client.post("/v1/orders", json={"lines": [{"sku": "A-1", "quantity": 1}],
                                               "member_id": member}), 201)
    assert first["totals"]["discount"]["amount"] == "10.00"
    ok(client.post(f"/v1/orders/{first['id']}/cancel", json={"reason": "changed_mind"}))
    again = ok(client.post("/v1/orders", json={"lines": [{"sku": "B-1", "quantity": 1}],
                                               "member_id": member}), 201)
    assert again["totals"]["discount"]["amount"] == "10.00"
    later = ok(client.post("/v1/orders", json={"lines": [{"sku": "A-1", "quantity": 1}],
                                               "member_id": member}), 201)
    assert later["totals"]["discount"]["amount"] == "0.00"
