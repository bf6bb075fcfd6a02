"""Promotions through the API (SQLite and PostgreSQL): the issue's contracts
(``POST /v1/promotions``, ``POST /v1/carts/price``), every kind priced with exact totals,
orders and carts priced by the same engine, budgets never exceeded under concurrent orders,
cancel giving back the coupon and the budget."""

from __future__ import annotations

import threading

import pytest

from haina.core.db import transaction
from haina.core.errors import Problem
from haina.orders import service as orders
from haina.orders.schemas import OrderCreate


def product(client, sku, amount, stock=500, **extra):
    r = client.post("/v1/products", json={"sku": sku, "title": sku, "stock": stock,
                                          "price": {"amount": amount, "currency": "CNY"},
                                          **extra})
    assert r.status_code == 201, r.text
    return r.json()


def promotion(client, **body):
    r = client.post("/v1/promotions", json={"name": body.pop("name", "promo"), **body})
    assert r.status_code == 201, r.text
    return r.json()


def quote(client, lines, **extra):
    r = client.post("/v1/carts/price", json={
        "lines": [{"sku": s, "quantity": q} for s, q in lines], **extra})
    assert r.status_code == 200, r.text
    return r.json()


def amt(money):
    assert money["currency"] == "CNY"
    return money["amount"]


def cny(amount):
    return {"amount": amount, "currency": "CNY"}


def test_the_issue_contract_a_repeating_threshold_priced_and_ordered(client):
    product(client, "TIRE", "100.00")
    p = promotion(client, name="每满300减40", kind="threshold",
                  tiers=[{"min_subtotal": "300.00", "off": "40.00"}], repeat=True)
    assert p["kind"] == "threshold" and p["repeat"] is True and p["status"] == "active"
    assert p["tiers"] == [{"min_subtotal": "300.00", "off": "40.00"}]
    q = quote(client, [("TIRE", 7)])
    assert set(q) >= {"subtotal", "discount", "shipping", "total", "lines", "applied"}
    assert (amt(q["subtotal"]), amt(q["discount"]), amt(q["shipping"]), amt(q["total"])) == \
        ("700.00", "80.00", "0.00", "620.00")
    (line,) = q["lines"]
    assert set(line) >= {"sku", "quantity", "unit_price", "discount", "total", "explanation"}
    assert (line["sku"], line["quantity"], amt(line["unit_price"]), amt(line["discount"]),
            amt(line["total"])) == ("TIRE", 7, "100.00", "80.00", "620.00")
    assert line["explanation"][0]["rule_id"] == p["id"] and "每满300减40" in \
        line["explanation"][0]["text"]
    assert [(a["id"], amt(a["amount"])) for a in q["applied"]] == [(p["id"], "80.00")]
    r = client.post("/v1/orders", json={"lines": [{"sku": "TIRE", "quantity": 7}]})
    assert r.status_code == 201, r.text
    o = r.json()
    assert amt(o["totals"]["discount"]) == "80.00" and amt(o["totals"]["total"]) == "620.00"
    assert amt(o["lines"][0]["discount"]) == "80.00"


