"""Orders and payments through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

CARD_OK = {"type": "card", "number": "4242424242424242"}
CARD_DECLINED = {"type": "card", "number": "4000000000000002"}
CARD_FAILS_ON_CAPTURE = {"type": "card", "number": "4000000000000341"}


def product(client, sku="TIRE-1", stock=5, amount="99.00", title="Michelin 205/55R16 轮胎"):
    r = client.post("/v1/products", json={"sku": sku, "title": title,
                                          "price": {"amount": amount, "currency": "CNY"},
                                          "stock": stock})
    assert r.status_code == 201, r.text
    return r.json()


def order(client, sku="TIRE-1", quantity=1, **extra):
    return client.post("/v1/orders", json={"lines": [{"sku": sku, "quantity": quantity}], **extra})


def pay(client, order_id, method=CARD_OK, **extra):
    return client.post("/v1/payment_intents",
                       json={"order_id": order_id, "payment_method": method, **extra})


def available(client, product_id):
    return client.get(f"/v1/products/{product_id}").json()["stock"]["available"]


def test_placing_an_order_holds_stock_and_snapshots_prices(client):
    p = product(client, stock=5, amount="99.00")
    r = order(client, quantity=2)
    assert r.status_code == 201, r.text
    o = r.json()
    assert o["status"] == "pending_payment"
    assert o["lines"][0]["unit_price"] == {"amount": "99.00", "currency": "CNY"}
    assert o["totals"]["subtotal"]["amount"] == "198.00"
    assert o["totals"]["total"]["amount"] == "198.00"
    assert available(client, p["id"]) == 3
    # a later price change does not touch the placed order
    client.patch(f"/v1/variants/{p['variants'][0]['id']}",
                 json={"price": {"amount": "120.00", "currency": "CNY"}})
    assert client.get(f"/v1/orders/{o['id']}").json()["lines"][0]["unit_price"]["amount"] == "99.00"


def test_ordering_more_than_is_in_stock_is_a_409_out_of_stock_problem(client):
    p = product(client, stock=1)
    r = order(client, quantity=2)
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("out-of-stock")
    assert r.json()["sku"] == "TIRE-1"
    assert available(client, p["id"]) == 1


def test_unknown_sku_is_a_404_problem(client):
    r = order(client, sku="NOPE")
    assert r.status_code == 404 and r.json()["type"].endswith("sku-not-found")


def test_pay_fulfil_complete_and_the_ledger_balances(client):
    p = product(client, stock=3, amount="100.00")
    o = order(client, quantity=2).json()
    r = pay(client, o["id"])
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "succeeded"
    got = client.get(f"/v1/orders/{o['id']}").json()
    assert got["status"] == "paid" and got["paid"]["amount"] == "200.00"
    assert got["hold_expires_at"] is None
    r = client.post(f"/v1/orders/{o['id']}/shipments", json={"carrier": "SF", "tracking_number": "SF123"})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "fulfilled"
    stock = client.get(f"/v1/products/{p['id']}").json()["stock"]
    assert stock == {"on_hand": 1, "reserved": 0, "available": 1}
    assert client.post(f"/v1/orders/{o['id']}/complete").json()["status"] == "completed"
    balances = {b["account"]: b["balance"]["amount"]
                for b in client.get("/v1/ledger/balances").json()["data"]}
    # default platform fee: 60 bps of 200.00 = 1.20
    assert balances == {"merchant_payable": "198.80", "platform_cash": "200.00", "platform_fees": "1.20"}
    types = [e["type"] for e in client.get(f"/v1/orders/{o['id']}/timeline").json()["data"]]
    assert types == ["order.created", "order.paid", "order.shipped", "order.fulfilled", "order.completed"]


def test_declined_card_is_recorded_and_answered_402(client):
    product(client)
    o = order(client).json()
    r = pay(client, o["id"], CARD_DECLINED)
    assert r.status_code == 402
    body = r.json()
    assert body["type"].endswith("payment-failed") and body["code"] == "card_declined"
    assert body["payment_intent"]["status"] == "failed"
    assert client.get(f"/v1/payment_intents/{body['payment_intent']['id']}").json()["status"] == "failed"
    assert client.get(f"/v1/orders/{o['id']}").json()["status"] == "pending_payment"
    # another card still works
    assert pay(client, o["id"]).json()["status"] == "succeeded"


def test_card_that_fails_after_authorisation(client):
    product(client)
    o = order(client).json()
    r = pay(client, o["id"], CARD_FAILS_ON_CAPTURE, capture_method="manual")
    assert r.status_code == 201 and r.json()["status"] == "requires_capture"
    r = client.post(f"/v1/payment_intents/{r.json()['id']}/capture")
    assert r.status_code == 402 and r.json()["code"] == "capture_failed"
    assert client.get(f"/v1/orders/{o['id']}").json()["status"] == "pending_payment"
    assert client.get("/v1/ledger/balances").json()["data"] == []


def test_manual_partial_capture_and_partial_refunds(client):
    product(client, stock=2, amount="50.00")
    o = order(client, quantity=2).json()
    pi = pay(client, o["id"], capture_method="manual").json()
    r = client.post(f"/v1/payment_intents/{pi['id']}/capture",
                    json={"amount": {"amount": "80.00", "currency": "CNY"}})
    assert r.json()["status"] == "succeeded" and r.json()["captured"]["amount"] == "80.00"
    r = client.post("/v1/refunds", json={"order_id": o["id"], "amount": {"amount": "30.00", "currency": "CNY"}})
    assert r.status_code == 201, r.text
    assert client.get(f"/v1/orders/{o['id']}").json()["refund_status"] == "partial"
    r = client.post("/v1/refunds", json={"payment_intent_id": pi["id"], "amount": {"amount": "60.00", "currency": "CNY"}})
    assert r.status_code == 422 and r.json()["type"].endswith("refund-exceeds-captured")
    r = client.post("/v1/refunds", json={"payment_intent_id": pi["id"]})
    assert r.json()["amount"]["amount"] == "50.00"
    got = client.get(f"/v1/orders/{o['id']}").json()
    assert got["status"] == "refunded" and got["refund_status"] == "full"
    balances = {b["account"]: b["balance"]["amount"]
                for b in client.get("/v1/ledger/balances").json()["data"]}
    assert balances == {"merchant_payable": "0.00", "platform_cash": "0.00", "platform_fees": "0.00"}


def test_cancelling_releases_stock_and_refunds_a_paid_order(client):
    p = product(client, stock=4)
    unpaid = order(client, quantity=1).json()
    paid = order(client, quantity=2).json()
    pay(client, paid["id"])
    assert available(client, p["id"]) == 1
    assert client.post(f"/v1/orders/{unpaid['id']}/cancel").json()["status"] == "cancelled"
    r = client.post(f"/v1/orders/{paid['id']}/cancel", json={"reason": "customer changed mind"})
    assert r.json()["status"] == "cancelled" and r.json()["refund_status"] == "full"
    assert available(client, p["id"]) == 4
    r = client.post(f"/v1/orders/{paid['id']}/cancel")
    assert r.status_code == 409 and r.json()["type"].endswith("invalid-state")


def test_unpaid_order_past_its_hold_is_cancelled_by_the_worker(client, sessions):
    import datetime as dt

    from haina.checkout import service as checkout
    from haina.core.db import transaction, utcnow
    p = product(client, stock=2)
    o = order(client, quantity=2).json()
    assert available(client, p["id"]) == 0
    with transaction(sessions) as s:
        assert checkout.cancel_expired_orders(s, utcnow()) == 0
    with transaction(sessions) as s:
        assert checkout.cancel_expired_orders(s, utcnow() + dt.timedelta(hours=1)) == 1
    got = client.get(f"/v1/orders/{o['id']}").json()
    assert got["status"] == "cancelled" and got["cancel_reason"] == "payment_timeout"
    assert available(client, p["id"]) == 2


def test_idempotency_key_replays_the_first_response(client):
    p = product(client, stock=5)
    body = {"lines": [{"sku": "TIRE-1", "quantity": 1}]}
    h = {"Idempotency-Key": "k-1"}
    first = client.post("/v1/orders", json=body, headers=h)
    again = client.post("/v1/orders", json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert available(client, p["id"]) == 4
    other = client.post("/v1/orders", json={"lines": [{"sku": "TIRE-1", "quantity": 2}]}, headers=h)
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")


def test_idempotency_key_replays_a_failure_too(client):
    product(client, stock=1)
    body = {"lines": [{"sku": "TIRE-1", "quantity": 2}]}
    h = {"Idempotency-Key": "k-2"}
    assert client.post("/v1/orders", json=body, headers=h).status_code == 409
    client.post("/v1/inventory/adjustments", json={"sku": "TIRE-1", "delta": 5, "reason": "received"})
    again = client.post("/v1/orders", json=body, headers=h)
    assert again.status_code == 409 and again.headers["Idempotent-Replayed"] == "true"


def test_another_tenants_order_is_a_404(client, sessions):
    from support import make_tenant
    product(client)
    o = order(client).json()
    _, other_token = make_tenant(sessions, "other-shop")
    r = client.get(f"/v1/orders/{o['id']}", headers={"Authorization": f"Bearer {other_token}"})
    assert r.status_code == 404
    r = client.get("/v1/orders", headers={"Authorization": f"Bearer {other_token}"})
    assert r.json()["data"] == []


def test_cart_checkout_makes_one_order(client):
    product(client, stock=5, amount="10.00")
    product(client, sku="VALVE", stock=5, amount="2.50", title="Valve cap 气门帽")
    cart = client.post("/v1/carts", json={"lines": [{"sku": "TIRE-1", "quantity": 1}]}).json()
    cart = client.post(f"/v1/carts/{cart['id']}/lines", json={"sku": "VALVE", "quantity": 4}).json()
    assert cart["totals"]["total"]["amount"] == "20.00"
    r = client.post(f"/v1/carts/{cart['id']}/checkout", json={})
    assert r.status_code == 201
    assert r.json()["totals"]["total"]["amount"] == "20.00"
    r = client.post(f"/v1/carts/{cart['id']}/checkout", json={})
    assert r.status_code == 409 and r.json()["type"].endswith("cart-closed")


def test_orders_paginate_newest_first(client):
    product(client, stock=10)
    ids = [order(client).json()["id"] for _ in range(5)]
    seen, cursor = [], None
    while True:
        page = client.get("/v1/orders", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [o["id"] for o in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == list(reversed(ids))


def test_shipping_and_tax_follow_the_merchant_settings(client):
    product(client, stock=5, amount="100.00")
    settings = client.get("/v1/tenant").json()["settings"]
    settings.update(shipping_fee="10.00", free_shipping_over="500.00", tax_rate_bps=910)
    assert client.put("/v1/tenant/settings", json=settings).status_code == 200
    t = order(client, quantity=1).json()["totals"]
    assert (t["shipping"]["amount"], t["tax"]["amount"], t["total"]["amount"]) == ("10.00", "10.01", "120.01")
    t = order(client, quantity=1, channel="pos").json()["totals"]
    assert (t["shipping"]["amount"], t["total"]["amount"]) == ("0.00", "109.10")


@pytest.mark.parametrize("body,where", [
    ({"lines": []}, "lines"),
    ({"lines": [{"sku": "TIRE-1", "quantity": 0}]}, "quantity"),
    ({"lines": [{"sku": "TIRE-1", "quantity": 1}], "points": 10}, "member_id"),
])
def test_bad_order_bodies_are_422_problems(client, body, where):
    r = client.post("/v1/orders", json=body)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert where in r.text


def test_an_order_from_an_unknown_or_foreign_location_is_a_404_like_a_reservation(client, sessions):
    from support import make_tenant

    from haina.core.db import transaction
    from haina.inventory import service as inventory
    product(client, stock=5)
    r = order(client, location_id="loc_nope")
    assert r.status_code == 404 and r.json()["type"].endswith("location-not-found")
    r = client.post("/v1/reservations",
                    json={"sku": "TIRE-1", "quantity": 1, "location_id": "loc_nope"})
    assert r.status_code == 404 and r.json()["type"].endswith("location-not-found")
    other, _ = make_tenant(sessions, "other")
    with transaction(sessions) as s:
        foreign = inventory.default_location(s, other).id
    r = order(client, location_id=foreign)
    assert r.status_code == 404 and r.json()["type"].endswith("location-not-found")


def test_an_unknown_status_filter_is_a_422_not_an_empty_page(client):
    r = client.get("/v1/orders", params={"status": "bogus"})
    assert r.status_code == 422 and r.json()["type"].endswith("validation-error")
    assert client.get("/v1/orders", params={"status": "paid"}).status_code == 200


def test_the_status_filter_names_exactly_the_lifecycle_states():
    from typing import get_args

    from haina.orders.schemas import OrderStatus
    from haina.orders.service import ORDER_LIFECYCLE
    assert set(get_args(OrderStatus)) == ORDER_LIFECYCLE.states
