"""Issue 14: cross-border products, buyers on orders (ID numbers sealed, masked, revealed only
with crossborder:identity), the payer rule, the composite tax carried on the order, and the
quotas — per order, per buyer per year, exact under concurrency, given back on cancel and full
refund — on SQLite and PostgreSQL. Every response and log line is scanned for an unmasked ID
number."""

from __future__ import annotations

import threading

from crossborder_support import BUYER, FACTS, OTHER, order, product, refused
from sqlalchemy import text
from support import app_token

from haina.core.db import transaction
from haina.core.errors import Problem
from haina.orders import service as orders
from haina.orders.schemas import OrderCreate
from haina.platform import service as platform


def test_product_facts_are_kept_per_product_and_unknown_products_are_404(scanned):
    p = product(scanned)
    got = scanned.get(f"/v1/crossborder/products/{p['id']}").json()
    assert {k: got[k] for k in FACTS} == FACTS
    # the rates default to 13 % VAT and no consumption tax
    plain = {k: v for k, v in FACTS.items() if k not in ("vat_rate", "consumption_rate")}
    got = scanned.put(f"/v1/crossborder/products/{p['id']}",
                      json={**plain, "brand_id": got["brand_id"]}).json()
    assert (got["vat_rate"], got["consumption_rate"]) == ("0.13", "0")
    assert scanned.put("/v1/crossborder/products/prod_nope", json=FACTS).status_code == 404
    bad = scanned.put(f"/v1/crossborder/products/{p['id']}",
                      json={**FACTS, "gross_weight_kg": "0.010"})
    assert bad.status_code == 422


def test_a_crossborder_order_carries_the_composite_tax_and_a_masked_buyer(scanned):
    product(scanned)
    r = order(scanned)
    assert r.status_code == 201, r.text
    o = r.json()
    assert o["totals"]["tax"]["amount"] == "230.59"  # the cosmetics example
    assert o["totals"]["total"]["amount"] == "1230.59"
    xb = o["crossborder"]
    assert xb["buyer"] == {**BUYER, "id_number": "3604**********0075"}
    assert xb["tax_lines"][0]["consumption_tax"] == "123.53"
    assert scanned.get(f"/v1/orders/{o['id']}").json()["crossborder"] == xb
    assert scanned.get(f"/v1/crossborder/orders/{o['id']}").json() == xb
    revealed = scanned.get(f"/v1/crossborder/orders/{o['id']}/identity").json()
    assert revealed["buyer"]["id_number"] == BUYER["id_number"]
    listed = scanned.get("/v1/orders").json()["data"][0]
    assert listed["crossborder"]["buyer"]["id_number"] == "3604**********0075"


def test_the_id_number_is_sealed_at_rest_and_revealed_only_with_the_identity_scope(
        scanned, sessions, engine):
    product(scanned)
    o = order(scanned).json()
    with engine.connect() as conn:
        dump = " ".join(str(v) for row in conn.execute(text(
            "SELECT * FROM crossborder_orders")) for v in row)
    assert BUYER["id_number"] not in dump and "3604**********0075" in dump
    read_only = app_token(sessions, "acme", "crossborder:write orders:read")
    r = scanned.get(f"/v1/crossborder/orders/{o['id']}/identity",
                    headers={"Authorization": f"Bearer {read_only}"})
    assert refused(r, 403, "insufficient-scope")["required_scope"] == "crossborder:identity"
    allowed = app_token(sessions, "acme", "crossborder:identity")
    r = scanned.get(f"/v1/crossborder/orders/{o['id']}/identity",
                    headers={"Authorization": f"Bearer {allowed}"})
    assert r.status_code == 200 and r.json()["buyer"]["id_number"] == BUYER["id_number"]


def test_bad_buyers_payers_and_products_are_refused(scanned):
    product(scanned)
    product(scanned, sku="PLAIN-1", facts=None)
    refused(order(scanned, buyer={**BUYER, "id_number": "360403198001010071"}), 422,
            "validation-error")
    body = refused(order(scanned, payer={"name": BUYER["name"],
                                         "id_number": OTHER["id_number"]}), 422,
                   "payer-mismatch")
    assert body["field"] == "id_number"
    assert order(scanned, payer={"name": BUYER["name"],
                                 "id_number": BUYER["id_number"]}).status_code == 201
    refused(order(scanned, sku="PLAIN-1"), 422, "not-crossborder-product")


def test_an_order_over_5000_is_refused_naming_the_limit_and_the_amount_over(scanned):
    product(scanned)
    body = refused(order(scanned, quantity=6), 409, "quota-exceeded")
    assert body["limit"] == "order" and body["over"]["amount"] == "1000.00"
    assert scanned.get("/v1/orders").json()["data"] == []  # nothing kept
    assert order(scanned, quantity=5).status_code == 201