def test_every_kind_priced_through_the_api(client):
    cat = client.post("/v1/categories", json={"name": "Care", "slug": "care"}).json()
    a = product(client, "A", "100.00")
    b = product(client, "B", "50.00")
    product(client, "OIL", "30.00", category_id=cat["id"])
    settings = client.get("/v1/tenant").json()["settings"]
    settings.update(shipping_fee="12.00")
    assert client.put("/v1/tenant/settings", json=settings).status_code == 200
    cases = [
        (dict(kind="percent", percent="10", product_ids=[a["id"]]), [("A", 2)], "20.00"),
        (dict(kind="fixed", off=cny("5.00"), category_ids=[cat["id"]]), [("OIL", 3)], "15.00"),
        (dict(kind="threshold", tiers=[{"min_subtotal": "300.00", "off": "40.00"},
                                       {"min_subtotal": "500.00", "off": "80.00"}]),
         [("A", 5)], "80.00"),
        (dict(kind="buy_x_get_y", buy=2, get=1, category_ids=[cat["id"]]), [("OIL", 3)],
         "30.00"),
        (dict(kind="bundle", bundle=[{"product_id": a["id"], "quantity": 1},
                                     {"product_id": b["id"], "quantity": 1}],
              bundle_price=cny("120.00")), [("A", 1), ("B", 1)], "30.00"),
        (dict(kind="tier_price", tiers=[{"min_quantity": 3, "unit_price": "90.00"}],
              product_ids=[a["id"]]), [("A", 3)], "30.00"),
    ]
    for body, lines, discount in cases:
        p = promotion(client, **body)
        q = quote(client, lines)
        assert amt(q["discount"]) == discount, (body, q)
        assert client.patch(f"/v1/promotions/{p['id']}", json={"status": "paused"}).json()[
            "status"] == "paused"
    ship = promotion(client, kind="free_shipping", min_subtotal=cny("100.00"))
    q = quote(client, [("A", 1)])
    assert (amt(q["shipping"]), amt(q["total"])) == ("0.00", "100.00")
    assert [(a["kind"], amt(a["shipping"])) for a in q["applied"]] == [("free_shipping",
                                                                        "12.00")]
    assert amt(quote(client, [("B", 1)])["shipping"]) == "12.00"
    client.patch(f"/v1/promotions/{ship['id']}", json={"status": "paused"})
    first = promotion(client, kind="first_order", off=cny("10.00"))
    buyer = client.post("/v1/members", json={"name": "Li"}).json()["id"]
    assert amt(quote(client, [("B", 1)])["discount"]) == "0.00"  # no member: no first order
    assert amt(quote(client, [("B", 1)], member_id=buyer)["discount"]) == "10.00"
    o = client.post("/v1/orders", json={"lines": [{"sku": "B", "quantity": 1}],
                                        "member_id": buyer}).json()
    assert amt(o["totals"]["discount"]) == "10.00"
    assert amt(quote(client, [("B", 1)], member_id=buyer)["discount"]) == "0.00"
    listed = client.get("/v1/promotions", params={"status": "active"}).json()["data"]
    assert [p["id"] for p in listed] == [first["id"]]


def test_promotions_coupon_and_points_are_allocated_to_the_order_lines(client):
    product(client, "A", "100.00")
    product(client, "B", "200.00")
    promotion(client, kind="threshold", tiers=[{"min_subtotal": "300.00", "off": "40.00"}])
    client.post("/v1/coupons", json={"code": "SAVE5", "discount": {
        "type": "fixed", "amount": cny("5.00")}, "usage_limit": 50})
    lines = [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1}]
    q = client.post("/v1/carts/price", json={"lines": lines, "coupon": "save5"}).json()
    assert amt(q["discount"]) == "45.00"
    assert [a["source"] for a in q["applied"]] == ["promotion", "coupon"]
    o = client.post("/v1/orders", json={"lines": lines, "coupon": "SAVE5"}).json()
    assert amt(o["totals"]["discount"]) == "45.00" and o["coupon"] == "SAVE5"
    # 40.00 split 1:2 → 13.33 + 26.67 (largest remainder); 5.00 → 1.67 + 3.33
    assert [amt(ln["discount"]) for ln in o["lines"]] == ["15.00", "30.00"]
    assert sum(float(amt(ln["discount"])) for ln in o["lines"]) == 45.0


def test_bad_promotions_are_refused_with_the_reason(client):
    bad = [
        ({"kind": "threshold"}, "tiers"),
        ({"kind": "threshold", "tiers": [{"min_subtotal": "0.00", "off": "1.00"}]}, "off"),
        ({"kind": "threshold", "tiers": [{"min_quantity": 2, "unit_price": "1.00"}]},
         "min_subtotal"),
        ({"kind": "percent", "percent": "10", "off": cny("1.00")}, "takes no off"),
        ({"kind": "percent", "percent": 10}, "JSON number"),
        ({"kind": "first_order"}, "percent or off"),
        ({"kind": "bundle", "bundle": [{"product_id": "prod_x"}, {"product_id": "prod_x"}],
          "bundle_price": cny("1.00")}, "once"),
        ({"kind": "free_shipping", "stacking_group": "Not A Group"}, "stacking_group"),
        ({"kind": "percent", "percent": "10", "ends_at": "2026-12-12T00:00:00"}, "time zone"),
    ]
    for body, where in bad:
        r = client.post("/v1/promotions", json={"name": "x", **body})
        assert r.status_code == 422 and where in r.text, (body, r.text)
    r = client.post("/v1/promotions", json={"name": "x", "kind": "percent", "percent": "10",
                                            "product_ids": ["prod_00000000000000000000000000"]})
    assert r.status_code == 404, r.text
    p = promotion(client, kind="percent", percent="10", budget=cny("100.00"))
    r = client.patch(f"/v1/promotions/{p['id']}", json={"budget": cny("100000.00"),
                                                        "priority": 3})
    assert r.status_code == 200 and r.json()["priority"] == 3
    assert amt(r.json()["budget"]) == "100000.00"
    r = client.post("/v1/carts/price", json={"lines": [{"sku": "NOPE", "quantity": 1}]})
    assert r.status_code == 404 and r.json()["type"].endswith("sku-not-found")


def test_cancel_gives_back_the_coupon_use_and_the_budget(client):
    product(client, "A", "100.00")
    p = promotion(client, kind="threshold", tiers=[{"min_subtotal": "100.00",
                                                    "off": "30.00"}], budget=cny("1000.00"))
    c = client.post("/v1/coupons", json={"code": "ONE", "discount": {
        "type": "percent", "percent": "10"}, "usage_limit": 1}).json()
    o = client.post("/v1/orders", json={"lines": [{"sku": "A", "quantity": 1}],
                                        "coupon": "ONE"}).json()
    assert amt(o["totals"]["discount"]) == "40.00"
    assert amt(client.get(f"/v1/promotions/{p['id']}").json()["spent"]) == "30.00"
    assert client.get(f"/v1/coupons/{c['id']}").json()["redeemed"] == 1
    r = client.post(f"/v1/orders/{o['id']}/cancel", json={"reason": "changed_mind"})
    assert r.status_code == 200, r.text
    assert amt(client.get(f"/v1/promotions/{p['id']}").json()["spent"]) == "0.00"
    assert client.get(f"/v1/coupons/{c['id']}").json()["redeemed"] == 0


def _concurrently(n, work):
    start, lock = threading.Barrier(n), threading.Lock()
    placed, refusals, errors = [], [], []

    def run():
        try:
            start.wait()
            result = work()
            with lock:
                placed.append(result)
        except Problem as exc:
            with lock:
                refusals.append(exc.extra.get("reason", exc.slug))
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    return placed, refusals


def _acme(sessions):
    from haina.platform import service as platform
    with transaction(sessions) as s:
        return platform.tenant_for_slug(s, "acme")


def test_concurrent_orders_never_spend_more_than_a_budget(client, sessions):
    tenant = _acme(sessions)
    product(client, "A", "100.00", stock=1000)
    p = promotion(client, kind="threshold", tiers=[{"min_subtotal": "100.00",
                                                    "off": "30.00"}], budget=cny("1000.00"))

    def buy():
        with transaction(sessions) as s:
            return orders.place_order(s, tenant, OrderCreate(
                lines=[{"sku": "A", "quantity": 1}])).totals.discount.minor

    discounts, refusals = _concurrently(40, buy)
    assert refusals == [] and len(discounts) == 40
    # 33 orders take 30.00, one the 10.00 left, the rest nothing: exactly the budget
    assert sum(discounts) == 100_000
    assert sorted(discounts, reverse=True)[:34] == [3000] * 33 + [1000]
    assert amt(client.get(f"/v1/promotions/{p['id']}").json()["spent"]) == "1000.00"


@pytest.mark.parametrize("buyers,limit", [(200, 50)])
def test_two_hundred_buyers_on_a_fifty_use_coupon_take_exactly_fifty(client, sessions, buyers,
                                                                     limit):
    tenant = _acme(sessions)
    product(client, "A", "100.00", stock=1000)
    c = client.post("/v1/coupons", json={"code": "SAVE5", "discount": {
        "type": "fixed", "amount": cny("5.00")}, "usage_limit": limit}).json()

    def buy():
        with transaction(sessions) as s:
            return orders.place_order(s, tenant, OrderCreate(
                lines=[{"sku": "A", "quantity": 1}], coupon="SAVE5")).id

    placed, refusals = _concurrently(buyers, buy)
    assert len(placed) == limit and refusals == ["used-up"] * (buyers - limit)
    assert client.get(f"/v1/coupons/{c['id']}").json()["redeemed"] == limit


def test_tier_amounts_finer_than_the_currency_are_refused(client):
    r = client.post("/v1/promotions", json={"name": "x", "kind": "threshold", "tiers": [
        {"min_subtotal": "300.001", "off": "40.00"}]})
    assert r.status_code == 422 and "decimals" in r.text, r.text