def test_the_yearly_quota_counts_one_buyer_and_comes_back_on_cancel(scanned):
    product(scanned, amount="5000.00")
    placed = [order(scanned) for _ in range(5)]
    assert all(r.status_code == 201 for r in placed)  # 25,000 of 26,000
    body = refused(order(scanned), 409, "quota-exceeded")
    assert body["limit"] == "year" and body["remaining"]["amount"] == "1000.00"
    assert body["over"]["amount"] == "4000.00"
    assert order(scanned, buyer=OTHER).status_code == 201  # another buyer has their own
    r = scanned.post(f"/v1/orders/{placed[0].json()['id']}/cancel", json={})
    assert r.status_code == 200, r.text
    assert r.json()["crossborder"]["quota_status"] == "released"
    assert order(scanned).status_code == 201


def test_a_full_refund_gives_the_quota_back(scanned):
    product(scanned, amount="5000.00")
    o = [order(scanned).json() for _ in range(5)][0]
    pi = scanned.post("/v1/payment_intents", json={"order_id": o["id"],
                                                   "payment_method": {"type": "cash"}})
    assert pi.status_code == 201, pi.text
    r = scanned.post("/v1/refunds", json={"payment_intent_id": pi.json()["id"]})
    assert r.status_code == 201, r.text
    assert scanned.get(f"/v1/orders/{o['id']}").json()["crossborder"]["quota_status"] == \
        "released"
    assert order(scanned).status_code == 201


def test_a_partial_refund_gives_back_the_quota_in_proportion_to_the_amount_refunded(scanned):
    product(scanned, amount="5000.00")
    o = [order(scanned).json() for _ in range(5)][0]  # 25,000 of 26,000 used
    paid = o["totals"]["total"]["amount"]
    assert (paid, o["crossborder"]["tax"]["amount"]) == ("6152.94", "1152.94")
    pi = scanned.post("/v1/payment_intents", json={"order_id": o["id"],
                                                   "payment_method": {"type": "cash"}}).json()
    part = {"amount": "1000.00", "currency": "CNY"}
    r = scanned.post("/v1/refunds", json={"payment_intent_id": pi["id"], "amount": part})
    assert r.status_code == 201, r.text
    xb = scanned.get(f"/v1/orders/{o['id']}").json()["crossborder"]
    # 5,000.00 × 1,000 / 6,152.94 = 812.619… → 812.61 (down: never more than refunded);
    # the tax's share 1,152.94 × 1,000 / 6,152.94 = 187.382… → 187.38 (half-even)
    assert (xb["quota_status"], xb["quota_returned"]["amount"], xb["tax_refunded"]["amount"]) \
        == ("claimed", "812.61", "187.38")
    body = refused(order(scanned), 409, "quota-exceeded")
    assert body["remaining"]["amount"] == "1812.61"
    r = scanned.post("/v1/refunds", json={"payment_intent_id": pi["id"]})  # the rest
    assert r.status_code == 201, r.text
    xb = scanned.get(f"/v1/orders/{o['id']}").json()["crossborder"]
    assert (xb["quota_status"], xb["quota_returned"]["amount"], xb["tax_refunded"]["amount"]) \
        == ("released", "5000.00", "1152.94")
    assert order(scanned).status_code == 201  # 6,000 left


def test_twenty_concurrent_orders_of_one_buyer_take_exactly_what_the_quota_leaves(
        scanned, sessions):
    product(scanned, amount="2000.00", stock=100)
    for _ in range(10):  # 20,000 CNY used
        assert order(scanned).status_code == 201
    with transaction(sessions) as s:
        tenant = platform.tenant_for_slug(s, "acme")
    start, lock = threading.Barrier(20), threading.Lock()
    placed: list[str] = []
    refusals: list[str] = []
    errors: list[BaseException] = []

    def buy() -> None:
        try:
            start.wait()
            with transaction(sessions) as s:
                o = orders.place_order(s, tenant, OrderCreate.model_validate(
                    {"lines": [{"sku": "SERUM-1", "quantity": 1}],
                     "crossborder": {"buyer": BUYER}}))
            with lock:
                placed.append(o.id)
        except Problem as exc:
            with lock:
                refusals.append(exc.slug)
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=buy) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert len(placed) == 3 and refusals == ["quota-exceeded"] * 17


def test_discounts_lower_the_dutiable_price_and_the_tax(scanned):
    product(scanned)
    r = scanned.post("/v1/coupons", json={"code": "XB100", "discount": {
        "type": "fixed", "amount": {"amount": "100.00", "currency": "CNY"}}})
    assert r.status_code == 201, r.text
    o = scanned.post("/v1/orders", json={
        "lines": [{"sku": "SERUM-1", "quantity": 1}], "coupon": "XB100",
        "crossborder": {"buyer": BUYER}})
    assert o.status_code == 201, o.text
    xb = o.json()["crossborder"]
    # 900 ÷ 0.85 × 0.15 × 70 % = 111.176… → 111.18; 900 ÷ 0.85 × 0.13 × 70 % = 96.352… → 96.35
    assert xb["dutiable"]["amount"] == "900.00" and xb["tax"]["amount"] == "207.53"
    assert o.json()["totals"]["total"]["amount"] == "1107.53"
